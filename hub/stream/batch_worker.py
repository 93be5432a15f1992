"""The consumer of the high-rate worker roles (``process``, ``project``): an aiokafka consumer
in the role's group that hands each fetch to the role as one batch.

Faust's agents get their records one at a time through a stream, and each record costs ~50 us
of Python before the agent sees it (``bench.faust_floor`` measures that floor: a quarter to a
third of what a plain consumer decodes). These two roles only ever want batches, so they take
them from the fetcher as aiokafka returns them. The rest stays as it was with Faust's
``at_least_once`` agent:

- one group per role (``hub.stream.app.group_id``), the same group ids and committed offsets:
  a worker of this kind starts where a Faust worker of the role stopped (stop the old workers
  first: the two kinds do not share a group's rebalances);
- a record's offset is committed only after its batch was handled: a crash or a stop
  mid-batch delivers the batch again, and the store and the views skip what they hold;
- offsets are committed every ``commit_interval``, and at once when partitions are revoked or
  the worker stops;
- one batch is handled (in a thread, by the role) while the next is fetched; batches are
  handled one after the other in the order fetched, so per-partition order holds;
- a rebalance waits for the batch in hand and commits it before the partitions go: their next
  owner starts after it, and records fetched for them but not yet handled are dropped here;
- a handler that raises stops the worker, and readiness says so (``WorkerHealth``).

With ``HUB_KAFKA__TRANSACTIONS`` the records a batch produces (the process role's dead
letters) and the batch's offsets go in one Kafka transaction, batch by batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from hub.config import KafkaSettings
from hub.metrics import Metrics
from hub.stream.faust_driver import FETCH_MAX_WAIT_MS
from hub.stream.topics import start_producer

log = logging.getLogger(__name__)

#: The longest one fetch waits for records before the worker looks at its commits again (s).
POLL_SECONDS = 0.2


#: A record as the workers take them: keys and values as bytes, undecoded.
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True)
class Outgoing:
    """A record a batch produces (a dead letter), sent before the batch counts as done."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


#: A batch as fetched: each partition's records in offset order.
Batch = Mapping[TopicPartition, Sequence[Record]]
#: A role's handler: takes a batch, returns what to produce for it. Runs on the event loop:
#: blocking work goes to a thread.
Handler = Callable[[Batch], Awaitable[Sequence[Outgoing]]]


def consumer_options(kafka: KafkaSettings, group: str) -> dict[str, Any]:
    """The settings of a role's consumer: manual commits, from the earliest offset in a new
    group, the hub's fetch wait (``FETCH_MAX_WAIT_MS``) and the group timings of the settings."""
    return {
        "group_id": group,
        "client_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "session_timeout_ms": int(kafka.session_timeout * 1000),
        "heartbeat_interval_ms": int(kafka.session_timeout * 100),
        "rebalance_timeout_ms": int(kafka.rebalance_timeout * 1000),
        **kafka.client_options(),
    }


class BatchWorker(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """A worker role consuming ``topic`` in the consumer group ``group``, ``batch_size``
    records at most per batch, ``handle`` called for each batch. ``produces``: the handler
    returns records to produce (a producer is started for them, transactional with
    ``HUB_KAFKA__TRANSACTIONS``)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        group: str,
        topic: str,
        handle: Handler,
        *,
        role: str,
        batch_size: int,
        metrics: Metrics,
        on_crash: Callable[[BaseException], None],
        produces: bool = False,
    ) -> None:
        self.name = group
        self._kafka = kafka
        self._topic = topic
        self._handle = handle
        self._role = role
        self._batch_size = batch_size
        self._metrics = metrics
        self._on_crash = on_crash
        self._consumer: AIOKafkaConsumer | None = None
        self._produces = produces
        self._transactional = produces and kafka.transactions
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._handing = asyncio.Lock()  # a batch is started, or partitions revoked, not both
        self._revoked: set[TopicPartition] = set()
        self._done: dict[TopicPartition, int] = {}  # next offset, per partition handled
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self._stopping = False
        self.crashed: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the group and start consuming."""
        self._consumer = AIOKafkaConsumer(**consumer_options(self._kafka, self.name))
        self._consumer.subscribe([self._topic], listener=self)
        try:
            if self._transactional:
                self._producer = _transactional_producer(self._kafka, self.name)
                await self._producer.start()
            elif self._produces:
                self._producer = await start_producer(self._kafka)
            await self._consumer.start()
        except BaseException:
            await self._close()
            raise
        self._task = asyncio.create_task(self._run(), name=f"{self.name} worker")

    async def stop(self) -> None:
        """Finish the batch in hand, commit, and leave the group."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()  # a fetch in progress; the batch in hand is finished first
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._finish_in_flight()
        await self._commit()
        await self._close()

    async def _close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @property
    def failed(self) -> bool:
        """Whether the worker stopped by itself (its handler raised, or its loop ended)."""
        return self.crashed is not None or (
            self._task is not None and self._task.done() and not self._stopping
        )

    # -- consuming -------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        try:
            while not self._stopping:
                batch = await consumer.getmany(
                    timeout_ms=int(POLL_SECONDS * 1000), max_records=self._batch_size
                )
                await self._finish_in_flight(reraise=True)  # in order: raises what it raised
                room = self._batch_size - sum(map(len, batch.values()))
                if batch and room > 0:  # what came in meanwhile
                    for tp, records in (await consumer.getmany(max_records=room)).items():
                        batch.setdefault(tp, []).extend(records)
                async with self._handing:
                    batch = {tp: rs for tp, rs in batch.items() if tp not in self._revoked}
                    if batch:
                        self._in_flight = asyncio.create_task(self._finish(batch))
                if time.monotonic() - self._last_commit >= self._kafka.commit_interval:
                    await self._commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker is gone: readiness must say so
            self.crashed = f"{type(exc).__name__}: {exc}"
            self._on_crash(exc)
            log.exception("%s worker crashed", self._role)
            raise

    async def _finish(self, batch: Batch) -> None:
        """Handle one batch, produce what it asks for, and mark its offsets done (and, with
        transactions, commit them with what it produced)."""
        outgoing = await self._handle(batch)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        if self._transactional:
            assert self._producer is not None
            async with self._producer.transaction():
                await self._send(outgoing)
                await self._producer.send_offsets_to_transaction(offsets, self.name)
        elif outgoing:
            await self._send(outgoing)
        self._done.update(offsets)
        self._metrics.role_items.labels(self._role).inc(sum(map(len, batch.values())))

    async def _finish_in_flight(self, *, reraise: bool = False) -> None:
        """Wait for the batch in hand (the loop, a revocation and a stop all may). It stays
        in hand until it is done, so whoever else waits for it sees it."""
        in_flight = self._in_flight
        if in_flight is None:
            return
        try:
            # shielded: a stop cancels the loop while it waits here, not the batch itself
            await asyncio.shield(in_flight)
        except Exception as exc:
            if reraise:
                raise
            log.warning("%s: a batch failed (%s); delivered again", self._role, exc)
        finally:
            if self._in_flight is in_flight and in_flight.done():
                self._in_flight = None

    async def _commit(self) -> None:
        """Commit what was handled and not yet committed (not with transactions: each batch
        committed its own). A refused commit (a rebalance took the partitions) is logged: the
        records are delivered again to their next owner, which skips what is done."""
        self._last_commit = time.monotonic()
        due = {tp: o for tp, o in self._done.items() if self._committed.get(tp) != o}
        if not due or self._consumer is None or self._transactional:
            return
        try:
            await self._consumer.commit(due)
        except KafkaError as exc:
            log.warning("%s: offsets not committed (%s); delivered again", self._role, exc)
        else:
            self._committed.update(due)

    async def _send(self, outgoing: Sequence[Outgoing]) -> None:
        producer = self._producer
        assert producer is not None, "a role that produces records says so (produces=True)"
        sends = [
            await producer.send(o.topic, key=o.key, value=o.value, headers=list(o.headers.items()))
            for o in outgoing
        ]
        await asyncio.gather(*sends)

    # -- rebalances (aiokafka calls these) -------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before the partitions go: the batch in hand finishes and is committed."""
        async with self._handing:
            self._revoked |= set(revoked)
            await self._finish_in_flight()
            await self._commit()
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """New partitions start at their committed offsets (aiokafka's own doing)."""
        self._revoked -= set(assigned)
        log.info(
            "%s: assigned %s", self._role, sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )


def _transactional_producer(kafka: KafkaSettings, group: str) -> AIOKafkaProducer:
    """A producer whose sends and the consumer's offsets commit together."""
    return AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        transactional_id=f"{group}-{socket.gethostname()}-{os.getpid()}",
        **kafka.client_options(),
    )
