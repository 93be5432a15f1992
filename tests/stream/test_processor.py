"""The processor records hub.inbound batches in the store and sets aside what it never can, to
the dead-letter topic and the hub's dead letters."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from hub.config import KafkaSettings
from hub.events import InboundInteraction
from hub.store import open_store
from hub.store.dead_letters import DeadLetters
from hub.stream.processor import SOURCE, Processor
from hub.stream.topics import Topics, ensure_topics
from tests.support.stream import hub_command, hub_env, read_topic


def _item(n: int) -> InboundInteraction:
    return InboundInteraction(
        channel="whatsapp",
        direction="inbound",
        address=f"phone:+1555040{n % 3:04d}",
        provider_message_id=f"wamid.{n}",
        occurred_at=datetime(2026, 4, 1, tzinfo=UTC) + timedelta(minutes=n),
        text=f"hello {n}",
    )


def _record(n: int) -> tuple[bytes, bytes]:
    item = _item(n)
    return item.address.encode(), item.model_dump_json().encode()


def test_batch_with_bad_records_records_the_good_ones(make_settings, backend) -> None:
    store = open_store(make_settings(backend))
    try:
        DeadLetters.create_table(store.state_engine)
        processor = Processor(store.app, store.dead_letters)
        unnormalised = (b"k", _record(3)[1].replace(b"phone:+1555040", b"phone:+1 555 040"))
        records = [_record(1), (b"k", b"{not json"), _record(2), unnormalised, _record(3)]
        outcome = processor.process(records)
        assert [r.duplicate for r in outcome.recorded] == [False, False, False]
        reasons = [d.reason for d in outcome.dead_letters]
        assert len(reasons) == 2
        assert reasons[0].startswith("invalid inbound interaction: ")
        assert "address must be normalised" in reasons[1]
        again = processor.process([_record(1), _record(2)])  # a replay: recorded once
        assert [r.duplicate for r in again.recorded] == [True, True]
        assert not again.dead_letters

        # The same records set aside in the hub's dead letters, whole, for hub dead-letters.
        kept = store.dead_letters.list()
        assert {(k.kind, k.source) for k in kept} == {("interaction", SOURCE)}
        originals = [store.dead_letters.get(k.id).original for k in kept]
        assert {(o.body, o.fields["key"]) for o in originals if o} == {
            (b"{not json", "k"),
            (unnormalised[1], "k"),
        }
        assert sorted(k.reason for k in kept) == sorted(reasons)
        # A redelivered batch (a crash before its offsets were committed) keeps no more.
        processor.process(records)
        assert store.dead_letters.count() == 2
    finally:
        store.close()


async def _produce(kafka: KafkaSettings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(acks="all", **kafka.client_options())
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(Topics.from_settings(kafka).inbound, key=key, value=value)
    finally:
        await producer.stop()


async def _dead_letters(kafka: KafkaSettings, expected: int) -> list[tuple[bytes, str]]:
    records = await read_topic(kafka, Topics.from_settings(kafka).dead_letters, expected)
    return [(r.value, dict(r.headers)["reason"].decode()) for r in records]


def test_hub_run_process_consumes_the_inbound_topic(
    make_settings, kafka_settings: KafkaSettings
) -> None:
    settings = make_settings("sqlite")
    asyncio.run(ensure_topics(kafka_settings))
    env = hub_env(
        kafka_settings,
        HUB_DATA_DIR=str(settings.data_dir),
        HUB_KAFKA__PARTITIONS="3",
        HUB_LOG_LEVEL="WARNING",
    )
    good = [_record(n) for n in range(30)]
    asyncio.run(_produce(kafka_settings, [*good[:15], (b"x", b"poison"), *good[15:], good[0]]))
    process = subprocess.Popen(
        [hub_command(), "run", "process"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        letters = asyncio.run(_dead_letters(kafka_settings, 1))
        assert letters[0][0] == b"poison"
        assert letters[0][1].startswith("invalid inbound interaction")
        store = open_store(settings)
        try:
            deadline = time.monotonic() + 30
            messages = 0
            while time.monotonic() < deadline:
                envelopes, _ = store.read_envelopes(0, 10_000)
                messages = sum(e.type == "interaction.received.v1" for e in envelopes)
                if messages >= 30:
                    break
                time.sleep(0.2)
            assert messages == 30  # the replayed record is not recorded twice
        finally:
            store.close()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
