"""Group commit: interactions of concurrent requests recorded together.

Each store transaction has a fixed cost (reads, commit) far above the cost of one more item in
it. Requests hand their interactions to one writer thread, which records everything waiting in a
single ``record_interactions`` call, up to ``max_items``; a lone request is recorded at once, so
nobody waits for a batch to fill. Each request still gets exactly its own results, and a failure
reaches every request of the failed group (none of its items were recorded).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from hub.domain.application import Recorded
from hub.events import InboundInteraction

log = logging.getLogger(__name__)

Record = Callable[[Sequence[InboundInteraction]], list[Recorded]]


class WriteQueue:
    def __init__(self, record: Record, max_items: int = 1000) -> None:
        self._record = record
        self._max_items = max_items
        self._pending: list[tuple[Sequence[InboundInteraction], Future[list[Recorded]]]] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="write-queue", daemon=True)
        self.groups = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Record what is already waiting, then stop."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout)

    def submit(self, items: Sequence[InboundInteraction]) -> Future[list[Recorded]]:
        future: Future[list[Recorded]] = Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the hub is shutting down")
            self._pending.append((items, future))
            self._ready.notify()
        return future

    async def record(self, items: Sequence[InboundInteraction]) -> list[Recorded]:
        return await asyncio.wrap_future(self.submit(items))

    def _take(self) -> list[tuple[Sequence[InboundInteraction], Future[list[Recorded]]]]:
        with self._ready:
            while not self._pending and not self._stopping:
                self._ready.wait()
            group: list[tuple[Sequence[InboundInteraction], Future[list[Recorded]]]] = []
            count = 0
            while self._pending:
                size = len(self._pending[0][0])
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
            items = [item for entry, _ in group for item in entry]
            try:
                results = self._record(items)
            except BaseException as exc:  # each request gets the failure of its group
                for _, future in group:
                    future.set_exception(exc)
                continue
            self.groups += 1
            start = 0
            for entry, future in group:
                future.set_result(results[start : start + len(entry)])
                start += len(entry)
