"""Failures of the distributed runtime under load: every role as its own ``hub run`` process on
one fresh PostgreSQL database and the test broker, fed interactions from a thread while a role
is killed (SIGKILL: no shutdown code runs), a second worker takes over, or the database goes
away. The outcome must not depend on the failure: every interaction on its customer's timeline
exactly once, and every event the store published on ``hub.events`` at least once, in store
order per customer (duplicates on the wire are allowed; consumers dedupe).

The PostgreSQL outage is a per-database one (connections refused, the open ones terminated:
``tests.support.store.database_unreachable``), not a restart of the server: the server
is shared with the other tests and engineers running at the same time, and a restart would
fail their transactions. For the hub both look the same: every connection it holds dies and no
new one can be opened until the database comes back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer

from hub.config import KafkaSettings
from hub.domain.ids import message_id
from hub.events import InboundInteraction
from tests.stream.cluster import (
    Cluster,
    Feeder,
    RoleProcess,
    assert_outcome,
    wait_for,
)
from tests.support.store import database_unreachable
from tests.support.stream import read_topic

pytestmark = pytest.mark.postgres

#: Interactions per feed, over this many customers.
TOTAL = 1500
CUSTOMERS = 50
PIPELINE = ("ingest", "process", "relay", "project", "api")


@pytest.fixture
def cluster(
    kafka_settings: KafkaSettings,
    fresh_postgres_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Cluster]:
    """Roles on a fresh database and this test's topics; every process is killed at the end
    and the logs shown when the test failed."""
    failed_before = request.session.testsfailed
    made = Cluster(kafka_settings, fresh_postgres_url, tmp_path)
    try:
        yield made
    finally:
        made.cleanup()
        if request.session.testsfailed > failed_before:
            print(made.logs())


def _feed(cluster: Cluster, **options: Any) -> Feeder:
    feeder = Feeder(
        cluster.one("ingest").url, TOTAL, customers=CUSTOMERS, hold_at=TOTAL // 2, **options
    )
    feeder.start()
    return feeder


def _handling(role: RoleProcess, feeder: Feeder) -> None:
    """Wait until ``role`` is busy with the feed: it handled records, and more are coming (the
    feed holds at half way until the test releases it, after bringing about the failure)."""
    wait_for(
        lambda: feeder.progress >= TOTAL // 4 and role.items() > 0,
        90,
        f"{role.name} to handle records of the feed",
    )
    assert feeder.is_alive(), "the feed was over before the failure: not under load"


@pytest.mark.parametrize("victim", ["process", "project", "relay"])
def test_a_role_killed_under_load_restarts_and_nothing_is_lost_or_doubled(
    cluster: Cluster, victim: str
) -> None:
    cluster.start(*PIPELINE)
    cluster.note("started")
    feeder = _feed(cluster)
    killed = cluster.one(victim)
    _handling(killed, feeder)
    killed.kill()  # mid-stream: a batch in flight is lost with the process
    fed_at_kill = feeder.progress
    feeder.release()
    cluster.note(f"{killed.name} killed after {fed_at_kill} interactions fed")
    (restarted,) = cluster.start(victim)
    cluster.note(f"{restarted.name} started")
    sent = feeder.finish()
    cluster.note("feed done")
    assert fed_at_kill < sent.count

    assert_outcome(cluster, sent)
    assert restarted.items() > 0, f"the new {victim} did no work"


def test_two_process_workers_share_the_partitions_and_one_takes_over_when_killed(
    cluster: Cluster,
) -> None:
    cluster.start(*PIPELINE, "process")
    cluster.note("started")
    first, second = cluster.running("process")
    wait_for(
        lambda: len(cluster.group_members("process")) == 2, 60, "two members in the process group"
    )
    feeder = _feed(cluster)
    wait_for(
        lambda: first.items() > 0 and second.items() > 0,
        90,
        "both process workers to take records (each owns partitions)",
    )
    assert feeder.is_alive(), "the feed was over before the failure: not under load"
    taken_before = second.items()
    first.kill()
    feeder.release()
    cluster.note(f"{first.name} killed; {second.name} had taken {taken_before:.0f} records")
    sent = feeder.finish()
    cluster.note("feed done")

    assert_outcome(cluster, sent)
    assert len(cluster.group_members("process")) == 1
    assert second.items() > taken_before


def _not_ready(role: RoleProcess) -> dict[str, Any] | None:
    status, body = role.readyz()
    return body if status == 503 else None


def test_a_store_outage_under_load_makes_workers_wait_and_loses_nothing(
    cluster: Cluster,
) -> None:
    cluster.start(*PIPELINE)
    cluster.note("started")
    process = cluster.one("process")
    feeder = _feed(cluster, retry_for=120)
    _handling(process, feeder)
    outage = 6.0
    with database_unreachable(cluster.store_url):
        started = time.monotonic()
        feeder.release()  # the rest of the feed meets the outage
        body = wait_for(lambda: _not_ready(process), 30, "process to report not ready")
        problems = body["error"]["details"]["problems"]
        assert body["error"]["code"] == "not_ready"
        assert any("store" in p for p in problems), problems
        time.sleep(max(outage - (time.monotonic() - started), 0))
        assert feeder.is_alive(), "the feed was over before the outage ended"
    cluster.note("outage over")
    # Every role recovers on its own: nothing restarts a process that stays up, even when
    # /readyz reports that a part of it (a worker, the relay) stopped.
    stopped = cluster.wait_all_ready()
    assert not stopped, f"stopped for good after the outage: {stopped}"
    cluster.note("every role ready again")
    sent = feeder.finish()
    cluster.note(f"feed done, {sent.retries} retries")
    assert sent.answers[503] > 0, "ingest never refused: the outage did not hit the feed"

    assert_outcome(cluster, sent)


def _interaction(n: int, address: str) -> InboundInteraction:
    return InboundInteraction(
        channel="sms",
        direction="inbound",
        address=address,
        provider_message_id=f"poison-test-{n}",
        occurred_at=datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=n),
        text=f"message {n}",
    )


async def _produce(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> Any:
    """Send ``records`` one after the other (each acknowledged before the next); returns
    their metadata (partition, offset)."""
    producer = AIOKafkaProducer(acks="all", **kafka.client_options())
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, key=k, value=v) for k, v in records]
    finally:
        await producer.stop()


def test_a_poison_record_goes_to_the_dead_letters_and_its_partition_keeps_flowing(
    cluster: Cluster,
) -> None:
    (node,) = cluster.start("all")
    address = "phone:+15550990001"
    key = address.encode()  # as ingest keys it: the poison shares the good records' partition
    good = [_interaction(n, address) for n in range(30)]
    encoded = [(key, item.model_dump_json(exclude_defaults=True).encode()) for item in good]
    schema_invalid = good[0].model_dump(mode="json") | {"direction": "sideways"}
    poison = [
        (key, b"{not json"),
        (key, json.dumps(schema_invalid).encode()),
    ]
    records = [*encoded[:10], poison[0], *encoded[10:20], poison[1], *encoded[20:]]
    sent = asyncio.run(_produce(cluster.kafka, cluster.topics.inbound, records))
    assert len({m.partition for m in sent}) == 1, "the records are not on one partition"
    offsets = [m.offset for m in sent]
    assert offsets == sorted(offsets)

    letters = asyncio.run(read_topic(cluster.kafka, cluster.topics.dead_letters, len(poison)))
    assert [(r.key, r.value) for r in letters] == poison
    for letter in letters:
        reason = dict(letter.headers)["reason"].decode()
        assert reason.startswith("invalid inbound interaction"), reason

    cluster.wait_no_lag()
    ids = [str(message_id(item.channel, item.provider_message_id)) for item in good]
    customer = node.message(UUID(ids[-1]))["customer_id"]  # the last record on the partition
    timeline = node.timeline(customer)
    assert sorted(str(i["item_id"]) for i in timeline if i["kind"] == "message") == sorted(ids)
    assert node.metric("hub_inbound_dead_letters_total") == 2
    cluster.wait_ready(node)

    # Kept in the hub's dead letters too, whole, for the operator API (and the CLI).
    listed = node.http.get("/v1/dead-letters", params={"source": "hub.inbound"}).json()["items"]
    assert {(x["kind"], x["source"]) for x in listed} == {("interaction", "hub.inbound")}
    bodies = {
        node.http.get(f"/v1/dead-letters/{x['id']}").json()["original"]["body"].encode()
        for x in listed
    }
    assert bodies == {value for _, value in poison}
    assert node.readyz()[1]["dead_letters"] == 2
    retried = node.http.post(f"/v1/dead-letters/{listed[0]['id']}/retry")
    assert retried.status_code == 422, retried.text  # still not a valid interaction
    assert retried.json()["error"]["details"]["attempts"] == 1


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (and that still run)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _problems(node: RoleProcess) -> list[str]:
    status, body = node.readyz()
    problems: list[str] = body["error"]["details"]["problems"] if status == 503 else []
    return problems


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_hub_run_all_starts_its_stream_roles_again_when_their_process_is_killed_under_load(
    cluster: Cluster,
) -> None:
    (node,) = cluster.start("all")
    body = cluster.wait_ready(node)
    assert body["roles"] == ["ingest", "process", "relay", "project", "dispatch", "webhooks", "api"]
    assert node.process is not None
    (child,) = _children(node.process.pid)  # the stream roles (HUB_STREAM_ROLES_PROCESS)
    feeder = _feed(cluster)
    wait_for(
        lambda: (
            feeder.progress >= TOTAL // 4
            and node.metric("hub_role_items_total", role="process") > 0  # the child's, on /metrics
            and node.metric("hub_role_items_total", role="ingest") > 0
        ),
        90,
        "the stream roles to handle records of the feed",
    )
    os.kill(child, signal.SIGKILL)  # mid-batch
    said = "the stream roles process exited with code -9"
    wait_for(lambda: said in _problems(node), 10, f"/readyz to say {said!r}")
    feeder.release()
    sent = feeder.finish()
    assert_outcome(cluster, sent)
    cluster.wait_ready(node)
    (restarted,) = _children(node.process.pid)
    assert restarted != child
    assert node.metric("hub_role_items_total", role="process") > 0  # the new child's work

    node.kill()  # the server, however it dies: its child stops by itself
    wait_for(lambda: _gone(restarted), 30, "the stream roles process to stop")
