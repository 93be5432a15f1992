"""Conversations an agent starts with a customer (``hub.domain.new_conversation``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.models import NewConversationIn, ReplyOut
from hub.api.openapi import errors
from hub.runtime.consent import rules_of
from hub.runtime.scheduling import check_purpose
from hub.web.access import Principal

router = APIRouter(prefix="/v1/customers", tags=["conversations"])
Actor = Annotated[Principal, require("act")]


@router.post(
    "/{customer_id}/conversations",
    status_code=202,
    response_model=ReplyOut,
    responses={
        200: {"model": ReplyOut, "description": "Same Idempotency-Key again: nothing new."},
        **errors(
            404,
            (
                409,
                "The channel refuses it now, recording nothing: `consent_revoked`, "
                "`consent_missing`, `outside_service_window` (WhatsApp without a template "
                "where the customer has not written within 24 hours) or "
                "`channel_unavailable`.",
            ),
            410,
            (
                422,
                "`invalid_command`: no address of the customer reaches the channel, or an "
                "email without a subject; `unknown_purpose`: a purpose this hub does not have.",
            ),
        ),
    },
)
async def start_conversation(
    customer_id: UUID,
    body: NewConversationIn,
    runtime: RuntimeDep,
    who: Actor,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReplyOut:
    """Start a conversation with the customer on ``channel``, at their newest address there.
    Recorded with its first message (202 ``queued``), then sent by the dispatcher like a
    reply: consent for the ``purpose`` and the service window are checked now and again at
    send time, quiet hours hold a message that is not ``urgent``. Refused with 409 and a
    reason, or 422, recording nothing."""
    check_purpose(runtime, body.purpose)
    rules = rules_of(runtime)
    recorded = await run_in_threadpool(
        lambda: runtime.start_conversation(
            customer_id,
            body.channel,
            body.text,
            author=who.name,
            idempotency_key=idempotency_key,
            subject=body.subject,
            urgent=body.urgent,
            template=body.template.model_dump() if body.template else None,
            purpose=body.purpose,
            rules=rules,
        )
    )
    if recorded.duplicate:
        response.status_code = 200
    return ReplyOut.of(recorded)
