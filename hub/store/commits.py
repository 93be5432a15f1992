"""Wake-ups when the event store has recorded something, for readers that follow it.

eventsourcing's PostgreSQL recorder sends a ``NOTIFY`` in every transaction that inserts events;
:class:`CommitSignal` listens on that channel on a connection of its own, so a follower (the
relay) reads as soon as a batch is committed instead of at its next poll. A wake-up is only a
hint: followers still poll, and read the store for what is new, so a lost notification (or a
listener that cannot connect for a while) delays them by one poll at worst. SQLite has no such
channel: there the signal never fires and followers poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from hub.store.database import listen_conninfo
from hub.store.store import Store

log = logging.getLogger(__name__)

#: Back-off between attempts to (re)connect the listener, doubling up to the last.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class CommitSignal:
    """Set when the store committed events; :meth:`wait` for it (or for a timeout)."""

    def __init__(self, store: Store) -> None:
        self._channel: str | None = getattr(store.app.recorder, "channel_name", None)
        conninfo = listen_conninfo(store.state_engine.url)
        self._conninfo = conninfo if self._channel else None
        self._committed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    async def start(self) -> None:
        if self._conninfo is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(self._conninfo))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.listening = False

    async def wait(self, stopping: asyncio.Event, seconds: float) -> None:
        """Until the store committed events since the last wait, ``stopping`` is set, or
        ``seconds`` passed."""
        if not self._committed.is_set():
            waits = [
                asyncio.ensure_future(stopping.wait()),
                asyncio.ensure_future(self._committed.wait()),
            ]
            try:
                await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        self._committed.clear()  # cleared before the caller reads: a later commit sets it anew

    async def _listen(self, conninfo: str) -> None:
        assert self._channel is not None
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(listen)
                    self.listening, failures = True, 0
                    self._committed.set()  # something may have been committed before LISTEN
                    async for _ in conn.notifies():
                        self._committed.set()
                reason = "connection closed"
            except psycopg.Error as exc:  # the database is away: followers poll meanwhile
                reason = type(exc).__name__
            self.listening = False
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            log.debug("commit listener: %s; again in %.1fs", reason, delay)
            await asyncio.sleep(delay)
