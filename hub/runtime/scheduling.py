"""Scheduled messages and follow-ups as the API and the console ask for them, on a running
hub: the purpose checked against the configured ones, the time resolved (absolute, or a time
of day on a date in the customer's own zone), a follow-up's channel defaulting to its
conversation's, then ``app.schedules`` (``hub.domain.scheduling``) records the occurrence.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from hub.domain.automation import Occurrence, OccurrenceSpec, Plan, Source
from hub.domain.errors import DomainError, InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.domain.policy import local_due
from hub.runtime.consent import rules_of
from hub.runtime.core import Runtime

__all__ = ["UnknownPurpose", "check_purpose", "due_time", "follow_up", "schedule_message"]


class UnknownPurpose(DomainError):
    """A purpose this hub does not have (``HUB_CONSENT__PURPOSES`` adds to the built-in)."""

    code = "unknown_purpose"
    status = 422


def check_purpose(runtime: Runtime, purpose: str) -> None:
    purposes = rules_of(runtime).purposes
    if purpose not in purposes:
        raise UnknownPurpose(
            f"unknown purpose {purpose!r}: one of {', '.join(purposes)}",
            purpose=purpose,
            purposes=list(purposes),
        )


def due_time(
    runtime: Runtime,
    customer_id: UUID,
    send_at: datetime | None = None,
    local: tuple[date, time] | None = None,
) -> datetime:
    """When a message is due, in UTC: ``send_at`` (aware), or ``local`` (a date and a time
    of day) in the customer's zone (the one an agent set, else their phone number's, else
    ``HUB_DISPATCH__DEFAULT_TIME_ZONE``, else UTC)."""
    if (send_at is None) == (local is None):
        raise InvalidCommand("give send_at or local (one of them)", field="send_at")
    if local is not None:
        zone = runtime.commands.schedules.customer_zone(
            customer_id, runtime.settings.dispatch.default_time_zone
        )
        return local_due(local[0], local[1], zone)
    if send_at is None or send_at.tzinfo is None:
        raise InvalidCommand("give a time with its zone, or a local time", field="send_at")
    return send_at.astimezone(UTC)


def schedule_message(
    runtime: Runtime,
    customer_id: UUID,
    plan: Plan,
    *,
    send_at: datetime | None = None,
    local: tuple[date, time] | None = None,
    actor: str | None,
    key: str | None = None,
) -> tuple[Occurrence, bool]:
    """Schedule ``plan`` for the customer at ``send_at`` or ``local`` (:func:`due_time`).
    ``key``: the request's idempotency key (the same key again is the message scheduled the
    first time: returned with False)."""
    check_purpose(runtime, plan.purpose)
    schedules = runtime.commands.schedules
    spec = OccurrenceSpec(
        key=f"api:{customer_id}:{key or uuid7()}",
        customer_id=customer_id,
        due_at=due_time(runtime, customer_id, send_at, local),
        plan=plan,
        source=Source("api", "api"),
    )
    ((oid, new),) = schedules.schedule([spec], actor)
    return schedules.get(oid), new


def follow_up(
    runtime: Runtime,
    conversation_id: UUID,
    plan: Plan,
    *,
    after: timedelta,
    actor: str | None,
    key: str | None = None,
) -> tuple[Occurrence, bool]:
    """Follow up ``after`` from now unless the customer writes in the conversation: send
    ``plan`` (on the conversation's channel when it names none) or, ``action="reopen"``,
    bring the conversation back to the queue. ``key`` as for :func:`schedule_message`."""
    check_purpose(runtime, plan.purpose)
    if not plan.channels and plan.action == "send":
        with runtime.read() as conn:
            found = runtime.views.conversations.get(conn, conversation_id)
        if found is None:
            raise NotFound(f"no conversation {conversation_id}", id=str(conversation_id))
        plan = replace(plan, channels=(found.channel,))
    schedules = runtime.commands.schedules
    now = datetime.now(UTC)
    oid, new = schedules.follow_up(
        conversation_id, now + after, plan, actor, now, key or str(uuid7())
    )
    return schedules.get(oid), new
