"""Group commit: interactions of concurrent requests recorded (or looked up) together.

Each store transaction has a fixed cost (reads, commit) far above the cost of one more item in
it. Requests hand their interactions to one writer thread, which records everything waiting in a
single ``record_interactions`` call, up to ``max_items``; a lone request is recorded at once, so
nobody waits for a batch to fill. Each request still gets exactly its own results.

**One request's bad data never fails another's write.** When a group's transaction fails for a
reason that may lie in the data (anything but the store being unavailable), nothing of it was
recorded, and every item is recorded again alone: the good ones succeed, and each one that fails
alone comes back as :class:`Unrecorded` with its error, to its own request only. A failure of the
store itself reaches every request of the group at once (retrying item by item would only fail
item by item). The same queue
groups the distributed ingest role's duplicate lookups: one query and one hand-off to a thread
for every request waiting, not one each.

Coroutines wait on futures of their own event loop, all of a group's settled by one callback per
loop (one wake-up of the loop per group, not one per request); threads wait on
``concurrent.futures`` futures. A waiter that gave up (a cancelled request) is skipped: its items
were recorded all the same, and the writer carries on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import eventsourcing.persistence as es
import sqlalchemy.exc as sa

from hub.domain.errors import StoreUnavailable
from hub.events import InboundInteraction

log = logging.getLogger(__name__)

R = TypeVar("R")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is the store being unreachable (or refusing connections) rather than
    something about the data written: retrying the write item by item, or counting it against
    a dead letter, would only fail the same way."""
    return isinstance(
        error,
        StoreUnavailable
        | es.OperationalError
        | es.InterfaceError
        | sa.OperationalError
        | sa.InterfaceError,
    )


def may_lie_in_the_data(error: BaseException) -> bool:
    """Whether a failed write group is worth recording again item by item: any failure but
    the store being unreachable (which would fail every item alike) or a shutdown."""
    return isinstance(error, Exception) and not is_outage(error)


Outcome = list[Any] | BaseException


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """The result of an item that failed when recorded on its own, after its group failed:
    nothing of it is in the store, and ``error`` says why."""

    error: Exception


@dataclass(slots=True)
class _Waiting(Generic[R]):
    """One request's items and whoever waits for them: a coroutine's future on its loop, or
    a thread's future."""

    items: Sequence[InboundInteraction]
    waiter: asyncio.Future[list[R | Unrecorded]] | Future[list[R | Unrecorded]]


class WriteQueue(Generic[R]):
    """``record(items) -> one result per item``, called in one thread for the items of every
    request waiting."""

    def __init__(
        self,
        record: Callable[[Sequence[InboundInteraction]], list[R]],
        max_items: int = 1000,
        name: str = "write-queue",
        isolate: Callable[[BaseException], bool] | None = None,
    ) -> None:
        """``isolate(error)`` says whether a failed group is recorded again item by item
        (None: never, every request of the group gets the error)."""
        self._record = record
        self._isolate = isolate
        self._max_items = max_items
        self._pending: list[_Waiting[R]] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.groups = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Record what is already waiting, then stop."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout)

    def submit(self, items: Sequence[InboundInteraction]) -> Future[list[R | Unrecorded]]:
        """Queue ``items`` from a thread; the future has their results once recorded."""
        future: Future[list[R | Unrecorded]] = Future()
        self._put(_Waiting(items, future))
        return future

    async def record(self, items: Sequence[InboundInteraction]) -> list[R | Unrecorded]:
        """Queue ``items`` from a coroutine; returns their results once recorded."""
        waiter: asyncio.Future[list[R | Unrecorded]] = asyncio.get_running_loop().create_future()
        self._put(_Waiting(items, waiter))
        return await waiter

    def _put(self, entry: _Waiting[R]) -> None:
        with self._ready:
            if self._stopping:
                raise RuntimeError("the hub is shutting down")
            self._pending.append(entry)
            self._ready.notify()

    def _take(self) -> list[_Waiting[R]]:
        with self._ready:
            while not self._pending and not self._stopping:
                self._ready.wait()
            group: list[_Waiting[R]] = []
            count = 0
            while self._pending:
                size = len(self._pending[0].items)
                if group and count + size > self._max_items:
                    break
                group.append(self._pending.pop(0))
                count += size
            return group

    def _loop(self) -> None:
        while True:
            group = self._take()
            if not group:
                return  # stopping and nothing left
            items = [item for entry in group for item in entry.items]
            outcomes: list[Outcome]
            results: list[R | Unrecorded]
            try:
                results = list(self._record(items))
            except BaseException as exc:
                if not (isinstance(exc, Exception) and self._isolate and self._isolate(exc)):
                    self._settle(group, [exc] * len(group))  # each request gets it
                    continue
                if len(items) == 1:
                    log.warning("%s: an item failed on its own", self._thread.name, exc_info=exc)
                    results = [Unrecorded(exc)]
                else:
                    log.warning(
                        "%s: a group of %d items failed (%s); recording them one by one",
                        self._thread.name,
                        len(items),
                        type(exc).__name__,
                    )
                    results = self._one_by_one(items)
            self.groups += 1
            outcomes, start = [], 0
            for entry in group:
                outcomes.append(results[start : start + len(entry.items)])
                start += len(entry.items)
            self._settle(group, outcomes)

    def _one_by_one(self, items: Sequence[InboundInteraction]) -> list[R | Unrecorded]:
        results: list[R | Unrecorded] = []
        for item in items:
            try:
                (result,) = self._record([item])
            except Exception as exc:
                log.exception("%s: an item failed on its own", self._thread.name)
                results.append(Unrecorded(exc))
            else:
                results.append(result)
        return results

    @staticmethod
    def _settle(group: list[_Waiting[Any]], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
        for entry, outcome in zip(group, outcomes, strict=True):
            waiter = entry.waiter
            if isinstance(waiter, asyncio.Future):
                by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
            else:
                _resolve(waiter, outcome)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, settled)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.debug("write queue: %d waiter(s) on a closed loop", len(settled))


def _resolve(waiter: asyncio.Future[Any] | Future[Any], outcome: Outcome) -> None:
    try:
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
    except (InvalidStateError, asyncio.InvalidStateError):
        pass  # cancelled while waiting: the items are recorded, nobody wants the answer


def _resolve_all(settled: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for waiter, outcome in settled:
        _resolve(waiter, outcome)
