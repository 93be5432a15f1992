"""The webhook intake: published envelopes, in store order, fanned out into the queue of every
enabled endpoint that wants them ("every outward delivery is a cursor over the published
log").

:class:`WebhookIntake` queues envelopes however they were read; it is all a Kafka worker on
``hub.events`` needs (decode a batch, queue it, then acknowledge it). :class:`LogIntake` is
the embedded runtime's: it follows the store's log with its cursor in the state database,
moved in the same transaction as the rows it queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from hub.events import Envelope
from hub.metrics import Metrics
from hub.store import Store
from hub.store.webhook_queue import EventRef, WebhookQueue

__all__ = ["LogIntake", "WebhookIntake"]

log = logging.getLogger(__name__)

#: While no endpoint is enabled, the intake's cursor moves at most this often.
SKIP_SECONDS = 1.0


def refs(envelopes: Sequence[Envelope]) -> list[EventRef]:
    """What the queue keeps of envelopes: ids, position and type."""
    return [EventRef(e.id, e.position, e.customer_id, e.type) for e in envelopes]


class WebhookIntake:
    """Queues published envelopes for the endpoints whose patterns take them."""

    def __init__(self, queue: WebhookQueue) -> None:
        self._queue = queue

    def queue_envelopes(self, envelopes: Sequence[Envelope]) -> int:
        """Queue ``envelopes`` (published events, in store order per customer) for every
        enabled endpoint whose event-type patterns match and that was created before each
        event; one transaction, blocking (call it from a thread in async code). An event
        queued before for an endpoint is not queued again, so a batch may be offered any
        number of times: acknowledge the batch to its source (a Kafka offset) only after
        this returns. Returns how many (endpoint, event) rows were offered."""
        return self._queue.fan_out(refs(envelopes))


class LogIntake:
    """The embedded runtime's intake: reads published events after its cursor from the
    store's log and queues them. :meth:`run_once` is blocking (called from a thread)."""

    NAME = "embedded"

    def __init__(
        self, store: Store, queue: WebhookQueue, metrics: Metrics, *, batch_size: int = 500
    ) -> None:
        self._store = store
        self._queue = queue
        self._metrics = metrics
        self._batch_size = batch_size
        self.position: int | None = None
        self.queued = 0  # (endpoint, event) rows offered so far
        #: While no endpoint is enabled: when to move the cursor again (monotonic time).
        self._skip_at = 0.0

    def _head(self) -> int:
        return self._store.app.recorder.max_notification_id() or 0

    def run_once(self) -> int:
        """Queue one batch; returns how many positions it covered (0: caught up)."""
        if self.position is None:
            self.position = self._queue.intake_position(self.NAME, self._head)
        start = self.position
        head = self._head()
        self._metrics.webhook_intake_lag.set(max(head - start, 0))
        if head <= start:
            return 0
        if time.monotonic() < self._skip_at and not self._queue.any_enabled():
            # Still no endpoint: the cursor moves past what nobody wants once a second, not
            # after every commit (a locked write each); it only lags meanwhile.
            return 0
        if self._queue.skip_to(self.NAME, head):  # no endpoint wants anything
            self.position = head
            self._skip_at = time.monotonic() + SKIP_SECONDS
            self._metrics.webhook_intake_lag.set(0)
            return head - start
        self._skip_at = 0.0
        envelopes, last = self._store.read_envelopes(start, self._batch_size)
        if last == start:
            return 0
        self.queued += self._queue.fan_out(refs(envelopes), cursor=(self.NAME, last))
        self.position = last
        self._metrics.webhook_intake_lag.set(max(head - last, 0))
        return last - start

    def catch_up(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Queue until nothing is left (or ``stopping()``); returns the positions covered."""
        covered = 0
        while not stopping():
            step = self.run_once()
            if not step:
                break
            covered += step
        return covered
