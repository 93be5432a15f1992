"""The Kafka projector feeds the same projections as the embedded runtime: equal rows, replays
skipped by the positions it keeps per partition."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from hub.config import KafkaSettings
from hub.embedded.follower import LogFollower
from hub.events import InboundInteraction
from hub.projections import Views, default_projections
from hub.store import Store, open_store
from hub.store.database import create_db_engine
from hub.stream.relay import Relay
from hub.stream.topics import ensure_topics
from tests.support.stream import hub_command, hub_env


def _record(store: Store, count: int) -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    items = [
        InboundInteraction(
            channel=("sms", "email", "chat")[n % 3],
            direction="inbound" if n % 4 else "outbound",
            address=(f"phone:+1555050{n % 5:04d}", f"email:c{n % 5}@example.com", f"chat:v{n % 5}")[
                n % 3
            ],
            provider_message_id=f"proj-{n}",
            occurred_at=at + timedelta(minutes=n),
            text=f"text {n}",
            contact_name=f"Person {n % 5}",
        )
        for n in range(count)
    ]
    results = store.app.record_interactions(items)
    store.app.change_status(results[0].conversation_id, "resolved", "agent")
    store.app.add_note(results[1].conversation_id, "a note", "agent")
    store.app.update_delivery(results[0].message_id, "delivered", at + timedelta(hours=1))


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]
            for projection in default_projections()
            for table in projection.tables
        }


def _reference(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    views = Views(store.views_engine)
    views.create()
    LogFollower(store, views).catch_up()
    return _rows(store.views_engine)


def test_partitioned_application_equals_the_embedded_views(make_settings, tmp_path) -> None:
    source = open_store(make_settings("sqlite"))
    engine = create_db_engine(f"sqlite:///{tmp_path}/kafka-views.db")
    try:
        _record(source, 30)
        envelopes, _ = source.read_envelopes(0, 10_000)
        views = Views(engine)
        views.create()
        partitions: dict[int, list[Any]] = {}
        for envelope in envelopes:  # as the relay keys them: one customer, one partition
            partitions.setdefault(envelope.customer_id.int % 3, []).append(envelope)
        for partition, events in partitions.items():
            views.apply_partition("hub.events", partition, events[: len(events) // 2])
            views.apply_partition("hub.events", partition, events)  # overlaps: a replay
            assert views.apply_partition("hub.events", partition, events) == 0
        assert _rows(engine) == _reference(source)
    finally:
        source.close()
        engine.dispose()


def _fresh_views(store: Store) -> Views:
    """The store's views, emptied (after ``_reference`` filled them from the log)."""
    views = Views(store.views_engine)
    for projection in views.projections:
        views.reset(projection.name)
    return views


def _by_partition(store: Store, partitions: int) -> dict[int, list[Any]]:
    envelopes, _ = store.read_envelopes(0, 10_000)
    found: dict[int, list[Any]] = {}
    for envelope in envelopes:  # as the relay keys them: one customer, one partition
        found.setdefault(envelope.customer_id.int % partitions, []).append(envelope)
    return found


def test_partitions_applied_together_equal_the_embedded_views(make_settings, backend) -> None:
    """One transaction for a batch of several partitions, with a relay's replay inside the
    batch (a range published twice) and later whole again: each event counts once."""
    store = open_store(make_settings(backend))
    try:
        _record(store, 30)
        expected = _reference(store)
        partitions = _by_partition(store, 3)
        views = _fresh_views(store)
        first = {p: events[: len(events) // 2] for p, events in partitions.items()}
        replayed = {p: [*events[:3], *events[:5], *events[3:]] for p, events in partitions.items()}
        assert views.apply_partitions("hub.events", first) > 0
        assert views.apply_partitions("hub.events", replayed) > 0
        assert views.apply_partitions("hub.events", partitions) == 0
        assert _rows(store.views_engine) == expected
        positions = views.partition_positions()
        for projection in views.projections:
            assert positions[projection.name] == {
                f"hub.events:{p}": events[-1].position for p, events in partitions.items()
            }
    finally:
        store.close()


def test_two_projectors_applying_the_same_batch_at_once_apply_it_once(make_settings) -> None:
    """Around a rebalance two workers may hold the same partition for a moment: the partition
    positions are locked, so the later transaction waits for the first and skips its events."""
    store = open_store(make_settings("postgres"))
    try:
        _record(store, 30)
        expected = _reference(store)
        batch = _by_partition(store, 2)
        views = _fresh_views(store)
        with ThreadPoolExecutor(4) as pool:
            applied = list(
                pool.map(lambda _: views.apply_partitions("hub.events", batch), range(4))
            )
        assert applied.count(0) == 3
        assert _rows(store.views_engine) == expected
    finally:
        store.close()


def test_hub_run_project_builds_the_views_from_the_topic(
    make_settings, kafka_settings: KafkaSettings, tmp_path
) -> None:
    source = open_store(make_settings("sqlite"))
    asyncio.run(ensure_topics(kafka_settings))
    target_dir = tmp_path / "projector"
    env = hub_env(kafka_settings, HUB_DATA_DIR=str(target_dir), HUB_LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [hub_command(), "run", "project"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _record(source, 30)
        expected = _reference(source)

        _publish_all(source, kafka_settings)
        engine = create_db_engine(f"sqlite:///{target_dir}/views.db")
        try:
            deadline = time.monotonic() + 45
            rows: dict[str, list[tuple[Any, ...]]] = {}
            while time.monotonic() < deadline:
                try:
                    rows = _rows(engine)
                except OperationalError:  # the worker has not created its tables yet
                    rows = {}
                if rows == expected:
                    break
                time.sleep(0.3)
            assert rows == expected
        finally:
            engine.dispose()
    finally:
        source.close()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def _publish_all(store: Store, kafka: KafkaSettings) -> None:
    async def publish() -> None:
        relay = Relay(store, kafka)
        await relay.start()
        try:
            while await relay.publish_once():
                pass
        finally:
            await relay.stop()

    asyncio.run(publish())


def _kafka_status(env: dict[str, str], data_dir: str) -> dict[str, Any]:
    done = subprocess.run(
        [hub_command(), "status", "--kafka", "--data-dir", data_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def test_rebuild_with_kafka_goes_on_from_the_rebuilt_position(
    make_settings, kafka_settings: KafkaSettings, tmp_path
) -> None:
    """Events published after a rebuild that are already in the rebuilt views are skipped;
    `hub status --kafka` shows the project node, its lag and its positions."""
    settings = make_settings("sqlite")
    data_dir = str(settings.data_dir)
    store = open_store(settings)
    asyncio.run(ensure_topics(kafka_settings))
    env = hub_env(kafka_settings, HUB_DATA_DIR=data_dir, HUB_LOG_LEVEL="WARNING")
    reference = create_db_engine(f"sqlite:///{tmp_path}/reference.db")

    def expected() -> dict[str, list[tuple[Any, ...]]]:
        views = Views(reference)
        views.create()
        for projection in views.projections:
            views.reset(projection.name)
        LogFollower(store, views).catch_up()
        return _rows(reference)

    def project_until_caught_up() -> None:
        worker = subprocess.Popen(
            [hub_command(), "run", "project"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 45
            while True:
                status = _kafka_status(env, data_dir)
                running = [n for n in status["nodes"] if n["alive"]]
                if status["lag_by_stage"]["events"] == 0 and running:
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.3)
            assert [n["roles"] for n in running] == [["project"]]
            assert status["lag_by_stage"]["relay"] == 0
            assert set(status["projections"]) == {p.name for p in default_projections()}
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output

    try:
        _record(store, 30)
        _publish_all(store, kafka_settings)
        project_until_caught_up()
        assert _rows(store.views_engine) == expected()

        _record(store, 60)  # 30 more interactions, another note and status: not yet relayed
        rebuilt = subprocess.run(
            [hub_command(), "projections", "rebuild", "--kafka", "--data-dir", data_dir],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "3 partitions marked applied" in rebuilt.stdout
        after_rebuild = _rows(store.views_engine)
        assert after_rebuild == expected()

        _publish_all(store, kafka_settings)  # now on the wire, and already in the views
        project_until_caught_up()
        assert _rows(store.views_engine) == after_rebuild
    finally:
        store.close()
        reference.dispose()
