"""The relay publishes the store's events to hub.events in order, at least once, one relay at
a time, on a real Kafka wire-protocol broker and both storage backends."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from hub.config import KafkaSettings
from hub.events import InboundInteraction, decode_event
from hub.store import Store, open_store
from hub.stream.relay import LeaseLost, Relay, relays
from hub.stream.topics import Topics, ensure_topics
from tests.support.stream import hub_command, hub_env, read_topic


def _record(store: Store, count: int, start: int = 0) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    store.app.record_interactions(
        [
            InboundInteraction(
                channel="sms",
                direction="inbound",
                address=f"phone:+1555030{n % 4:04d}",
                provider_message_id=f"relay-{n}",
                occurred_at=at + timedelta(minutes=n),
                text=f"message {n}",
            )
            for n in range(start, start + count)
        ]
    )


async def _drain(relay: Relay) -> int:
    total = 0
    while sent := await relay.publish_once():
        total += sent
    return total


async def _consume(kafka: KafkaSettings, expected: int) -> list[tuple[int, bytes]]:
    records = await read_topic(kafka, Topics.from_settings(kafka).events, expected)
    return [(r.partition, r.value) for r in records]


def test_every_published_event_goes_out_once_in_order_per_customer(
    make_settings, backend, kafka_settings: KafkaSettings
) -> None:
    store = open_store(make_settings(backend))
    asyncio.run(ensure_topics(kafka_settings))
    try:
        _record(store, 40)
        expected, _ = store.read_envelopes(0, 10_000)

        async def go() -> list[tuple[int, bytes]]:
            relay = Relay(store, kafka_settings, batch_size=7)
            await relay.start()
            try:
                assert await _drain(relay) == len(expected)
            finally:
                await relay.stop()
            return await _consume(kafka_settings, len(expected))

        records = asyncio.run(go())
        events = [decode_event(value) for _, value in records]
        assert sorted(e.id for e in events) == sorted(e.id for e in expected)
        per_customer: dict[uuid.UUID, list[int]] = defaultdict(list)
        partitions: dict[uuid.UUID, set[int]] = defaultdict(set)
        for (partition, _), event in zip(records, events, strict=True):
            per_customer[event.customer_id].append(event.position)
            partitions[event.customer_id].add(partition)
        assert len(per_customer) == 4
        for positions in per_customer.values():
            assert positions == sorted(positions)
        assert all(len(p) == 1 for p in partitions.values())  # keyed by customer id
    finally:
        store.close()


def test_a_new_relay_resumes_after_the_last_acknowledged_batch(
    make_settings, kafka_settings: KafkaSettings
) -> None:
    settings = make_settings("sqlite")
    store = open_store(settings)
    asyncio.run(ensure_topics(kafka_settings))
    try:
        _record(store, 10)

        async def publish(count_expected: int) -> int:
            relay = Relay(store, kafka_settings)
            await relay.start()
            try:
                sent = await _drain(relay)
            finally:
                await relay.stop()
            assert sent == count_expected
            return sent

        first = len(store.read_envelopes(0, 10_000)[0])
        asyncio.run(publish(first))
        _record(store, 5, start=10)
        total = len(store.read_envelopes(0, 10_000)[0])
        asyncio.run(publish(total - first))  # nothing sent twice after a clean stop
        values = [v for _, v in asyncio.run(_consume(kafka_settings, total))]
        assert len({decode_event(v).id for v in values}) == total == len(values)
    finally:
        store.close()


def test_only_the_lease_holder_publishes(make_settings, kafka_settings: KafkaSettings) -> None:
    store = open_store(make_settings("sqlite"))
    asyncio.run(ensure_topics(kafka_settings))
    try:
        _record(store, 6)

        async def scenario() -> None:
            first = Relay(store, kafka_settings, owner="first", lease_seconds=60)
            second = Relay(store, kafka_settings, owner="second", lease_seconds=60)
            await first.start()
            await second.start()
            try:
                assert await first.publish_once() > 0
                assert await second.publish_once() == 0  # the lease is first's
                # first stalls past its lease; second takes over and moves on
                with store.state_engine.begin() as conn:
                    conn.execute(
                        update(relays).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
                    )
                _record(store, 2, start=6)
                assert await second.publish_once() > 0
                # first wakes up: it cannot take the lease back, so it publishes nothing
                _record(store, 2, start=8)
                assert await first.publish_once() == 0
                position = second.lease.position()
                # and had it sent a batch before noticing, the position would refuse it
                with pytest.raises(LeaseLost):
                    first.lease.advance(position + 1_000)
                assert second.lease.position() == position
                assert await second.publish_once() > 0
            finally:
                await first.stop()
                await second.stop()

        asyncio.run(scenario())
    finally:
        store.close()


def test_hub_run_relay_publishes_and_stops_on_sigterm(
    make_settings, kafka_settings: KafkaSettings, tmp_path
) -> None:
    settings = make_settings("sqlite")
    store = open_store(settings)
    asyncio.run(ensure_topics(kafka_settings))
    _record(store, 8)
    expected = len(store.read_envelopes(0, 10_000)[0])
    store.close()
    env = hub_env(kafka_settings, HUB_DATA_DIR=str(settings.data_dir))
    process = subprocess.Popen(
        [hub_command(), "run", "relay"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        records = asyncio.run(_consume(kafka_settings, expected))
        assert len(records) == expected
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert f"relay stopped after publishing {expected} events" in output


def test_the_relay_publishes_as_soon_as_the_store_commits(
    make_settings, kafka_settings: KafkaSettings
) -> None:
    """On PostgreSQL the relay LISTENs for the store's commits: it publishes a new batch at
    once, not at its next poll (here half a minute away)."""
    store = open_store(make_settings("postgres"))
    asyncio.run(ensure_topics(kafka_settings))
    try:

        async def scenario() -> float:
            relay = Relay(store, kafka_settings)
            stopping = asyncio.Event()
            running = asyncio.create_task(relay.run(stopping, idle=30.0))
            try:
                await asyncio.sleep(2.0)  # started, listening, and waiting for the next poll
                started = time.monotonic()
                await asyncio.to_thread(_record, store, 3)
                while relay.published == 0 and time.monotonic() - started < 10:
                    await asyncio.sleep(0.01)
                return time.monotonic() - started
            finally:
                stopping.set()
                await running

        assert asyncio.run(scenario()) < 5.0
    finally:
        store.close()
