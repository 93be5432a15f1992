"""Scheduled messages of a customer (schedule, list, read, cancel), and an agent's reminders
on a conversation: snooze it until a time, follow up unless the customer writes. The rules
are ``hub.domain.scheduling``'s; docs/automation.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.api.schedule_models import (
    FollowUpIn,
    ScheduledMessageIn,
    ScheduledMessageList,
    ScheduledMessageOut,
    SnoozeIn,
    SnoozeOut,
)
from hub.domain.automation import Occurrence, Plan
from hub.events.scheduled import ScheduledSource
from hub.projections.timeline import TimelineItem
from hub.runtime import Runtime, scheduling
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(tags=["scheduled messages"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
LIST_ACTION = "GET /v1/customers/{customer_id}/scheduled-messages"
READ_ACTION = "GET /v1/customers/{customer_id}/scheduled-messages/{message_id}"

_UNKNOWN_PURPOSE = (
    422,
    "`unknown_purpose`: a purpose this hub does not have; `invalid_command`: both or neither "
    "of `template` and `text` (or of `send_at` and `local`), or a channel named twice.",
)


def _plan(body: ScheduledMessageIn | FollowUpIn, action: str = "send") -> Plan:
    return Plan(
        purpose=body.purpose,
        channels=tuple(body.channels or ()),
        template=body.template,
        text=body.text,
        subject=body.subject,
        action=action,
    )


def _out(runtime: Runtime, occurrence: Occurrence) -> ScheduledMessageOut:
    return ScheduledMessageOut.model_validate(runtime.commands.schedules.describe(occurrence))


def _from_item(item: TimelineItem) -> ScheduledMessageOut:
    data: dict[str, Any] = item.data
    return ScheduledMessageOut(
        id=item.item_id,
        customer_id=item.customer_id,
        status=item.delivery_status,
        due_at=datetime.fromisoformat(data["due_at"]),
        action=data["action"],
        purpose=data["purpose"],
        channels=data["channels"],
        template=data.get("template"),
        text=item.text,
        subject=item.subject,
        conversation_id=item.conversation_id,
        source=ScheduledSource.model_validate(data["source"]),
        reason_code=data.get("error_code"),
        reason=data.get("error_message"),
        message_id=data.get("message_id"),
        channel=data.get("sent_on"),
    )


@router.post(
    "/v1/customers/{customer_id}/scheduled-messages",
    status_code=201,
    response_model=ScheduledMessageOut,
    responses={
        200: {
            "model": ScheduledMessageOut,
            "description": "Same Idempotency-Key again: the message scheduled the first time.",
        },
        **errors(404, 410, _UNKNOWN_PURPOSE),
    },
)
async def schedule_message(
    customer_id: UUID,
    body: ScheduledMessageIn,
    runtime: RuntimeDep,
    who: Actor,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ScheduledMessageOut:
    """Schedule a message (a template or a text) for a time, absolute or "10:00 in the
    customer's zone on a date". When it is due the scheduler sends it on the first channel
    of ``channels`` that reaches the customer with consent for the purpose, in the
    customer's language, or records why not; held for quiet hours like every message."""
    plan = _plan(body)

    def run() -> tuple[Occurrence, bool]:
        return scheduling.schedule_message(
            runtime,
            customer_id,
            plan,
            send_at=body.send_at,
            local=(body.local.date, body.local.time) if body.local is not None else None,
            actor=who.name,
            key=idempotency_key,
        )

    occurrence, new = await run_in_threadpool(run)
    if not new:
        response.status_code = 200
    return _out(runtime, occurrence)


@router.get(
    "/v1/customers/{customer_id}/scheduled-messages",
    response_model=ScheduledMessageList,
)
def list_scheduled(customer_id: UUID, runtime: RuntimeDep, who: Reader) -> ScheduledMessageList:
    """The customer's scheduled messages (every member's, for a merged group), the newest
    first, with their status: scheduled, cancelled, skipped (with the reason) or queued
    (handed to the dispatcher: the message's own delivery is on the timeline)."""
    with runtime.read() as conn:
        group = runtime.views.directory.group(conn, customer_id)
        items = runtime.views.timeline.scheduled(conn, group)
    runtime.access_log.record(who, group, LIST_ACTION, len(items))
    return ScheduledMessageList(items=[_from_item(i) for i in items])


@router.get(
    "/v1/customers/{customer_id}/scheduled-messages/{message_id}",
    response_model=ScheduledMessageOut,
    responses=errors(404),
)
async def get_scheduled(
    customer_id: UUID, message_id: UUID, runtime: RuntimeDep, who: Reader
) -> ScheduledMessageOut:
    """One scheduled message, as the store has it now."""
    occurrence = await run_in_threadpool(runtime.commands.schedules.get, message_id)
    if occurrence.customer_id != customer_id:
        raise ApiError(404, "not_found", f"no scheduled message {message_id} for this customer")
    runtime.access_log.record(who, [customer_id], READ_ACTION)
    return _out(runtime, occurrence)


@router.delete(
    "/v1/customers/{customer_id}/scheduled-messages/{message_id}",
    status_code=204,
    responses=errors(404, (409, "`scheduled_message_done`: it was sent or skipped already.")),
)
async def cancel_scheduled(
    customer_id: UUID, message_id: UUID, runtime: RuntimeDep, who: Actor
) -> Response:
    """Cancel a scheduled message that is not yet due (cancelling again changes nothing)."""
    await run_in_threadpool(runtime.commands.schedules.cancel, message_id, who.name, customer_id)
    return Response(status_code=204)


@router.post(
    "/v1/conversations/{conversation_id}/snooze",
    status_code=201,
    response_model=SnoozeOut,
    responses=errors(404, (422, "`invalid_command`: the time is past.")),
)
async def snooze(
    conversation_id: UUID, body: SnoozeIn, runtime: RuntimeDep, who: Actor
) -> SnoozeOut:
    """Put the conversation aside (pending) until ``until``: then it comes back to the queue,
    open. The customer writing brings it back earlier."""
    reminder = await run_in_threadpool(
        runtime.commands.schedules.snooze,
        conversation_id,
        body.until,
        who.name,
        datetime.now(UTC),
    )
    return SnoozeOut(reminder_id=reminder, conversation_id=conversation_id, until=body.until)


@router.post(
    "/v1/conversations/{conversation_id}/follow-ups",
    status_code=201,
    response_model=ScheduledMessageOut,
    responses={
        200: {"model": ScheduledMessageOut, "description": "Same Idempotency-Key again."},
        **errors(404, _UNKNOWN_PURPOSE),
    },
)
async def follow_up(
    conversation_id: UUID,
    body: FollowUpIn,
    runtime: RuntimeDep,
    who: Actor,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ScheduledMessageOut:
    """Follow up unless the customer writes in this conversation within ``after_hours``:
    send a template or a text, or bring the conversation back to the queue."""
    plan = _plan(body, body.action)

    def run() -> tuple[Occurrence, bool]:
        return scheduling.follow_up(
            runtime,
            conversation_id,
            plan,
            after=timedelta(hours=body.after_hours),
            actor=who.name,
            key=idempotency_key,
        )

    occurrence, new = await run_in_threadpool(run)
    if not new:
        response.status_code = 200
    return _out(runtime, occurrence)
