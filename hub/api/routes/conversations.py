"""Agent commands on a conversation: notes, status, assignment."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.errors import ApiError
from hub.api.models import AssigneeIn, ConversationOut, NoteIn, NoteOut, StatusIn
from hub.store.tokens import Principal

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]


@router.get("/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: UUID, runtime: RuntimeDep, _: Reader) -> ConversationOut:
    with runtime.read() as conn:
        found = runtime.views.conversations.get(conn, conversation_id)
    if found is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    return ConversationOut.model_validate(found)


@router.post("/{conversation_id}/notes", status_code=201, response_model=NoteOut)
async def add_note(conversation_id: UUID, body: NoteIn, runtime: RuntimeDep, who: Actor) -> NoteOut:
    """An internal note: on the timeline, never sent to the customer."""
    note_id = await run_in_threadpool(runtime.add_note, conversation_id, body.text, who.name)
    return NoteOut(note_id=note_id, conversation_id=conversation_id)


@router.put("/{conversation_id}/status", response_model=StatusIn)
async def set_status(
    conversation_id: UUID, body: StatusIn, runtime: RuntimeDep, who: Actor
) -> StatusIn:
    """Open, pending or resolved; setting the current status again changes nothing."""
    await run_in_threadpool(runtime.change_status, conversation_id, body.status, who.name)
    return body


@router.put("/{conversation_id}/assignee", response_model=AssigneeIn)
async def set_assignee(
    conversation_id: UUID, body: AssigneeIn, runtime: RuntimeDep, who: Actor
) -> AssigneeIn:
    """Assign to an agent (or null to unassign)."""
    await run_in_threadpool(runtime.assign, conversation_id, body.assignee, who.name)
    return body
