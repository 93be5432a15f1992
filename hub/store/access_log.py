"""The access log: who read whose personal data, when, through what, and how much.

Every read of a customer's personal data (the API's customer, timeline, search and message
routes, the console's customer page, its live feed and search) appends an entry. It holds ids
only: the principal's token id, name and role, the customer ids, the route template or console
action and a count; never what was read nor what was searched for.

Reads must not slow down: :meth:`AccessLog.record` appends to a list under a lock and returns.
A background thread writes what is pending in one transaction every ``flush_seconds`` (or
sooner once ``batch_size`` entries wait), and once more at :meth:`AccessLog.stop`, so a clean
stop loses nothing. While the database is away, entries wait in memory (at most
``max_pending``; beyond that the oldest are dropped, with a warning) and the writes are retried
with the same ids, so a retry never doubles an entry. The same thread deletes entries older
than the retention at start and then daily.

One entry has one row per customer it covers (a merged group read as one: every member), so a
lookup by any member, or after an unmerge by the member alone, finds it; the readers return each
entry once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Uuid,
    and_,
    func,
    or_,
    select,
)

from hub.domain.ids import uuid7
from hub.events.common import scrub_text
from hub.sql import insert_ignoring_duplicates, write_transaction
from hub.store.tokens import Principal

__all__ = ["AccessEntry", "AccessLog", "access_log"]

log = logging.getLogger(__name__)

metadata = MetaData()
access_log = Table(
    "hub_access_log",
    metadata,
    Column("id", Uuid, nullable=False),  # the entry (UUIDv7 of its time)
    Column("customer_id", Uuid, nullable=False),  # one row per customer the entry covers
    Column("subject_id", Uuid, nullable=False),  # the customer asked for (a group's root)
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal_id", Uuid, nullable=True),  # None: the HUB_ADMIN_TOKEN
    Column("principal_name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(200), nullable=False),
    Column("item_count", Integer, nullable=False),
    PrimaryKeyConstraint("id", "customer_id", name="hub_access_log_pkey"),
    Index("hub_access_log_customer", "customer_id", "at"),
    Index("hub_access_log_at", "at"),
)

#: The columns of an entry (the same on each of its rows): what the readers select, distinct.
_ENTRY = (
    access_log.c.id,
    access_log.c.at,
    access_log.c.subject_id,
    access_log.c.principal_id,
    access_log.c.principal_name,
    access_log.c.role,
    access_log.c.action,
    access_log.c.item_count,
)

#: What :meth:`AccessLog.record` keeps until the next flush: (at, principal, customers,
#: action, items).
_Pending = tuple[datetime, Principal, tuple[UUID, ...], str, int]


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One read of personal data: ``customer_id`` is the customer asked for (the root of a
    merged group read as one), ``items`` how many items were shown (timeline items, search
    hits; 1 for a profile or a message; 0 for a live feed opened)."""

    id: UUID
    at: datetime
    customer_id: UUID
    principal_id: UUID | None
    principal_name: str
    role: str
    action: str
    items: int

    @classmethod
    def from_row(cls, row: Row[Any]) -> AccessEntry:
        at: datetime = row.at
        return cls(
            id=row.id,
            at=at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC),
            customer_id=row.subject_id,
            principal_id=row.principal_id,
            principal_name=row.principal_name,
            role=row.role,
            action=row.action,
            items=row.item_count,
        )


class AccessLog:
    """The access log of the state database: a batching writer and its readers.

    ``retention``: entries older than this are deleted (at :meth:`start`, then every
    ``purge_every_seconds``); ``clock`` gives the entries' times and the age purges count from.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retention: timedelta = timedelta(days=730),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        flush_seconds: float = 0.5,
        batch_size: int = 500,
        max_pending: int = 100_000,
        purge_every_seconds: float = 86_400.0,
    ) -> None:
        self._engine = engine
        self.retention = retention
        self.clock = clock
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._purge_every = purge_every_seconds
        self._lock = threading.Lock()  # guards _pending
        self._pending: list[_Pending] = []
        self._flushing = threading.Lock()  # one flush at a time; guards _unwritten
        self._unwritten: list[dict[str, Any]] = []  # rows of a failed flush, ids assigned
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # entries dropped because the database was away too long

    @staticmethod
    def create_table(engine: Engine) -> None:
        """Create the table (called under the schema lock with the other state tables)."""
        metadata.create_all(engine)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background writer (which purges by age first)."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the writer and write what is still pending; what cannot be written is
        reported in the log (with its count), never dropped silently."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for attempt in range(3):
            try:
                self.flush()
                return
            except Exception as exc:  # the database may be away: try again, then report
                if attempt == 2:
                    log.error(
                        "access log: %d entries not written at stop: %s: %s",
                        self.pending,
                        type(exc).__name__,
                        exc,
                    )
                else:
                    time.sleep(0.2)

    @property
    def pending(self) -> int:
        """How many entries wait to be written."""
        with self._lock:
            waiting = len(self._pending)
        return waiting + len({row["id"] for row in self._unwritten})

    # -- writing ---------------------------------------------------------------------------

    def record(
        self, principal: Principal, customer_ids: Sequence[UUID], action: str, items: int = 1
    ) -> None:
        """Note that ``principal`` read personal data of ``customer_ids`` (a merged group:
        its root first, then the members) through ``action`` (a route template such as
        ``GET /v1/customers/{customer_id}``, or ``console:customer_page``), ``items`` of it.
        Cheap and never failing: an append in memory; written by the background thread."""
        if not customer_ids:
            return
        entry = (self.clock(), principal, tuple(customer_ids), action, items)
        with self._lock:
            self._pending.append(entry)
            full = len(self._pending) >= self._batch_size
        if full and not self._wake.is_set():
            self._wake.set()

    def flush(self) -> int:
        """Write every pending entry now, in one transaction; returns how many were written.
        On failure the entries stay pending (with their ids) and the error is raised."""
        with self._flushing:
            with self._lock:
                taken, self._pending = self._pending, []
            rows = self._unwritten + [row for entry in taken for row in _rows(entry)]
            if not rows:
                return 0
            try:
                with write_transaction(self._engine) as conn:
                    insert_ignoring_duplicates(conn, access_log, rows)
            except Exception:
                self._unwritten = self._bounded(rows)
                raise
            self._unwritten = []
            return len({row["id"] for row in rows})

    def _bounded(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` without their oldest entries beyond ``max_pending`` (counted, reported)."""
        ids = list(dict.fromkeys(row["id"] for row in rows))
        with self._lock:
            room = self._max_pending - len(self._pending)
        excess = len(ids) - max(room, 0)
        if excess <= 0:
            return rows
        dropped = set(ids[:excess])
        self.dropped += excess
        log.warning("access log: database away, %d oldest entries dropped", excess)
        return [row for row in rows if row["id"] not in dropped]

    def _run(self) -> None:
        delay = self._flush_seconds
        failures = 0
        next_purge = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + self._purge_after_attempt()
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                break  # stop() writes the rest
            try:
                self.flush()
            except Exception as exc:  # the database may be away for a while: back off
                failures += 1
                delay = min(30.0, self._flush_seconds * 2**failures)
                log.warning(
                    "access log: %d entries not written yet: %s: %s",
                    self.pending,
                    type(exc).__name__,
                    exc,
                )
            else:
                failures, delay = 0, self._flush_seconds

    def _purge_after_attempt(self) -> float:
        """Purge by age; the seconds until the next try (sooner after a failure)."""
        try:
            purged = self.purge_expired()
        except Exception as exc:
            log.warning("access log not purged: %s: %s", type(exc).__name__, exc)
            return min(300.0, self._purge_every)
        if purged:
            log.info("access log: purged %d entries older than %s", purged, self.retention)
        return self._purge_every

    # -- retention -------------------------------------------------------------------------

    def purge_older_than(self, cutoff: datetime) -> int:
        """Delete the entries recorded before ``cutoff``; returns how many rows went."""
        with write_transaction(self._engine) as conn:
            deleted = conn.execute(
                access_log.delete().where(access_log.c.at < cutoff.astimezone(UTC))
            )
        return int(deleted.rowcount or 0)

    def purge_expired(self) -> int:
        """Delete the entries older than the retention, by the clock."""
        return self.purge_older_than(self.clock() - self.retention)

    # -- reading ---------------------------------------------------------------------------

    def entries(
        self, customer_ids: Sequence[UUID], limit: int = 50, before: UUID | None = None
    ) -> tuple[list[AccessEntry], UUID | None]:
        """Entries about any of ``customer_ids`` (a merged group), newest first, each once,
        after writing this process's pending ones; and the cursor of the next (older) page,
        None on the last. ``before``: a cursor this gave; ValueError for one it did not."""
        try:
            self.flush()
        except Exception as exc:  # the log is readable without what is still pending
            log.warning("access log: pending entries not written: %s", type(exc).__name__)
        ids = list(customer_ids)
        with self._engine.connect() as conn:
            query = select(*_ENTRY).distinct().where(access_log.c.customer_id.in_(ids))
            if before is not None:
                at = conn.scalar(select(access_log.c.at).where(access_log.c.id == before).limit(1))
                if at is None:
                    raise ValueError(f"no access log entry {before} to page before")
                query = query.where(
                    or_(
                        access_log.c.at < at,
                        and_(access_log.c.at == at, access_log.c.id < before),
                    )
                )
            rows = conn.execute(
                query.order_by(access_log.c.at.desc(), access_log.c.id.desc()).limit(limit + 1)
            ).all()
        found = [AccessEntry.from_row(row) for row in rows[:limit]]
        return found, found[-1].id if len(rows) > limit else None

    def iter_entries(
        self, customer_ids: Sequence[UUID], page_size: int = 1000
    ) -> Iterator[AccessEntry]:
        """Every entry about any of ``customer_ids``, oldest first, each once, read a page at
        a time (bounded memory, for the export)."""
        ids = list(customer_ids)
        last: tuple[datetime, UUID] | None = None
        while True:
            query = select(*_ENTRY).distinct().where(access_log.c.customer_id.in_(ids))
            if last is not None:
                query = query.where(
                    or_(
                        access_log.c.at > last[0],
                        and_(access_log.c.at == last[0], access_log.c.id > last[1]),
                    )
                )
            with self._engine.connect() as conn:
                rows = conn.execute(
                    query.order_by(access_log.c.at, access_log.c.id).limit(page_size)
                ).all()
            yield from (AccessEntry.from_row(row) for row in rows)
            if len(rows) < page_size:
                return
            last = (rows[-1].at, rows[-1].id)

    def count(self) -> int:
        """How many entries the table holds (not counting pending ones)."""
        with self._engine.connect() as conn:
            return int(conn.scalar(select(func.count(func.distinct(access_log.c.id)))) or 0)


def _rows(entry: _Pending) -> list[dict[str, Any]]:
    at, principal, customers, action, items = entry
    entry_id = uuid7(at)
    common = {
        "id": entry_id,
        "subject_id": customers[0],
        "at": at.astimezone(UTC),
        "principal_id": principal.token_id,
        # any text a token's name may hold is storable (no NUL, no lone surrogate): one odd
        # name must not keep a batch from being written
        "principal_name": scrub_text(principal.name[:200]),
        "role": principal.role,
        "action": scrub_text(action[:200]),
        "item_count": items,
    }
    return [common | {"customer_id": c} for c in dict.fromkeys(customers)]
