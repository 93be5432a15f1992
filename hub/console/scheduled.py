"""Scheduled messages and reminders on the customer's page: the "Schedule a message" form, a
scheduled message's Cancel button on the timeline, and a conversation's "Snooze until" and
"Follow up unless the customer writes". Plain forms (``hub.console.commands`` runs them and
comes back to the page, or answers console.js); the rules are ``hub.runtime.scheduling``'s,
the same the API's routes follow.

A time is read as the form says: a date and time of day in the customer's own time zone
(what the API calls ``local``), or in the agent's (``static/history.js`` names it; UTC
without the script).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from hub.console.commands import _act, _command
from hub.console.history import moment_from
from hub.console.present import ProfileFacts
from hub.console.shared import CHANNELS, PostingAgent, runtime_of
from hub.domain.automation import Plan
from hub.domain.errors import InvalidCommand
from hub.events.common import check_text
from hub.events.inbound import MAX_TEXT
from hub.runtime import Runtime, scheduling
from hub.runtime.consent import rules_of

router = APIRouter(include_in_schema=False)

#: A template's name (as ``hub.api.schedule_models.TemplateName``).
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_SUBJECT = 998
#: How many channels the form lets an agent put in order.
CHANNEL_CHOICES = 3
#: The longest follow-up delay (as the API's ``after_hours``).
MAX_FOLLOW_UP_DAYS = 366
#: How far in the past a time may be and still be taken as "now" (a slow form).
_LATE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ScheduleForm:
    """What the customer page's scheduling forms offer (``_schedule.html``,
    ``_reminders.html``)."""

    purposes: tuple[str, ...]
    channels: tuple[str, ...]  # those that reach the customer first, then the others
    preferred: tuple[str, ...]  # the default order, up to CHANNEL_CHOICES
    zone: str | None  # the customer's time zone
    key: str  # the schedule form's idempotency key
    default_at: str  # tomorrow 10:00, for a datetime-local input


def form_context(runtime: Runtime, profile: ProfileFacts, now: datetime) -> ScheduleForm:
    reaching = tuple(r.channel for r in profile.consent if r.channel in CHANNELS)
    tomorrow = (now + timedelta(days=1)).date()
    return ScheduleForm(
        purposes=rules_of(runtime).purposes,
        channels=reaching + tuple(c for c in CHANNELS if c not in reaching),
        preferred=reaching[:CHANNEL_CHOICES],
        zone=profile.time_zone,
        key=uuid4().hex,
        default_at=f"{tomorrow.isoformat()}T10:00",
    )


# -- reading the forms ----------------------------------------------------------------------


def _text(value: str, what: str, limit: int) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise InvalidCommand(f"the {what} is longer than {limit} characters")
    try:
        return check_text(value)
    except ValueError:
        raise InvalidCommand(f"the {what} holds characters that are not text") from None


def _plan(
    text: str,
    template: str,
    subject: str,
    channels: list[str],
    purpose: str,
    action: str = "send",
) -> Plan:
    """The message a form describes (a text or a template, one of them), checked as the API's
    models check it."""
    name = template.strip()
    if name and not _TEMPLATE_NAME.fullmatch(name):
        raise InvalidCommand(f"{name!r} is not a template's name")
    body = _text(text, "text", MAX_TEXT)
    if action == "send" and (body is None) == (not name):
        raise InvalidCommand("write a text or name a template (one of them)")
    chosen: list[str] = []
    for channel in (c.strip() for c in channels):
        if channel and channel not in CHANNELS:
            raise InvalidCommand(f"{channel!r} is not a channel")
        if channel and channel not in chosen:
            chosen.append(channel)
    return Plan(
        purpose=purpose,
        channels=tuple(chosen),
        template=name or None,
        text=body,
        subject=_text(subject, "subject", MAX_SUBJECT),
        action=action,
    )


def _local(at: str) -> tuple[date, time]:
    """A datetime-local input's value as a date and a time of day."""
    try:
        value = datetime.fromisoformat(at.strip())
    except ValueError:
        raise InvalidCommand(f"{at!r} is not a date and time") from None
    if value.tzinfo is not None:
        raise InvalidCommand("give the time without a zone: the form says which zone it is in")
    return value.date(), value.time()


def _due(runtime: Runtime, customer_id: UUID, at: str, zone: str, tz: str) -> datetime:
    """When the form's time is: in the customer's zone (``zone="customer"``), else in the
    agent's (``tz``); refused when it has passed."""
    if zone == "customer":
        due = scheduling.due_time(runtime, customer_id, local=_local(at))
    else:
        try:
            due = moment_from(at, tz)
        except ValueError as exc:
            raise InvalidCommand(str(exc)) from None
    if due < datetime.now(UTC) - _LATE:
        raise InvalidCommand(f"{due:%Y-%m-%d %H:%M} UTC has passed: choose a later time")
    return due


def _conversation_customer(runtime: Runtime, conversation_id: UUID) -> UUID:
    with runtime.read() as conn:
        found = runtime.views.conversations.get(conn, conversation_id)
    if found is None:
        raise InvalidCommand(f"no conversation {conversation_id}")
    return found.customer_id


def _scheduled_status(runtime: Runtime, customer_id: UUID, occurrence_id: UUID) -> str | None:
    """The status the timeline shows of a scheduled message (None: not there yet)."""
    with runtime.read() as conn:
        items = runtime.views.timeline.scheduled(conn, [customer_id])
    return next((i.delivery_status for i in items if i.item_id == occurrence_id), None)


def _on_timeline(runtime: Runtime) -> Callable[[UUID], bool]:
    def shown(occurrence_id: UUID) -> bool:
        with runtime.read() as conn:
            return runtime.views.timeline.has_item(conn, occurrence_id)

    return shown


# -- the forms' commands --------------------------------------------------------------------


@router.post("/customers/{customer_id}/scheduled-messages")
async def schedule(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    template: Annotated[str, Form(max_length=200)] = "",
    subject: Annotated[str, Form(max_length=MAX_SUBJECT)] = "",
    channels: Annotated[list[str] | None, Form(max_length=20)] = None,
    purpose: Annotated[str, Form(max_length=40)] = "service",
    at: Annotated[str, Form(max_length=40)] = "",
    zone: Annotated[str, Form(max_length=20)] = "customer",
    tz: Annotated[str, Form(max_length=64)] = "UTC",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Schedule a message for the customer, as ``POST /v1/customers/{id}/scheduled-messages``
    does; the form's key makes a double submit one message."""
    runtime = runtime_of(request)

    def run() -> UUID:
        plan = _plan(text, template, subject, channels or [], purpose)
        if not plan.channels:
            raise InvalidCommand("choose at least one channel")
        due = _due(runtime, customer_id, at, zone, tz)
        occurrence, _ = scheduling.schedule_message(
            runtime,
            customer_id,
            plan,
            send_at=due,
            actor=agent.name,
            key=f"console:{key}" if key else None,
        )
        return occurrence.id

    back = f"/customers/{customer_id}#schedule-title"
    return await _act(request, back, run, _on_timeline(runtime))


@router.post("/customers/{customer_id}/scheduled-messages/{occurrence_id}/cancel")
async def cancel(
    request: Request, customer_id: UUID, occurrence_id: UUID, agent: PostingAgent
) -> Response:
    """Cancel a scheduled message of this customer that is not yet due."""
    runtime = runtime_of(request)

    def run() -> bool:
        return runtime.commands.schedules.cancel(occurrence_id, agent.name, customer_id)

    def shown(_: bool) -> bool:
        return _scheduled_status(runtime, customer_id, occurrence_id) == "cancelled"

    return await _act(request, f"/customers/{customer_id}#item-{occurrence_id}", run, shown)


@router.post("/conversations/{conversation_id}/snooze")
async def snooze(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    until: Annotated[str, Form(max_length=40)] = "",
    zone: Annotated[str, Form(max_length=20)] = "mine",
    tz: Annotated[str, Form(max_length=64)] = "UTC",
) -> Response:
    """Put the conversation aside (pending) until a time, when it comes back to the queue."""
    runtime = runtime_of(request)

    def run() -> UUID:
        customer_id = _conversation_customer(runtime, conversation_id)
        due = _due(runtime, customer_id, until, zone, tz)
        return runtime.commands.schedules.snooze(
            conversation_id, due, agent.name, datetime.now(UTC)
        )

    def shown(reminder: UUID) -> bool:
        with runtime.read() as conn:
            found = runtime.views.conversations.get(conn, conversation_id)
        return found is not None and found.status == "pending" and _on_timeline(runtime)(reminder)

    return await _command(request, conversation_id, run, shown)


@router.post("/conversations/{conversation_id}/follow-up")
async def follow_up(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    days: Annotated[str, Form(max_length=10)] = "",
    action: Annotated[str, Form(max_length=10)] = "send",
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    template: Annotated[str, Form(max_length=200)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Unless the customer writes in the conversation within N days: send a text (or a
    template) on its channel, or bring it back to the queue."""
    runtime = runtime_of(request)

    def run() -> UUID:
        try:
            after = float(days)
        except ValueError:
            raise InvalidCommand("give the number of days") from None
        if not 0 < after <= MAX_FOLLOW_UP_DAYS:
            raise InvalidCommand(f"follow up in 1 to {MAX_FOLLOW_UP_DAYS} days")
        if action not in ("send", "reopen"):
            raise InvalidCommand("choose to send a message or to bring it back to the queue")
        plan = _plan(
            text if action == "send" else "",
            template if action == "send" else "",
            "",
            [],
            "service",
            action,
        )
        occurrence, _ = scheduling.follow_up(
            runtime,
            conversation_id,
            plan,
            after=timedelta(days=after),
            actor=agent.name,
            key=f"console:{key}" if key else None,
        )
        return occurrence.id

    return await _command(request, conversation_id, run, _on_timeline(runtime))
