"""One message by its id: where an interaction landed (customer, conversation) once recorded.

The distributed ingest answers with the message id alone (the processors record it later);
this is how a client learns the rest, and knows the message is visible.

``/lawfulness``: was the message lawful when it was sent (``hub.domain.lawfulness``)?
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter

from hub.api.auth import RuntimeDep, require
from hub.api.models import LawfulnessOut, MessageOut
from hub.domain.lawfulness import lawfulness_in
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1/messages", tags=["messages"])
Reader = Annotated[Principal, require("read")]


@router.get("/{message_id}", response_model=MessageOut)
def get_message(message_id: UUID, runtime: RuntimeDep, who: Reader) -> MessageOut:
    """The message as its customer's timeline shows it; 404 until it is visible there."""
    with runtime.read() as conn:
        found = runtime.views.timeline.message(conn, message_id)
    if found is None:
        raise ApiError(404, "not_found", f"no message {message_id} (yet)")
    runtime.access_log.record(who, [found.customer_id], "GET /v1/messages/{message_id}")
    return MessageOut.model_validate(found)


@router.get("/{message_id}/lawfulness", response_model=LawfulnessOut)
def get_lawfulness(message_id: UUID, runtime: RuntimeDep, who: Reader) -> LawfulnessOut:
    """Was this message lawful when it was sent? Answered from the message's own stored
    events, as the dispatcher recorded each decision, never from today's state: the purpose
    it was sent for, the customer's consent for (channel, purpose) at that moment and the
    ledger entry (or default rule) that decided it, quiet hours in the customer's zone then,
    the channel's service window (WhatsApp's 24 hours), the outcome, and for a refused send
    the reason. Later consent changes, merges, rebuilds and erasures leave it as it was (it
    holds ids, codes and times, nothing personal).

    A message the customer sent, or another system sent and reported, is answered with
    ``sent_by_hub: false`` and outcome ``not_sent_by_hub`` (the hub decided nothing about it).
    404 for an id that is no message. Read from the store, so it is there as soon as the
    message is recorded (no wait for the views)."""
    found = lawfulness_in(runtime.store.app.events, message_id)
    if found is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    runtime.access_log.record(who, [found.customer_id], "GET /v1/messages/{message_id}/lawfulness")
    return LawfulnessOut.model_validate(found)
