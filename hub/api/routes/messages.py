"""One message by its id: where an interaction landed (customer, conversation) once recorded.

The distributed ingest answers with the message id alone (the processors record it later);
this is how a client learns the rest, and knows the message is visible.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter

from hub.api.auth import RuntimeDep, require
from hub.api.models import MessageOut
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1/messages", tags=["messages"])
Reader = Annotated[Principal, require("read")]


@router.get("/{message_id}", response_model=MessageOut)
def get_message(message_id: UUID, runtime: RuntimeDep, _: Reader) -> MessageOut:
    """The message as its customer's timeline shows it; 404 until it is visible there."""
    with runtime.read() as conn:
        found = runtime.views.timeline.message(conn, message_id)
    if found is None:
        raise ApiError(404, "not_found", f"no message {message_id} (yet)")
    return MessageOut.model_validate(found)
