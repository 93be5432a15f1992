"""What rules and campaigns did, for their counts: one row per occurrence a rule or a
campaign scheduled, with where it stands (``scheduled``, ``queued`` to the dispatcher,
``skipped`` with its code, ``cancelled``, or ``failed`` once its message's delivery failed).

Counts are a GROUP BY over it (``counts``). Replays are harmless: an occurrence is inserted
once, and each later event sets its state (states only move forward in store order). Holds
ids only; an erasure clears the customer and the due time (a birthday's date), keeping the
counts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    select,
)

from hub.events import (
    Envelope,
    InteractionDeliveryUpdated,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
)
from hub.projections.base import Projection, utc
from hub.sql import insert_ignoring_duplicates

__all__ = ["AutomationCounts", "AutomationsProjection", "counts", "occurrences", "pending_of"]

metadata = MetaData()
occurrences = Table(
    "automation_occurrences",
    metadata,
    Column("occurrence_id", Uuid, primary_key=True),
    Column("automation_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("customer_id", Uuid),
    Column("due_at", DateTime(timezone=True)),
    Column("state", String(16), nullable=False),
    Column("code", String(64)),
    Column("message_id", Uuid),
    Column("position", BigInteger, nullable=False),
    Index("ix_automation_occurrences_rule", "automation_id", "state", "code"),
    Index("ix_automation_occurrences_message", "message_id"),
)
#: Whose occurrences are kept: rules and campaigns (not the API's, follow-ups, reminders).
_KINDS = frozenset({"rule", "campaign"})


@dataclass(frozen=True, slots=True)
class AutomationCounts:
    """What one rule or campaign did: occurrences scheduled in all, still waiting, queued
    to the dispatcher (sent, whether delivered or not yet), skipped per code, failed
    (delivery failed) and cancelled."""

    scheduled: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


class AutomationsProjection(Projection):
    name = "automations"
    handles = frozenset(
        {
            "scheduled_message.scheduled.v1",
            "scheduled_message.cancelled.v1",
            "scheduled_message.skipped.v1",
            "scheduled_message.queued.v1",
            "interaction.delivery_updated.v1",
        }
    )
    tables = (occurrences,)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Keep the counts; forget whose they were and when (a birthday)."""
        o = occurrences.c
        conn.execute(
            occurrences.update()
            .where(o.customer_id.in_(list(customer_ids)))
            .values(customer_id=None, due_at=None)
        )

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        for event in events:  # in order: a batch may schedule, then settle, one occurrence
            if isinstance(event, ScheduledMessageScheduled):
                d = event.data
                if d.source.kind in _KINDS:
                    insert_ignoring_duplicates(
                        conn,
                        occurrences,
                        [
                            {
                                "occurrence_id": d.occurrence_id,
                                "automation_id": d.source.id[:64],
                                "kind": d.source.kind,
                                "customer_id": event.customer_id,
                                "due_at": utc(d.due_at),
                                "state": "scheduled",
                                "code": None,
                                "message_id": None,
                                "position": event.position,
                            }
                        ],
                    )
            elif isinstance(event, ScheduledMessageCancelled):
                self._settle(conn, event.data.occurrence_id, event.position, state="cancelled")
            elif isinstance(event, ScheduledMessageSkipped):
                self._settle(
                    conn,
                    event.data.occurrence_id,
                    event.position,
                    state="skipped",
                    code=event.data.code[:64],
                )
            elif isinstance(event, ScheduledMessageQueued):
                self._settle(
                    conn,
                    event.data.occurrence_id,
                    event.position,
                    state="queued",
                    message_id=event.data.message_id,
                )
            elif isinstance(event, InteractionDeliveryUpdated) and event.data.status == "failed":
                o = occurrences.c
                conn.execute(
                    occurrences.update()
                    .where(o.message_id == bindparam("m"), o.state == "queued")
                    .values(state="failed", code=bindparam("c"), position=bindparam("p")),
                    [
                        {
                            "m": event.data.message_id,
                            "c": (event.data.error_code or "failed")[:64],
                            "p": event.position,
                        }
                    ],
                )

    @staticmethod
    def _settle(conn: Connection, occurrence_id: UUID, position: int, **values: Any) -> None:
        o = occurrences.c
        conn.execute(
            occurrences.update()
            .where(o.occurrence_id == occurrence_id, o.position < position)
            .values(position=position, **values)
        )


def counts(conn: Connection, automation_ids: Collection[UUID]) -> dict[UUID, AutomationCounts]:
    """The counts of each of these rules and campaigns (every one, zeros included)."""
    o = occurrences.c
    wanted = [str(i) for i in automation_ids]
    tallies: dict[str, dict[str, Any]] = {
        i: {"scheduled": 0, "pending": 0, "sent": 0, "failed": 0, "cancelled": 0, "skipped": {}}
        for i in wanted
    }
    if wanted:
        rows = conn.execute(
            select(o.automation_id, o.state, o.code, func.count())
            .where(o.automation_id.in_(wanted))
            .group_by(o.automation_id, o.state, o.code)
        )
        for automation_id, state, code, n in rows:
            tally = tallies[automation_id]
            tally["scheduled"] += n
            if state == "skipped":
                tally["skipped"][code or "unknown"] = tally["skipped"].get(code or "unknown", 0) + n
            else:
                key = {"scheduled": "pending", "queued": "sent"}.get(state, state)
                tally[key] += n
    return {UUID(i): AutomationCounts(**t) for i, t in tallies.items()}


def pending_of(conn: Connection, automation_id: UUID, limit: int = 1000) -> list[UUID]:
    """Occurrences of this rule or campaign still waiting (to cancel them)."""
    o = occurrences.c
    return list(
        conn.scalars(
            select(o.occurrence_id)
            .where(o.automation_id == str(automation_id), o.state == "scheduled")
            .limit(limit)
        )
    )
