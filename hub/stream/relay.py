"""The relay: the store's notification log (the outbox) to the ``hub.events`` topic.

Published events go out in store order, keyed by customer id, with ``acks=all``, each record
with the CloudEvents Kafka binding's binary-mode headers (``hub.events.cloudevents``). The
position is kept in the database and moved only after the broker acknowledged a whole batch: a
crash sends some events again (consumers dedupe by event id or position), never skips one.

The relay reads again as soon as the store signals a commit (PostgreSQL ``LISTEN``, see
``hub.store.commits``), and polls every ``idle`` seconds besides.

Only the holder of a lease publishes. The lease is a row renewed with every batch and the
position update is fenced by it: a relay that lost its lease cannot move the position and stops
publishing. Two relays therefore never publish the same range at the same time, unless one
stalls for longer than the lease (``lease_seconds``); keep batches far shorter than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from aiokafka import AIOKafkaProducer

from hub.config import KafkaSettings
from hub.events import encode_event
from hub.events.cloudevents import kafka_headers
from hub.metrics import Metrics
from hub.store import Store
from hub.store.commits import CommitSignal
from hub.store.lease import LeaseLost, LogLease, metadata, relays
from hub.stream.topics import Topics, start_producer

log = logging.getLogger(__name__)

__all__ = ["LeaseLost", "LogLease", "Relay", "metadata", "relays"]


class Relay:
    """Publishes what the store recorded since the relay's position, batch by batch."""

    def __init__(
        self,
        store: Store,
        kafka: KafkaSettings,
        *,
        name: str = "events",
        batch_size: int = 500,
        lease_seconds: float = 15.0,
        owner: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._kafka = kafka
        self._topic = Topics.from_settings(kafka).events
        self._source = kafka.cloudevents_source
        self._batch_size = batch_size
        self.lease = LogLease(
            store.state_engine, name, owner or f"relay-{uuid.uuid4().hex[:12]}", lease_seconds
        )
        self._producer: AIOKafkaProducer | None = None
        self.published = 0
        self.error: str | None = None  # what failed, while the relay retries

    async def start(self) -> None:
        """Start the producer (once: the runtime starts it before :meth:`run`, so that a
        broker refusing it fails start-up)."""
        # Correctness never depends on the idempotent producer (the test broker lacks it).
        if self._producer is None:
            self._producer = await start_producer(self._kafka)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        try:
            await asyncio.to_thread(self.lease.release)
        except Exception as exc:  # the store is away: the lease expires on its own
            log.warning("relay lease not released (%s); it expires in %ss", exc, self.lease.seconds)

    async def publish_once(self) -> int:
        """Publish the next batch if this relay holds the lease; returns events published
        (0: nothing new, or the lease is someone else's)."""
        assert self._producer is not None, "start() first"
        if not await asyncio.to_thread(self.lease.acquire):
            return 0
        start = await asyncio.to_thread(self.lease.position)
        envelopes, last = await asyncio.to_thread(
            self._store.read_envelopes, start, self._batch_size
        )
        if last == start:
            return 0
        sends = [
            await self._producer.send(
                self._topic,
                key=str(envelope.customer_id).encode(),
                value=encode_event(envelope),
                headers=kafka_headers(envelope, self._source),
            )
            for envelope in envelopes
        ]
        await asyncio.gather(*sends)  # every record acknowledged by the broker
        await asyncio.to_thread(self.lease.advance, last)
        self.published += len(envelopes)
        if self._metrics is not None:
            self._metrics.role_items.labels("relay").inc(len(envelopes))
        return len(envelopes)

    async def run(self, stopping: asyncio.Event, idle: float = 0.2) -> None:
        """Publish until ``stopping`` is set; when there is nothing, wait until the store
        commits events or ``idle`` seconds passed.

        A store or broker failure is retried with back-off (``error`` says what failed
        meanwhile): the position moved only for batches the broker acknowledged, so the
        batch that failed goes out again, whole.
        """
        committed = CommitSignal(self._store)
        await committed.start()
        await self.start()
        failures = 0
        try:
            while not stopping.is_set():
                try:
                    sent = await self.publish_once()
                except LeaseLost as exc:
                    log.warning("%s; standing by", exc)
                    sent = 0
                except Exception as exc:  # the store or the broker is away for a while
                    failures += 1
                    self.error = f"{type(exc).__name__}: {exc}"
                    delay = min(0.2 * 2**failures, 5.0)
                    log.warning("relay: %s; retrying in %.1fs", self.error, delay)
                    await _wait(stopping, delay)
                    continue
                failures, self.error = 0, None
                if not sent:
                    await committed.wait(stopping, idle)
        finally:
            await committed.stop()
            await self.stop()


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
