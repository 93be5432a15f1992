"""`hub kafka init` creates and checks the hub's topics on a real Kafka wire-protocol broker."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.config import KafkaSettings
from hub.events import CustomerCreated, decode_event, encode_event
from hub.stream.topics import Topics, ensure_topics
from tests.support.stream import hub_command, hub_env


def test_topics_are_created_once_with_the_configured_partitions(
    kafka_settings: KafkaSettings,
) -> None:
    first = asyncio.run(ensure_topics(kafka_settings))
    topics = Topics.from_settings(kafka_settings)
    assert [r.name for r in first] == [topics.inbound, topics.events, topics.dead_letters]
    assert topics.events == f"{kafka_settings.topic_prefix}hub.events"
    assert all(r.created and r.partitions == 3 and r.problem is None for r in first)

    again = asyncio.run(ensure_topics(kafka_settings))
    assert [(r.created, r.partitions, r.problem) for r in again] == [(False, 3, None)] * 3


def test_an_existing_topic_that_differs_is_reported_not_changed(
    kafka_settings: KafkaSettings,
) -> None:
    events = Topics.from_settings(kafka_settings).events

    async def create_small() -> None:
        admin = AIOKafkaAdminClient(**kafka_settings.client_options())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(events, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create_small())
    reports = {r.name: r for r in asyncio.run(ensure_topics(kafka_settings))}
    assert reports[events].partitions == 1
    assert reports[events].problem == "has 1 partitions, configuration says 3"
    assert sum(r.created for r in reports.values()) == 2


def test_a_published_event_travels_through_the_events_topic(
    kafka_settings: KafkaSettings,
) -> None:
    asyncio.run(ensure_topics(kafka_settings))
    topic = Topics.from_settings(kafka_settings).events
    now = datetime.now(UTC)
    event = CustomerCreated(
        id=uuid.uuid4(),
        occurred_at=now,
        recorded_at=now,
        customer_id=uuid.uuid4(),
        position=7,
        data={"display_name": "Kim", "address": "email:kim@example.com"},
    )

    async def round_trip() -> bytes:
        producer = AIOKafkaProducer(acks="all", **kafka_settings.client_options())
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, key=str(event.customer_id).encode(), value=encode_event(event)
            )
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            **kafka_settings.client_options(),
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
        finally:
            await consumer.stop()
        assert record.key == str(event.customer_id).encode()
        value: bytes = record.value
        return value

    assert decode_event(asyncio.run(round_trip())) == event


def test_cli_kafka_init(kafka_settings: KafkaSettings) -> None:
    env = hub_env(kafka_settings, HUB_KAFKA__PARTITIONS="2")
    done = subprocess.run(
        [hub_command(), "kafka", "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    prefix = kafka_settings.topic_prefix
    assert done.stdout.splitlines() == [
        f"{prefix}hub.inbound: created, 2 partitions",
        f"{prefix}hub.events: created, 2 partitions",
        f"{prefix}hub.inbound.dlq: created, 2 partitions",
    ]
