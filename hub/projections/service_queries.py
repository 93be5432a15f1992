"""Reads of the service projection (``hub.projections.service``): an open conversation's
SLA state (the API, the queue), the targets that passed without a breach recorded (the SLA
watcher), and the live gauges of ``/metrics``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, and_, func, or_, select

from hub.projections.base import as_utc, record_from_row, utc
from hub.projections.service import OPEN, response_kind, service_conversations

__all__ = [
    "DueBreach",
    "ServiceGauges",
    "SlaState",
    "due_breaches",
    "gauges",
    "next_due",
    "sla_states",
]


@dataclass(frozen=True, slots=True)
class SlaState:
    """An open conversation's SLA: its policy and what falls due when."""

    conversation_id: UUID
    policy: str | None
    waiting_since: datetime | None
    response_due_at: datetime | None
    resolution_due_at: datetime | None

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest due time of what is still running (None: nothing is)."""
        dues = [d for d in (self.response_due_at, self.resolution_due_at) if d is not None]
        return min(dues) if dues else None


def sla_states(conn: Connection, conversation_ids: Collection[UUID]) -> dict[UUID, SlaState]:
    """The SLA state of these conversations (those the projection knows)."""
    if not conversation_ids:
        return {}
    c = service_conversations.c
    rows = conn.execute(
        select(
            c.conversation_id,
            c.policy,
            c.waiting_since,
            c.response_due_at,
            c.resolution_due_at,
            c.status,
        ).where(c.conversation_id.in_(list(conversation_ids)))
    ).mappings()
    found = {}
    for row in rows:
        running = row["status"] in OPEN
        state = record_from_row(
            SlaState,
            {**row, "resolution_due_at": row["resolution_due_at"] if running else None},
            ("waiting_since", "response_due_at", "resolution_due_at"),
        )
        found[state.conversation_id] = state
    return found


@dataclass(frozen=True, slots=True)
class DueBreach:
    """A target that passed and has no breach recorded yet."""

    conversation_id: UUID
    customer_id: UUID
    channel: str
    policy: str
    target: str
    clock_started_at: datetime
    due_at: datetime


def due_breaches(conn: Connection, now: datetime, limit: int = 500) -> list[DueBreach]:
    """Targets of open conversations that passed by ``now`` without a breach recorded."""
    c = service_conversations.c
    running = and_(c.status.in_(OPEN), c.customer_id.is_not(None), c.policy.is_not(None))
    response = and_(
        c.response_due_at <= utc(now),
        or_(c.response_breach_clock.is_(None), c.response_breach_clock != c.waiting_since),
    )
    resolution = and_(c.resolution_due_at <= utc(now), c.resolution_breach_recorded.is_(False))
    rows = conn.execute(
        select(service_conversations).where(running, or_(response, resolution)).limit(limit)
    ).mappings()
    found = []
    for row in rows:
        if row["response_due_at"] is not None and as_utc(row["response_due_at"]) <= now:
            clock = as_utc(row["waiting_since"])
            if (
                row["response_breach_clock"] is None
                or as_utc(row["response_breach_clock"]) != clock
            ):
                found.append(
                    DueBreach(
                        conversation_id=row["conversation_id"],
                        customer_id=row["customer_id"],
                        channel=row["channel"],
                        policy=row["policy"],
                        target=response_kind(dict(row)),
                        clock_started_at=clock,
                        due_at=as_utc(row["response_due_at"]),
                    )
                )
        due = row["resolution_due_at"]
        if due is not None and as_utc(due) <= now and not row["resolution_breach_recorded"]:
            found.append(
                DueBreach(
                    conversation_id=row["conversation_id"],
                    customer_id=row["customer_id"],
                    channel=row["channel"],
                    policy=row["policy"],
                    target="resolution",
                    clock_started_at=as_utc(row["first_inbound_at"]),
                    due_at=as_utc(due),
                )
            )
    return found


def next_due(conn: Connection) -> datetime | None:
    """The earliest due time among open conversations (the watcher sleeps until it)."""
    c = service_conversations.c
    running = c.status.in_(OPEN)
    times = [
        conn.scalar(
            select(c.response_due_at)
            .where(running, c.response_due_at.is_not(None))
            .order_by(c.response_due_at)
            .limit(1)
        ),
        conn.scalar(
            select(c.resolution_due_at)
            .where(
                running,
                c.resolution_due_at.is_not(None),
                c.resolution_breach_recorded.is_(False),
            )
            .order_by(c.resolution_due_at)
            .limit(1)
        ),
    ]
    present = [as_utc(t) for t in times if t is not None]
    return min(present) if present else None


@dataclass(frozen=True, slots=True)
class ServiceGauges:
    """The live figures of ``/metrics``."""

    open_by_channel: dict[str, int]
    breaching_soon: int
    breached: int
    oldest_waiting_seconds: float


def gauges(conn: Connection, now: datetime, soon: float = 3600.0) -> ServiceGauges:
    """Open conversations per channel, how many pass a target within ``soon`` seconds, how
    many are past one, and the longest wait for a response."""
    c = service_conversations.c
    running = c.status.in_(OPEN)
    counted = conn.execute(select(c.channel, func.count()).where(running).group_by(c.channel))
    by_channel = {str(channel): int(n) for channel, n in counted}
    at, later = utc(now), utc(now + timedelta(seconds=soon))
    dues = (c.response_due_at, c.resolution_due_at)  # either may be NULL: no unknowns here
    past = or_(*(and_(due.is_not(None), due <= at) for due in dues))
    within = or_(*(and_(due.is_not(None), due <= later) for due in dues))
    breached = conn.scalar(select(func.count()).where(running, past)) or 0
    soon_count = conn.scalar(select(func.count()).where(running, within, ~past)) or 0
    oldest = conn.scalar(select(func.min(c.waiting_since)).where(running))
    waited = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return ServiceGauges(by_channel, soon_count, breached, max(0.0, waited))
