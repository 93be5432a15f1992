"""Helpers shared by the Kafka tests: reading a topic back, and the `hub` command."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer

from hub.config import KafkaSettings
from tests.conftest import TEST_KAFKA_TUNING
from tests.e2e.support import free_port


async def read_topic(kafka: KafkaSettings, topic: str, expected: int) -> list[Any]:
    """The first ``expected`` records of ``topic`` (all partitions), read by a new group."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=f"check-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        **kafka.client_options(),
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += records
    finally:
        await consumer.stop()
    return found


def hub_command() -> str:
    """The `hub` console script of the interpreter running the tests."""
    hub = shutil.which("hub", path=os.path.dirname(sys.executable))
    assert hub is not None
    return hub


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The HUB_KAFKA__ settings of a `hub` process on the test broker, with this test's
    topics."""
    return {
        "HUB_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "HUB_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "HUB_KAFKA__PARTITIONS": str(kafka.partitions),
        "HUB_KAFKA__REPLICATION_FACTOR": "1",
        **{f"HUB_KAFKA__{k.upper()}": str(v) for k, v in TEST_KAFKA_TUNING.items()},
    }


def hub_env(kafka: KafkaSettings, **extra: str) -> dict[str, str]:
    """The environment of a `hub` process on the test broker, with this test's topics."""
    return os.environ | kafka_env(kafka) | {"HUB_PORT": str(free_port()), **extra}
