"""The webhook deliverer: claims the heads of the endpoints' queues, renders each event from the
store, signs and sends it, and records the outcome (delivered, retried later with backoff,
given up, endpoint disabled), up to ``max_in_flight`` sends per endpoint at a time.

It runs as a task on the server's event loop (``Runtime.start_webhooks``); the embedded
runtime gives it its log intake (``intake=True``), the distributed one feeds the queue from
``hub.events`` (:class:`~hub.runtime.webhooks.intake.WebhookIntake`) and runs it without.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hub.config import WebhookSettings
from hub.events import encode_event
from hub.metrics import Metrics
from hub.runtime.webhooks.intake import LogIntake
from hub.runtime.webhooks.retry import backoff_seconds, next_attempt, retry_after_seconds
from hub.runtime.webhooks.sender import Answer, Sender, SendFailed
from hub.runtime.webhooks.signing import delivery_headers
from hub.store import Store
from hub.store.webhook_queue import QueuedEvent, WebhookQueue
from hub.store.webhooks import EndpointRow, WebhookStore

__all__ = ["WebhookDeliverer"]

log = logging.getLogger(__name__)

#: Seconds between refreshes of the queue gauges, and between purges of the attempt log.
_GAUGE_SECONDS = 5.0
_PURGE_SECONDS = 3600.0
#: How long a stop waits for the sends in flight (their leases expire otherwise).
_DRAIN_SECONDS = 5.0


class WebhookDeliverer:
    """Delivers queued webhooks until ``run``'s ``stopping`` is set."""

    def __init__(
        self,
        store: Store,
        endpoints: WebhookStore,
        queue: WebhookQueue,
        settings: WebhookSettings,
        metrics: Metrics,
        *,
        intake: bool = True,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._queue = queue
        self._settings = settings
        self._metrics = metrics
        self._poll = poll_seconds
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrecy)
        self.owner = f"webhooks-{uuid.uuid4().hex[:12]}"
        # A lease outlives any attempt (the sender's total timeout ends it) with room to
        # record the outcome; a process that died holding one leaves it to expire (and an
        # outcome recorded later than this is at worst a duplicate: at-least-once).
        total = settings.total_timeout_seconds
        self._lease = timedelta(seconds=total + min(total, 10.0))
        self.intake = LogIntake(store, queue, metrics) if intake else None
        self._in_flight: dict[UUID, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: list[datetime] = []  # due times of the retries this process set
        self._wake = asyncio.Event()
        self._intake_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Deliveries answered 2xx, waiting to be settled together (a group commit).
        self._delivered: list[tuple[QueuedEvent, dict[str, Any], asyncio.Future[None]]] = []
        self._settling: asyncio.Task[None] | None = None
        self._gauges_at = self._purged_at = float("-inf")
        self._failing: dict[str, str] = {}  # what keeps failing (intake, deliverer): why

    # -- control -----------------------------------------------------------------------

    def wake(self, _position: int = 0) -> None:
        """Something was recorded (the intake looks at the log now) or, without an intake,
        queued (the deliverer looks at the queue now). Called from any thread."""
        loop = self._loop
        if loop is not None:
            event = self._intake_wake if self.intake is not None else self._wake
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                loop.call_soon_threadsafe(event.set)

    def poke(self) -> None:
        """Look at the queue now (given-up events redelivered, an endpoint enabled, a
        replay queued). Called from any thread."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    def problems(self) -> list[str]:
        """Why this process's webhook delivery is not working (readiness)."""
        return [f"{what} failing, retrying: {error}" for what, error in self._failing.items()]

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        intake = asyncio.create_task(self._run_intake(stopping)) if self.intake else None
        async with Sender(self._settings) as sender:
            try:
                await self._deliver(stopping, sender)
            finally:
                if intake is not None:
                    if not stopping.is_set():  # cancelled: no batch to finish
                        intake.cancel()
                    # Stopping: the intake ends after the batch it is queueing.
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(intake, _DRAIN_SECONDS)
                await self._drain()

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_DRAIN_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    # -- intake ------------------------------------------------------------------------

    async def _run_intake(self, stopping: asyncio.Event) -> None:
        assert self.intake is not None
        intake = self.intake

        async def step() -> None:
            queued = intake.queued
            await asyncio.to_thread(intake.catch_up, stopping.is_set)
            if intake.queued > queued:
                self._wake.set()

        idle = lambda: self._poll  # noqa: E731
        await self._keep_running("webhook intake", step, self._intake_wake, stopping, idle)

    # -- delivery ----------------------------------------------------------------------

    async def _deliver(self, stopping: asyncio.Event, sender: Sender) -> None:
        await self._keep_running(
            "webhook deliverer",
            lambda: self._round(sender),
            self._wake,
            stopping,
            self._until_next_retry,
        )

    async def _keep_running(
        self,
        what: str,
        step: Callable[[], Awaitable[None]],
        wake: asyncio.Event,
        stopping: asyncio.Event,
        idle: Callable[[], float],
    ) -> None:
        """``step`` each time ``wake`` is set (or ``idle()`` seconds passed) until ``stopping``; a
        failure (the store away a while) is retried with back-off, never fatal, and named in
        :meth:`problems` meanwhile."""
        backoff = 0.1
        while not stopping.is_set():
            wake.clear()
            try:
                await step()
                self._failing.pop(what, None)
                backoff = 0.1
            except Exception as exc:
                self._failing[what] = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("%s failed, retrying in %.1fs: %s", what, backoff, exc)
                await _wait(stopping, stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            await _wait(wake, stopping, idle())

    def _until_next_retry(self) -> float:
        now = self._clock()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
        if not self._retries:
            return self._poll
        return min(max((self._retries[0] - now).total_seconds(), 0.0), self._poll)

    async def _round(self, sender: Sender) -> None:
        await self._housekeeping()
        endpoints = await asyncio.to_thread(self._endpoints.endpoints, enabled_only=True)
        claims: list[tuple[EndpointRow, QueuedEvent]] = []
        for endpoint in endpoints:
            free = self._settings.max_in_flight - self._in_flight.get(endpoint.id, 0)
            if free <= 0:
                continue
            until = self._clock() + self._lease
            claimed = await asyncio.to_thread(
                self._queue.claim, endpoint.id, self.owner, free, until
            )
            claims += [(endpoint, event) for event in claimed]
        if not claims:
            return
        # One read of the store for the round: an event for several endpoints is one body.
        rendered = await asyncio.to_thread(self._render, [event for _, event in claims])
        for endpoint, event in claims:
            self._in_flight[endpoint.id] = self._in_flight.get(endpoint.id, 0) + 1
            task = asyncio.create_task(
                self._send(sender, endpoint, event, rendered.get(event.position))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _render(self, claimed: Sequence[QueuedEvent]) -> dict[int, tuple[bytes, datetime]]:
        """The bodies of claimed events, from the store (an erased customer's come out
        erased), with when each event was recorded."""
        envelopes = self._store.read_positions(sorted({event.position for event in claimed}))
        return {e.position: (encode_event(e), e.recorded_at) for e in envelopes}

    async def _send(
        self,
        sender: Sender,
        endpoint: EndpointRow,
        event: QueuedEvent,
        rendered: tuple[bytes, datetime] | None,
    ) -> None:
        try:
            at = self._clock()
            answer: Answer | None = None
            error: str | None = None
            if rendered is None:  # not a published event (any more): nothing to send
                error = "the event is not in the store's published log"
            else:
                body = rendered[0]
                headers = delivery_headers(str(event.event_id), at, body, endpoint.secrets(at))
                try:
                    answer = await sender.send(endpoint.url, body, headers)
                except SendFailed as exc:
                    error = f"{type(exc).__name__}: {exc.reason}"
            if answer is not None and answer.ok:
                await self._settle_delivered(event, _attempt(at, answer, error))
                outcome, retry_at = "delivered", None
            else:
                outcome, retry_at = await asyncio.to_thread(
                    self._settle, event, at, answer, error, give_up=rendered is None
                )
            if retry_at is not None:
                heapq.heappush(self._retries, retry_at)
            self._metrics.webhook_deliveries.labels(outcome).inc()
            if answer is not None:
                self._metrics.webhook_latency.observe(answer.latency_ms / 1000)
            if outcome == "delivered" and rendered is not None:
                age = (self._clock() - rendered[1]).total_seconds()
                self._metrics.webhook_event_age.observe(max(age, 0.0))
        except Exception:  # the lease expires and the event is sent again: at-least-once
            log.exception(
                "webhook: the attempt at position %d for endpoint %s was not recorded",
                event.position,
                endpoint.id,
            )
        finally:
            self._in_flight[endpoint.id] -= 1
            self._wake.set()  # the customer's next event is claimable, a slot is free

    async def _settle_delivered(self, event: QueuedEvent, attempt: dict[str, Any]) -> None:
        """Record a delivery, together with the others that finished meanwhile: one
        transaction for all of them. Returns once it is recorded (raises if it was not)."""
        done = asyncio.get_running_loop().create_future()
        self._delivered.append((event, attempt, done))
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._settle_delivered_batches())
        await done

    async def _settle_delivered_batches(self) -> None:
        while self._delivered:
            batch, self._delivered = self._delivered, []
            try:
                await asyncio.to_thread(
                    self._queue.delivered_many, [(e, a) for e, a, _ in batch], self.owner
                )
            except Exception as exc:
                for _, _, done in batch:
                    done.set_exception(exc)
            else:
                for _, _, done in batch:
                    done.set_result(None)

    def _settle(
        self,
        event: QueuedEvent,
        at: datetime,
        answer: Answer | None,
        error: str | None,
        *,
        give_up: bool = False,
    ) -> tuple[str, datetime | None]:
        """Record a failed attempt's outcome; returns it, and when the event is due again."""
        attempt = _attempt(at, answer, error)
        now = self._clock()
        if answer is not None and answer.status_code == 410:
            attempt["error"] = "410 Gone: the endpoint asked to receive nothing more"
            gone = self._queue.failed(event, self.owner, attempt, next_attempt_at=now, gone=True)
            return gone, None
        if answer is not None:
            attempt["error"] = f"HTTP {answer.status_code}"
        period = self._settings.retry_period
        retry_at = None
        if not give_up:
            retry_at = next_attempt(
                now,
                first_attempt_at=event.first_attempt_at or at,
                period=period,
                backoff=backoff_seconds(
                    event.attempts + 1,
                    self._settings.backoff_base_seconds,
                    self._settings.backoff_max_seconds,
                    self._rng,
                ),
                retry_after=retry_after_seconds(answer.retry_after if answer else None, now),
            )
        outcome = self._queue.failed(
            event, self.owner, attempt, next_attempt_at=retry_at, disable_after=now - period
        )
        return outcome, retry_at

    async def _housekeeping(self) -> None:
        """Now and then: the queue gauges, and the attempt log's purge by age."""
        now = time.monotonic()
        if now - self._gauges_at >= _GAUGE_SECONDS:
            self._gauges_at = now
            counts = await asyncio.to_thread(self._endpoints.queue_counts)
            states = list(counts.values())
            self._metrics.webhook_queue.labels("pending").set(
                sum(s.get("pending", 0) for s in states)
            )
            self._metrics.webhook_queue.labels("failed").set(
                sum(s.get("failed", 0) for s in states)
            )
        if now - self._purged_at >= _PURGE_SECONDS:
            self._purged_at = now
            days = timedelta(days=self._settings.attempt_log_days)
            purged = await asyncio.to_thread(self._endpoints.purge_attempts, self._clock() - days)
            if purged:
                log.info("webhook attempt log: %d attempts older than %s purged", purged, days)


def _attempt(at: datetime, answer: Answer | None, error: str | None) -> dict[str, Any]:
    """An attempt's record: when, the answer's status, latency and excerpt, or the error."""
    return {
        "at": at,
        "status_code": answer.status_code if answer else None,
        "latency_ms": answer.latency_ms if answer else None,
        "response_excerpt": answer.excerpt if answer else None,
        "error": error,
    }


async def _wait(event: asyncio.Event, stopping: asyncio.Event, timeout: float) -> None:
    """Until ``event`` or ``stopping`` is set, or ``timeout`` seconds have passed."""
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
