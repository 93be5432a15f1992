"""The hub's Kafka topics, declared in one place, and creating or checking them on a broker."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import BrokerResponseError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from hub import memory
from hub.config import ConfigurationError, KafkaSettings

#: Record keys hashed to partitions.
KEY_HASHES = memory.Part("partition hashes", share=0.04, entry_bytes=220)


@memory.lru(KEY_HASHES)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (murmur2, as the Java clients: a record lands where any
    Kafka client would put its key) with the hash cached: aiokafka's murmur2 is pure Python,
    and the same addresses come back all the time."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


def new_producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    """A producer as ingest and the relay use it: every record acknowledged by all in-sync
    replicas, keys partitioned by :func:`partition`.

    No linger (aiokafka's default): aiokafka keeps one produce request in flight per broker,
    so concurrent sends batch while it is out anyway, and its linger counts per partition
    batch, which only added timers and split requests (docs/performance.md has the figures).
    """
    return AIOKafkaProducer(
        acks="all",
        partitioner=partition,
        enable_idempotence=kafka.idempotent_producer,
        linger_ms=0,
        **kafka.client_options(),
    )


async def start_producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    """A started :func:`new_producer`. A broker that refuses the idempotent producer is a
    :class:`ConfigurationError` naming the setting that turns it off (aiokafka reports only
    the broker's error code, e.g. ``UnknownError`` from brokers that lack it)."""
    producer = new_producer(kafka)
    try:
        await producer.start()
    except BaseException as exc:
        await producer.stop()
        # Bootstrapping fails only with connection errors: a broker's error answer at start
        # comes from InitProducerId, which only the idempotent producer sends.
        if kafka.idempotent_producer and isinstance(exc, BrokerResponseError):
            raise ConfigurationError(
                f"the Kafka broker at {kafka.bootstrap_servers} refused the idempotent "
                f"producer ({type(exc).__name__}): set HUB_KAFKA__IDEMPOTENT_PRODUCER=false "
                "for a broker without it (correctness never depends on it), or allow it there"
            ) from exc
        raise
    return producer


@dataclass(frozen=True)
class Topics:
    """Names of the hub's topics, with the configured prefix."""

    inbound: str
    """Inbound interactions, keyed by normalised address."""
    events: str
    """Published domain events, keyed by customer id, in store order per customer."""
    dead_letters: str
    """Inbound records that can never be processed; the reason is in the headers."""

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> Topics:
        prefix = kafka.topic_prefix
        return cls(
            inbound=f"{prefix}hub.inbound",
            events=f"{prefix}hub.events",
            dead_letters=f"{prefix}hub.inbound.dlq",
        )

    def all(self) -> tuple[str, ...]:
        return (self.inbound, self.events, self.dead_letters)


@dataclass(frozen=True)
class TopicReport:
    name: str
    created: bool
    partitions: int
    problem: str | None = None


async def ensure_topics(kafka: KafkaSettings) -> list[TopicReport]:
    """Create the hub's topics that are missing; report how the existing ones differ from the
    configuration (partitions can only grow, and the hub never changes them on its own)."""
    topics = Topics.from_settings(kafka)
    # Every topic carries personal data in plaintext: bounded retention (docs/operations.md).
    retention_ms = int(kafka.retention_hours * 3600 * 1000)
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topics.all() if name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=kafka.partitions,
                        replication_factor=kafka.replication_factor,
                        topic_configs={"retention.ms": str(retention_ms)},
                    )
                    for name in missing
                ]
            )
        described = await admin.describe_topics(list(topics.all()))
    finally:
        await admin.close()
    reports = []
    for entry in described:
        name = entry["topic"]
        partitions = len(entry.get("partitions", []))
        problem = None
        if partitions != kafka.partitions:
            problem = f"has {partitions} partitions, configuration says {kafka.partitions}"
        reports.append(TopicReport(name, name in missing, partitions, problem))
    return sorted(reports, key=lambda r: topics.all().index(r.name))


async def partition_count(kafka: KafkaSettings, topic: str) -> int:
    """How many partitions ``topic`` has on the broker."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = len(described.get("partitions", []))
    if not partitions:
        raise LookupError(f"topic {topic} does not exist (run `hub kafka init`)")
    return partitions
