"""The batch consumer of the process and project roles, on the test broker: every record handed
over once, in order per partition, in batches; offsets committed only for batches done; a
failing batch stops the worker without committing; a rebalance waits for the batch in hand
and hands its partitions over with nothing done twice; what a batch produces is on its topic
(with transactions: in the transaction that commits the batch's offsets)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.config import KafkaSettings
from hub.metrics import Metrics
from hub.stream import batch_worker
from hub.stream.batch_worker import Batch, BatchWorker, Handler, Outgoing, Record, consumer_options
from tests.support.stream import read_topic

PARTITIONS = 3


async def _topic(kafka: KafkaSettings, name: str) -> str:
    topic = f"{kafka.topic_prefix}{name}"
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    return topic


async def _produce(kafka: KafkaSettings, topic: str, values: Sequence[int]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options())
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=f"k{v % 7}".encode(), value=str(v).encode())
            for v in values
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _committed(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def _filled(kafka: KafkaSettings, name: str, values: Sequence[int]) -> tuple[str, str]:
    """A new topic holding ``values`` and a new group's id."""
    topic = await _topic(kafka, name)
    await _produce(kafka, topic, values)
    return topic, f"g-{uuid.uuid4().hex[:8]}"


def _records(batch: Batch) -> list[Record]:
    return [record for records in batch.values() for record in records]


def _worker(
    kafka: KafkaSettings, group: str, topic: str, handle: Handler, **options: object
) -> BatchWorker:
    crashes: list[BaseException] = []
    worker = BatchWorker(
        kafka,
        group,
        topic,
        handle,
        role="test",
        batch_size=100,
        metrics=Metrics(),
        on_crash=crashes.append,
        **options,  # type: ignore[arg-type]
    )
    worker.crashes = crashes
    return worker


async def _until(check: object, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.05)


class Taken:
    """What a handler was given: the batches, and the values per partition in order."""

    def __init__(self) -> None:
        self.batches: list[list[Record]] = []
        self.by_partition: dict[int, list[int]] = defaultdict(list)

    def add(self, batch: Batch) -> None:
        self.batches.append(_records(batch))
        for record in self.batches[-1]:
            self.by_partition[record.partition].append(int(record.value))

    @property
    def values(self) -> list[int]:
        return [v for values in self.by_partition.values() for v in values]

    async def handle(self, batch: Batch) -> list[Outgoing]:
        """A handler that only takes note."""
        self.add(batch)
        return []


@contextlib.asynccontextmanager
async def _running(worker: BatchWorker) -> AsyncIterator[BatchWorker]:
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def test_every_record_once_in_partition_order_and_offsets_committed(
    kafka_settings: KafkaSettings,
) -> None:
    topic, group = await _filled(kafka_settings, "batches", range(1000))
    taken = Taken()

    async with _running(_worker(kafka_settings, group, topic, taken.handle)) as worker:
        await _until(lambda: len(taken.values) >= 1000)
        await _produce(kafka_settings, topic, range(1000, 1010))  # a trickle after the backlog
        await _until(lambda: len(taken.values) >= 1010)

    assert sorted(taken.values) == list(range(1010))
    for values in taken.by_partition.values():
        assert values == sorted(values)  # produced in order: taken in order, per partition
    assert max(len(b) for b in taken.batches) > 1  # batches, not records one by one
    assert max(len(b) for b in taken.batches) <= 100
    ends = {p: len(values) for p, values in taken.by_partition.items()}
    assert await _committed(kafka_settings, group, topic) == ends
    assert not worker.failed


async def test_a_failing_batch_stops_the_worker_and_commits_nothing_of_it(
    kafka_settings: KafkaSettings,
) -> None:
    topic, group = await _filled(kafka_settings, "failing", range(30))

    async def handle(batch: Batch) -> list[Outgoing]:
        raise ValueError("no such thing")

    async with _running(_worker(kafka_settings, group, topic, handle)) as worker:
        await _until(lambda: worker.failed)
    assert worker.crashed == "ValueError: no such thing"
    assert [type(e) for e in worker.crashes] == [ValueError]
    assert await _committed(kafka_settings, group, topic) == {}

    # the next worker of the group gets the records again
    taken = Taken()
    async with _running(_worker(kafka_settings, group, topic, taken.handle)):
        await _until(lambda: len(taken.values) >= 30)
    assert sorted(taken.values) == list(range(30))


async def test_a_stop_finishes_the_batch_in_hand_and_commits_it(
    kafka_settings: KafkaSettings,
) -> None:
    # more than a batch: the worker has the next batch fetched, waiting for this one
    topic, group = await _filled(kafka_settings, "stopping", range(500))
    taken = Taken()
    started = asyncio.Event()

    async def handle(batch: Batch) -> list[Outgoing]:
        started.set()
        await asyncio.sleep(1.0)  # still under way when the stop comes
        taken.add(batch)
        return []

    worker = _worker(kafka_settings, group, topic, handle)
    await worker.start()
    async with asyncio.timeout(30):
        await started.wait()
    await worker.stop()

    assert taken.batches, "the batch in hand was cut short"
    # a fresh topic: a partition's next offset is how many of its records were handled
    ends = {p: len(values) for p, values in taken.by_partition.items()}
    assert await _committed(kafka_settings, group, topic) == ends


async def test_a_joining_worker_takes_partitions_after_the_batch_in_hand_is_done(
    kafka_settings: KafkaSettings,
) -> None:
    """The first worker is slow (each batch takes 0.2 s) and busy when the second joins: its
    batch in hand finishes and is committed before the partitions move, and what it fetched
    for them beyond that is left to the next owner. Nothing is handled twice."""
    total = 3000
    topic, group = await _filled(kafka_settings, "rebalance", range(total))
    first, second = Taken(), Taken()

    def handler(taken: Taken, pause: float) -> Handler:
        async def handle(batch: Batch) -> list[Outgoing]:
            await asyncio.sleep(pause)
            taken.add(batch)
            return []

        return handle

    slow = _worker(kafka_settings, group, topic, handler(first, 0.2))
    joining = _worker(kafka_settings, group, topic, handler(second, 0.0))
    await slow.start()
    try:
        await _until(lambda: len(first.values) > 0)
        await joining.start()
        await _until(lambda: len(second.values) > 0, 60)  # the group shared the partitions
        await _until(lambda: len(first.values) + len(second.values) >= total, 60)
    finally:
        await joining.stop()
        await slow.stop()
    both = first.values + second.values
    assert sorted(both) == list(range(total)), "a record lost or handled twice"


async def test_what_a_batch_produces_is_on_its_topic(kafka_settings: KafkaSettings) -> None:
    topic, group = await _filled(kafka_settings, "source", range(20))
    letters = await _topic(kafka_settings, "letters")

    async def handle(batch: Batch) -> list[Outgoing]:
        return [
            Outgoing(letters, r.key, r.value, {"reason": b"odd"})
            for r in _records(batch)
            if int(r.value) % 2
        ]

    async with _running(_worker(kafka_settings, group, topic, handle, produces=True)):
        found = await read_topic(kafka_settings, letters, 10)
    assert sorted(int(r.value) for r in found) == list(range(1, 20, 2))
    assert {tuple(r.headers) for r in found} == {(("reason", b"odd"),)}


def test_the_consumer_commits_by_hand_from_the_earliest_offset() -> None:
    kafka = KafkaSettings(session_timeout=12, rebalance_timeout=20)
    options = consumer_options(kafka, "acme.hub-process")
    assert options["group_id"] == "acme.hub-process"
    assert (options["enable_auto_commit"], options["auto_offset_reset"]) == (False, "earliest")
    assert (options["session_timeout_ms"], options["rebalance_timeout_ms"]) == (12_000, 20_000)
    assert options["heartbeat_interval_ms"] == 1_200


class TransactionalProducer:
    """aiokafka's transactional producer as the worker uses it, recording each transaction
    (the test broker has no transactions: its InitProducerId fails)."""

    def __init__(self) -> None:
        self.transactions: list[dict[str, object]] = []
        self._open: dict[str, object] | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._open = {"sent": [], "offsets": None}
        yield
        self.transactions.append(self._open)
        self._open = None

    async def send(
        self, topic: str, *, key: bytes, value: bytes, headers: object
    ) -> asyncio.Future[None]:
        assert self._open is not None, "sent outside a transaction"
        self._open["sent"].append(int(value))  # type: ignore[attr-defined]
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group: str
    ) -> None:
        assert self._open is not None, "offsets outside a transaction"
        self._open["offsets"] = {tp.partition: o for tp, o in offsets.items()}
        self._open["group"] = group


async def test_with_transactions_a_batchs_letters_and_offsets_commit_together(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = kafka_settings.model_copy(update={"transactions": True})
    topic, group = await _filled(kafka, "tx", range(40))
    producer = TransactionalProducer()
    monkeypatch.setattr(batch_worker, "_transactional_producer", lambda kafka, group: producer)
    taken = Taken()

    async def handle(batch: Batch) -> list[Outgoing]:
        taken.add(batch)
        return [Outgoing("letters", r.key, r.value) for r in _records(batch) if int(r.value) % 2]

    async with _running(_worker(kafka, group, topic, handle, produces=True)):
        await _until(lambda: len(taken.values) >= 40)

    assert len(producer.transactions) == len(taken.batches)  # one a batch
    for transaction, batch in zip(producer.transactions, taken.batches, strict=True):
        assert transaction["sent"] == [int(r.value) for r in batch if int(r.value) % 2]
        assert transaction["group"] == group
        last = {r.partition: r.offset + 1 for r in batch}
        assert transaction["offsets"] == last
    assert await _committed(kafka, group, topic) == {}  # not by the consumer as well
