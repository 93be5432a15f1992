"""The webhook queue: published events fanned out per endpoint, claimed head by head with
leases, and settled (delivered, retried later, given up, endpoint disabled) with an attempt
logged in the same transaction; the given-up events listed and redelivered; the intake's
cursors.

Only the *head* of an (endpoint, customer) pair, its pending row of smallest position, is
claimable, so a customer's events go out in order while other customers' go on; claims are
conditional updates setting a lease, so processes racing for a row send it once (unless a
lease expires: at-least-once). The rows hold ids and positions, nothing personal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, RowMapping, and_, func, or_, select

from hub.domain.errors import NotFound
from hub.sql import insert, insert_ignoring_duplicates, lock_keys, write_transaction
from hub.store.webhooks import (
    FAILED,
    FAN_OUT_LOCK,
    PENDING,
    Attempt,
    attempt_of,
    attempts,
    endpoints,
    intake,
    matches,
    queue,
    time_of,
)

__all__ = ["EventRef", "ParkedEvent", "QueuedEvent", "WebhookQueue"]

_ANY_ENABLED = select(endpoints.c.id).where(endpoints.c.enabled).limit(1)


@dataclass(frozen=True)
class EventRef:
    """A published event as the queue knows it: ids, position and type, nothing personal."""

    event_id: UUID
    position: int
    customer_id: UUID
    event_type: str


@dataclass(frozen=True)
class QueuedEvent:
    """A row of the queue: which event, for which endpoint, and how its delivery went."""

    endpoint_id: UUID
    event_id: UUID
    position: int
    customer_id: UUID
    event_type: str
    attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True)
class ParkedEvent:
    """An event given up after the retry period: kept, redeliverable."""

    event_id: UUID
    event_type: str
    position: int
    customer_id: UUID
    attempts: int
    first_attempt_at: datetime | None
    last_error: str | None


class WebhookQueue:
    """The queue, the intake cursors and the outcomes of attempts. ``clock`` gives every
    time it records and compares."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite has one write lock, and a connection that finds it taken sleeps in growing
        # steps (its busy handler): the deliverer's claims and settles, from several
        # threads, queue here instead. PostgreSQL writes them side by side.
        self._serial: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (one at a time in this process on SQLite)."""
        with self._serial, write_transaction(self.engine) as conn:
            yield conn

    def fan_out(self, events: Sequence[EventRef], cursor: tuple[str, int] | None = None) -> int:
        """Queue each event for every enabled endpoint whose patterns take its type and that
        was created before it; duplicates are ignored (a batch read again queues nothing
        twice). ``cursor`` (intake name, position) moves in the same transaction. Returns
        how many rows were offered."""
        now = self._now()
        with self._writing() as conn:
            lock_keys(conn, *FAN_OUT_LOCK)
            wanted = conn.execute(
                select(endpoints.c.id, endpoints.c.event_types, endpoints.c.start_position).where(
                    endpoints.c.enabled
                )
            ).all()
            rows = [
                _queue_row(endpoint_id, event, now)
                for endpoint_id, patterns, start in wanted
                for event in events
                if event.position > start and matches(patterns, event.event_type)
            ]
            insert_ignoring_duplicates(conn, queue, rows)
            if cursor is not None:
                self._move_cursor(conn, *cursor)
        return len(rows)

    def requeue(self, endpoint_id: UUID, events: Sequence[EventRef]) -> int:
        """Queue these events for one endpoint again (a replay): new rows, or rows reset to
        pending and due now (a given-up one too; one being sent is released from its claim,
        so that it is sent again whatever that send's outcome)."""
        now = self._now()
        rows = [_queue_row(endpoint_id, event, now) for event in events]
        if not rows:
            return 0
        with self._writing() as conn:
            statement = insert(conn, queue)
            reset = {"state": PENDING, "attempts": 0, "first_attempt_at": None}
            reset |= {"next_attempt_at": now, "last_error": None}
            reset |= {"lease_owner": None, "lease_until": None}
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["endpoint_id", "event_id"], set_=reset
                ),
                rows,
            )
        return len(rows)

    def intake_position(self, name: str, default: Callable[[], int]) -> int:
        """The position up to which intake ``name`` has queued; a new intake starts at
        ``default()`` (no later than the oldest endpoint's start)."""
        with self._writing() as conn:
            found = conn.scalar(select(intake.c.position).where(intake.c.name == name))
            if found is not None:
                return int(found)
            start = conn.scalar(select(func.min(endpoints.c.start_position)))
            position = default() if start is None else min(default(), int(start))
            insert_ignoring_duplicates(conn, intake, [{"name": name, "position": position}])
            return int(conn.scalar(select(intake.c.position).where(intake.c.name == name)) or 0)

    def any_enabled(self) -> bool:
        """Whether an endpoint is enabled now (a read, without the write lock)."""
        with self.engine.connect() as conn:
            return conn.scalar(_ANY_ENABLED) is not None

    def skip_to(self, name: str, position: int) -> bool:
        """Move intake ``name`` to ``position`` (read before this call) if no endpoint is
        enabled: nothing up to there is wanted. False, and nothing moved, if one is."""
        if self.any_enabled():  # the usual answer, without the write lock
            return False
        with self._writing() as conn:
            lock_keys(conn, *FAN_OUT_LOCK)
            if conn.scalar(_ANY_ENABLED) is not None:
                return False
            self._move_cursor(conn, name, position)
        return True

    @staticmethod
    def _move_cursor(conn: Connection, name: str, position: int) -> None:
        conn.execute(
            intake.update()
            .where(intake.c.name == name, intake.c.position < position)
            .values(position=position)
        )

    # -- delivering ----------------------------------------------------------------------

    def claim(
        self, endpoint_id: UUID, owner: str, limit: int, lease_until: datetime
    ) -> list[QueuedEvent]:
        """Lease up to ``limit`` heads of the endpoint's (customer) lines that are due, in
        log order; a row another process leased meanwhile is left to it."""
        now = self._now()
        free = or_(queue.c.lease_until.is_(None), queue.c.lease_until < now)
        # The head of each customer's line: their first pending event (one pass over the
        # index by customer, not a look-up per queued row).
        first = (
            select(queue.c.customer_id, func.min(queue.c.position).label("position"))
            .where(queue.c.endpoint_id == endpoint_id, queue.c.state == PENDING)
            .group_by(queue.c.customer_id)
            .subquery("first")
        )
        due = and_(queue.c.state == PENDING, queue.c.next_attempt_at <= now, free)
        heads = (
            select(queue)
            .join(
                first,
                and_(
                    queue.c.endpoint_id == endpoint_id,
                    queue.c.customer_id == first.c.customer_id,
                    queue.c.position == first.c.position,
                ),
            )
            .where(due)
            .order_by(queue.c.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:  # a read: most rounds find nothing to claim
            candidates = conn.execute(heads).mappings().all()
        if not candidates:
            return []
        until = lease_until.astimezone(UTC)
        ids = [row["event_id"] for row in candidates]
        this = and_(queue.c.endpoint_id == endpoint_id, queue.c.event_id.in_(ids))
        with self._writing() as conn:
            # one statement for the lot: only those still due (not claimed, rescheduled or
            # settled meanwhile by another process) are taken, and read back as ours
            conn.execute(
                queue.update().where(this, due).values(lease_owner=owner, lease_until=until)
            )
            taken = set(
                conn.scalars(
                    select(queue.c.event_id).where(
                        this, queue.c.lease_owner == owner, queue.c.lease_until == until
                    )
                )
            )
        return [_queued(row) for row in candidates if row["event_id"] in taken]

    def delivered(self, event: QueuedEvent, owner: str, attempt: dict[str, Any]) -> None:
        """A 2xx: the row goes (its attempts stay in the log), unless it is no longer
        ``owner``'s claim (queued again by a replay meanwhile, or taken over after its lease
        expired: then it is sent again); the endpoint succeeded."""
        self.delivered_many([(event, attempt)], owner)

    def delivered_many(
        self, settled: Sequence[tuple[QueuedEvent, dict[str, Any]]], owner: str
    ) -> None:
        """:meth:`delivered` for several events in one transaction (the deliverer settles
        the sends that finished together, as a group commit)."""
        with self._writing() as conn:
            wanted = {event.endpoint_id for event, _ in settled}
            there = set(conn.scalars(select(endpoints.c.id).where(endpoints.c.id.in_(wanted))))
            kept = [(event, attempt) for event, attempt in settled if event.endpoint_id in there]
            for event, _ in kept:
                conn.execute(
                    queue.delete().where(
                        queue.c.endpoint_id == event.endpoint_id,
                        queue.c.event_id == event.event_id,
                        queue.c.lease_owner == owner,
                    )
                )
            if there:
                conn.execute(
                    endpoints.update()
                    .where(endpoints.c.id.in_(there))
                    .values(last_success_at=self._now(), failing_since=None)
                )
            if kept:
                conn.execute(attempts.insert(), [_attempt_row(e, a, "delivered") for e, a in kept])

    def failed(
        self,
        event: QueuedEvent,
        owner: str,
        attempt: dict[str, Any],
        *,
        next_attempt_at: datetime | None,
        disable_after: datetime | None = None,
        gone: bool = False,
    ) -> str:
        """A failed attempt: retried at ``next_attempt_at``, or given up (None). The endpoint
        is disabled when ``gone`` (a 410; the row stays pending), or when it has failed since
        before ``disable_after`` without a success. Returns the outcome logged."""
        now = self._now()
        with self._settling(event.endpoint_id) as conn:
            if conn is None:
                return "failed"
            values: dict[str, Any] = {
                "attempts": event.attempts + 1,
                "first_attempt_at": (event.first_attempt_at or attempt["at"]).astimezone(UTC),
                "last_error": (attempt.get("error") or "")[:300] or None,
                "lease_owner": None,
                "lease_until": None,
            }
            if next_attempt_at is None:
                values["state"] = FAILED
            else:
                values["next_attempt_at"] = next_attempt_at.astimezone(UTC)
            conn.execute(
                queue.update()
                .where(
                    queue.c.endpoint_id == event.endpoint_id,
                    queue.c.event_id == event.event_id,
                    queue.c.lease_owner == owner,
                )
                .values(**values)
            )
            this = endpoints.c.id == event.endpoint_id
            conn.execute(  # failing since the first failed attempt began
                endpoints.update()
                .where(this, endpoints.c.failing_since.is_(None))
                .values(failing_since=attempt["at"].astimezone(UTC))
            )
            outcome = "retrying" if next_attempt_at is not None else "failed"
            disabling = endpoints.update().where(this, endpoints.c.enabled)
            if not gone and disable_after is not None:
                disabling = disabling.where(endpoints.c.failing_since <= disable_after)
            if gone or disable_after is not None:
                reason = "gone" if gone else "failing"
                done = conn.execute(
                    disabling.values(enabled=False, disabled_reason=reason, disabled_at=now)
                )
                if done.rowcount:
                    outcome = "disabled"
            self._log(conn, event, attempt, outcome)
        return outcome

    def log_ping(self, attempt: dict[str, Any]) -> Attempt:
        """Log a ping's attempt (``endpoint_id``, ``event_id``, ``at``, the answer)."""
        row = {**bounded(attempt), "event_type": "webhook.ping"}
        row |= {"outcome": "ping", "attempt": 1, "position": None, "customer_id": None}
        with self._writing() as conn:
            key = conn.execute(attempts.insert().values(**row)).inserted_primary_key
        assert key is not None
        return attempt_of({**row, "id": key[0]})

    # -- given-up events ------------------------------------------------------------------

    def parked(self, endpoint_id: UUID, *, after_position: int, limit: int) -> list[ParkedEvent]:
        query = (
            select(queue)
            .where(queue.c.endpoint_id == endpoint_id, queue.c.state == FAILED)
            .where(queue.c.position > after_position)
            .order_by(queue.c.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ParkedEvent(
                event_id=row["event_id"],
                event_type=row["event_type"],
                position=int(row["position"]),
                customer_id=row["customer_id"],
                attempts=row["attempts"],
                first_attempt_at=time_of(row["first_attempt_at"]),
                last_error=row["last_error"],
            )
            for row in rows
        ]

    def redeliver(self, endpoint_id: UUID, event_id: UUID | None = None) -> int:
        """Given-up rows back to pending, due now, as if new; one event or all. Returns how
        many; :class:`NotFound` for an ``event_id`` not given up for this endpoint."""
        which = and_(queue.c.endpoint_id == endpoint_id, queue.c.state == FAILED)
        if event_id is not None:
            which = and_(which, queue.c.event_id == event_id)
        with self._writing() as conn:
            result = conn.execute(
                queue.update()
                .where(which)
                .values(
                    state=PENDING,
                    attempts=0,
                    first_attempt_at=None,
                    next_attempt_at=self._now(),
                    last_error=None,
                )
            )
        count = int(result.rowcount or 0)
        if event_id is not None and not count:
            raise NotFound(f"event {event_id} is not given up for this endpoint", id=str(event_id))
        return count

    @contextmanager
    def _settling(self, endpoint_id: UUID) -> Iterator[Connection | None]:
        """A write transaction for an outcome; None when the endpoint was deleted meanwhile."""
        with self._writing() as conn:
            there = conn.scalar(select(endpoints.c.id).where(endpoints.c.id == endpoint_id))
            yield conn if there is not None else None

    @staticmethod
    def _log(conn: Connection, event: QueuedEvent, attempt: dict[str, Any], outcome: str) -> None:
        conn.execute(attempts.insert().values(**_attempt_row(event, attempt, outcome)))


def _attempt_row(event: QueuedEvent, attempt: dict[str, Any], outcome: str) -> dict[str, Any]:
    return {
        "endpoint_id": event.endpoint_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "position": event.position,
        "customer_id": event.customer_id,
        "attempt": event.attempts + 1,
        "outcome": outcome,
        **bounded(attempt),
    }


def bounded(attempt: dict[str, Any]) -> dict[str, Any]:
    """An attempt's columns as stored: the time in UTC, texts cut to their columns."""
    error, excerpt = attempt.get("error"), attempt.get("response_excerpt")
    return attempt | {
        "at": attempt["at"].astimezone(UTC),
        "error": error[:300] if error else error,
        "response_excerpt": excerpt[:256] if excerpt else excerpt,
    }


def _queue_row(endpoint_id: UUID, event: EventRef, now: datetime) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "event_id": event.event_id,
        "position": event.position,
        "customer_id": event.customer_id,
        "event_type": event.event_type,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
    }


def _queued(row: RowMapping) -> QueuedEvent:
    return QueuedEvent(
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        position=int(row["position"]),
        customer_id=row["customer_id"],
        event_type=row["event_type"],
        attempts=row["attempts"],
        first_attempt_at=time_of(row["first_attempt_at"]),
    )
