"""A leased queue of things recorded in the store's log, each handled at its due time: the
loop the dispatcher (replies to send) and the scheduler (occurrences to fire) share.

One process at a time holds the queue's lease (``hub.store.lease``); its durable position
moves only past items that are settled, so after a restart, a crash or a take-over every item
still waiting (held ones included) is read from the log again and decided afresh. Subclasses
say which topics to read and what handling an item means: :meth:`settle` it, or
:meth:`schedule` it again for later.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
import uuid
from datetime import UTC, datetime
from uuid import UUID

from hub.store import Store
from hub.store.lease import LeaseLost, LogLease

log = logging.getLogger(__name__)

#: A standby takes over this long after the active holder stopped renewing.
LEASE_SECONDS = 15.0
#: Log rows read per query.
_READ_BATCH = 500
#: Due items handed to :meth:`DueQueue.handle_many` at once.
_HANDLE_BATCH = 64


class Clock:
    """Time for the queues: the wall clock for due times and what is recorded, the monotonic
    clock for lease renewals and rate limits, and the pause that spaces sends. Tests pass one
    they move forward themselves."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class DueQueue:
    """Reads ``topics`` from the log and hands each item (its aggregate id) to
    :meth:`handle` once due; ``run`` until ``stopping`` is set."""

    #: The lease's name (one active holder per name across processes).
    name = "queue"
    #: What it is called in health reports.
    label = "queue"
    #: The store topics whose events put an item in the queue (due at once when read).
    topics: tuple[str, ...] = ()

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or Clock()
        self._lease = LogLease(
            store.state_engine, self.name, f"{self.name}-{uuid.uuid4().hex[:12]}", LEASE_SECONDS
        )
        self._renew_at = 0.0  # monotonic time of the next lease renewal
        self._write_at = 0.0  # ... and of the next write of a position that moved anyway
        self._advanced = -1  # the position last written
        self._settled = False  # an item was settled since that write
        self._due: list[tuple[float, int, UUID]] = []  # (due, log position, item)
        self._waiting: dict[UUID, int] = {}  # item -> its log position
        #: The log position read up to (``None``: read the durable position first).
        self._read_to: int | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: str | None = None
        #: Whether this process holds the lease now (it is the active one).
        self.active = False

    # -- for subclasses ---------------------------------------------------------------------

    async def handle(self, item: UUID, position: int, stopping: asyncio.Event) -> None:
        """Handle a due item: end by :meth:`settle` or :meth:`schedule` (else it waits for
        the next restart)."""
        raise NotImplementedError

    async def handle_many(self, items: list[tuple[UUID, int]], stopping: asyncio.Event) -> None:
        """Handle due items (item, log position), in due order, each once: by default one
        after the other with :meth:`handle`. A queue whose items can share work overrides it
        (the dispatcher decides a round's messages in one transaction and sends them
        together)."""
        for item, position in items:
            if stopping.is_set():
                return  # the rest are read again from the log at the next start
            await self.handle(item, position, stopping)

    def schedule(self, item: UUID, position: int, due: float) -> None:
        """Handle ``item`` (read at log ``position``) again at ``due`` (a Unix time)."""
        self._waiting[item] = position
        heapq.heappush(self._due, (due, position, item))

    def settle(self, item: UUID) -> None:
        """Nothing more to do for ``item``: the position may move past it."""
        self._waiting.pop(item, None)
        self._settled = True

    # -- the loop ---------------------------------------------------------------------------

    def wake(self, _position: int = 0) -> None:
        """Something was recorded: look at the log now (called from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stopping: asyncio.Event, idle: float = 0.5) -> None:
        self._loop = asyncio.get_running_loop()
        while not stopping.is_set():
            try:
                # The lease is renewed every few seconds, not on every wake-up: a busy hub
                # wakes the queue with each write, and two writes a wake-up cost more than
                # the items themselves.
                if self._clock.monotonic() >= self._renew_at:
                    self.active = await asyncio.to_thread(self._lease.acquire)
                    if not self.active:
                        await _sleep(stopping, idle * 4)  # another process is active
                        continue
                    self._renew_at = self._clock.monotonic() + LEASE_SECONDS / 3
                if self._read_to is None:
                    self._read_to = await asyncio.to_thread(self._lease.position)
                # Cleared before the read, not after: a wake-up during the read (a new
                # record, or the stop) ends the wait below at once instead of being lost.
                self._wake.clear()
                await asyncio.to_thread(self._read_log)
                await self._handle_due(stopping)
                await asyncio.to_thread(self._advance)
                self.error = None
            except LeaseLost:
                self._forget()
            except Exception as exc:  # store or provider trouble: retried, never fatal
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("%s failed, retrying: %s", self.name, self.error)
                # An item may have been taken off the queue half-handled: start again from
                # the durable position, where each one is decided afresh.
                self._forget()
                await _sleep(stopping, 2.0)
                continue
            wait = idle
            if self._due:
                wait = min(idle, max(self._due[0][0] - self._clock.time(), 0.0))
            if stopping.is_set():  # set while this round ran: its wake-up may be cleared
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _forget(self) -> None:
        """Drop what is queued in memory; the next round renews the lease and reads the log
        again from the durable position."""
        self.active = False
        self._due.clear()
        self._waiting.clear()
        self._read_to = None
        self._renew_at = self._write_at = 0.0
        self._advanced = -1

    def _read_log(self) -> None:
        """Queue the items recorded since the last read.

        Reads up to the log's head as it was when the read began, and then stands at that
        head even when the last rows were of other topics: a busy hub wakes the queue on
        every commit, and a read from the last item of the queue's own topics would go over
        the whole log since then each time (all of it, while the queue has had no item yet).
        Every position up to the head is committed (both recorders number rows in commit
        order), so nothing recorded later is skipped."""
        assert self._read_to is not None
        recorder = self._store.app.recorder
        head = recorder.max_notification_id() or 0
        while self._read_to < head:
            batch = recorder.select_notifications(
                start=self._read_to,
                limit=_READ_BATCH,
                stop=head,
                topics=list(self.topics),
                inclusive_of_start=False,
            )
            for notification in batch:
                item = UUID(str(notification.originator_id))
                self.schedule(item, notification.id, self._clock.time())
            self._read_to = batch[-1].id if len(batch) == _READ_BATCH else head

    def _advance(self) -> None:
        """Move the durable position up to the oldest item not yet settled: written when an
        item was settled since the last write, or when the lease is due for renewal anyway.
        Rows of other topics alone move it every few seconds (it renews the lease too): a
        position that lags re-reads a few rows after a restart, and a write per commit's
        wake-up cost a busy hub more than its items."""
        assert self._read_to is not None
        oldest = min(self._waiting.values(), default=None)
        position = self._read_to if oldest is None else oldest - 1
        now = self._clock.monotonic()
        if (position != self._advanced and self._settled) or now >= self._write_at:
            self._lease.advance(position)
            self._advanced = position
            self._settled = False
            self._renew_at = self._write_at = now + LEASE_SECONDS / 3

    async def _handle_due(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            due: dict[UUID, int] = {}  # an item scheduled twice is handled once
            now = self._clock.time()
            while self._due and self._due[0][0] <= now and len(due) < _HANDLE_BATCH:
                _, position, item = heapq.heappop(self._due)
                if item in self._waiting:
                    due.setdefault(item, position)
            if not due:
                return
            await self.handle_many(list(due.items()), stopping)

    def problems(self) -> list[str]:
        return [f"{self.label} failing: {self.error}"] if self.error else []


async def sleep_until_stopped(stopping: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stopping`` is set meanwhile."""
    await _sleep(stopping, seconds)


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
