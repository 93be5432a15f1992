"""Agent commands on a conversation: replies, notes, status, assignment."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.models import (
    AssigneeIn,
    ConversationOut,
    NoteIn,
    NoteOut,
    ReplyIn,
    ReplyOut,
    StatusIn,
)
from hub.api.openapi import errors
from hub.projections.service_queries import sla_states
from hub.runtime.consent import rules_of
from hub.runtime.scheduling import check_purpose
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]


@router.get("/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: UUID, runtime: RuntimeDep, who: Reader) -> ConversationOut:
    with runtime.read() as conn:
        found = runtime.views.conversations.get(conn, conversation_id)
        sla = sla_states(conn, [conversation_id]).get(conversation_id)
    if found is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    # the address and subject are personal data of the conversation's customer
    runtime.access_log.record(who, [found.customer_id], "GET /v1/conversations/{conversation_id}")
    return ConversationOut.of(found, sla)


@router.post(
    "/{conversation_id}/notes", status_code=201, response_model=NoteOut, responses=errors(410)
)
async def add_note(conversation_id: UUID, body: NoteIn, runtime: RuntimeDep, who: Actor) -> NoteOut:
    """An internal note: on the timeline, never sent to the customer."""
    note_id = await run_in_threadpool(
        runtime.commands.add_note, conversation_id, body.text, who.name
    )
    return NoteOut(note_id=note_id, conversation_id=conversation_id)


@router.put("/{conversation_id}/status", response_model=StatusIn)
async def set_status(
    conversation_id: UUID, body: StatusIn, runtime: RuntimeDep, who: Actor
) -> StatusIn:
    """Open, pending or resolved; setting the current status again changes nothing."""
    await run_in_threadpool(runtime.commands.change_status, conversation_id, body.status, who.name)
    return body


@router.put("/{conversation_id}/assignee", response_model=AssigneeIn)
async def set_assignee(
    conversation_id: UUID, body: AssigneeIn, runtime: RuntimeDep, who: Actor
) -> AssigneeIn:
    """Assign to an agent (or null to unassign)."""
    await run_in_threadpool(runtime.commands.assign, conversation_id, body.assignee, who.name)
    return body


@router.post(
    "/{conversation_id}/messages",
    status_code=202,
    response_model=ReplyOut,
    responses={
        200: {"model": ReplyOut, "description": "Same Idempotency-Key again: nothing new."},
        **errors(
            (
                409,
                "The channel refuses it now, recording nothing: `consent_revoked`, "
                "`consent_missing` (the purpose needs an opt-in the customer did not give), "
                "`outside_service_window` or `channel_unavailable`.",
            ),
            410,
            (
                422,
                "`invalid_command`: the conversation's address is not reachable there; "
                "`unknown_purpose`: a purpose this hub does not have.",
            ),
        ),
    },
)
async def reply(
    conversation_id: UUID,
    body: ReplyIn,
    runtime: RuntimeDep,
    who: Actor,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReplyOut:
    """Reply to the customer. Recorded first (202 ``queued``), then sent by the dispatcher;
    its delivery shows on the timeline. Refused with 409 and a reason (``consent_revoked``,
    ``consent_missing``, ``outside_service_window``, ``channel_unavailable``), or 422 when
    the conversation's address cannot be reached on the channel asked for or the purpose is
    unknown, recording nothing. The ``purpose`` (default ``service``) is checked against the
    customer's consent now and again when the dispatcher sends it."""
    check_purpose(runtime, body.purpose)
    rules = rules_of(runtime)
    recorded = await run_in_threadpool(
        lambda: runtime.reply(
            conversation_id,
            body.text,
            author=who.name,
            idempotency_key=idempotency_key,
            channel=body.channel,
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
