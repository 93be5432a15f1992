"""Helpers of the failure tests: the roles of the distributed runtime as real processes on one
PostgreSQL store and the test broker, a client that feeds them interactions from a thread, and
the checks of the outcome (every interaction once in the views, every event on hub.events).

A :class:`Cluster` starts ``hub run ROLE`` processes (each on its own loopback port, with its
own log file) and kills whatever is left at the end. The roles reuse ``tests.support.hub_process``'s
``HubProcess`` for the HTTP helpers and the kill/cleanup logic.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from hub.config import KafkaSettings
from hub.events import decode_event
from hub.stream.app import group_id
from hub.stream.topics import Topics, ensure_topics
from tests.support.hub_process import ADMIN_TOKEN, HubProcess
from tests.support.stream import hub_env

T = TypeVar("T")

#: Answers of the hub a client should try again (the store or the broker is away for now).
RETRY_STATUSES = frozenset({502, 503, 504})


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RoleProcess(HubProcess):
    """``hub run ROLE`` as a child process, serving its probes (and routes) on a loopback
    port."""

    def __init__(self, role: str, env: dict[str, str], log_path: Path, name: str) -> None:
        super().__init__(Path(env["HUB_DATA_DIR"]), log_path, env=env, command=("run", role))
        self.role = role
        self.name = name

    def launch(self) -> RoleProcess:
        super().launch()
        return self

    def wait_up(self, timeout: float = 90.0) -> RoleProcess:
        super().wait_up(timeout)
        return self

    def start(self, timeout: float = 90.0) -> RoleProcess:
        return self.launch().wait_up(timeout)

    def message(self, mid: UUID, timeout: float = 30.0) -> dict[str, Any]:
        """``GET /v1/messages/{mid}``, waiting while it is not visible yet (404)."""

        def visible() -> dict[str, Any] | None:
            response = self.http.get(f"/v1/messages/{mid}")
            assert response.status_code in (200, 404), response.text
            found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
            return found

        return wait_for(visible, timeout, f"message {mid} to be visible", interval=0.2)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """Status code and body of ``/readyz`` (``(0, {})`` when it does not answer)."""
        try:
            response = self.http.get("/readyz", timeout=10)
        except httpx.TransportError:
            return 0, {}
        body: dict[str, Any] = response.json()
        return response.status_code, body

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of ``/metrics`` (0 when it is not there yet)."""
        text = self.http.get("/metrics", timeout=10).text
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "")
        found = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def items(self) -> float:
        """Items this process handled in its role (``hub_role_items_total``)."""
        return self.metric("hub_role_items_total", role=self.role)


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Cluster:
    """Roles of one hub on a PostgreSQL store and this test's topics."""

    def __init__(self, kafka: KafkaSettings, store_url: str, workdir: Path) -> None:
        self.kafka = kafka
        self.store_url = store_url
        self.workdir = workdir
        self.topics = Topics.from_settings(kafka)
        self.roles: list[RoleProcess] = []
        self._began = time.monotonic()
        self._common = {
            "HUB_STORE_URL": store_url,
            "HUB_VIEWS_URL": store_url,
            "HUB_MASTER_KEY": _key(),
            "HUB_ADDRESS_PEPPER": _key(),
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_KAFKA__PARTITIONS": str(kafka.partitions),
        }
        asyncio.run(ensure_topics(kafka))

    def note(self, what: str) -> None:
        """Print a step with the seconds since the cluster was made (shown when a test fails:
        where the time went)."""
        print(f"[{time.monotonic() - self._began:6.1f}s] {what}")

    def start(self, *roles: str, timeout: float = 90.0) -> list[RoleProcess]:
        """Start ``hub run ROLE`` for each of ``roles`` at once (on a fresh database too: they
        create their tables under a lock); returns once all answer ``/healthz``."""
        launched = [self._launch(role) for role in roles]
        return [process.wait_up(timeout) for process in launched]

    def _launch(self, role: str) -> RoleProcess:
        name = f"{role}-{sum(r.role == role for r in self.roles) + 1}"
        quiet = role in ("ingest", "api")  # their access log would drown the workers' lines
        env = hub_env(
            self.kafka,
            **self._common,
            HUB_DATA_DIR=str(self.workdir / name),
            HUB_LOG_LEVEL="WARNING" if quiet else "INFO",
        )
        process = RoleProcess(role, env, self.workdir / f"{name}.log", name)
        self.roles.append(process)
        return process.launch()

    def running(self, role: str) -> list[RoleProcess]:
        return [r for r in self.roles if r.role == role and r.alive]

    def one(self, role: str) -> RoleProcess:
        """The running process that serves ``role`` (or ``all``)."""
        found = self.running(role) or self.running("all")
        assert found, f"no {role} process runs"
        return found[0]

    def cleanup(self) -> None:
        for role in self.roles:
            role.cleanup()

    def logs(self, tail: int = 6000) -> str:
        return "\n".join(f"=== log of {r.name}\n{r.log()[-tail:]}" for r in self.roles)

    # -- waiting ------------------------------------------------------------------------------

    def wait_ready(self, role: RoleProcess, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            status, body = role.readyz()
            return body if status == 200 else None

        return wait_for(ready, timeout, f"{role.name} to be ready", interval=0.5)

    def wait_all_ready(self, timeout: float = 60.0) -> dict[str, list[str]]:
        """Wait until every running role is ready or reports that a part of it stopped;
        returns the problems of those that stopped, by name."""
        stopped: dict[str, list[str]] = {}

        def settled() -> bool:
            stopped.clear()
            waiting = 0
            for role in self.roles:
                if not role.alive:
                    continue
                status, body = role.readyz()
                if status == 200:
                    continue
                problems = body.get("error", {}).get("details", {}).get("problems", [])
                if any("stopped" in p for p in problems):
                    stopped[role.name] = problems
                else:
                    waiting += 1
            return waiting == 0

        wait_for(settled, timeout, "every role to be ready", interval=0.5)
        return dict(stopped)

    def wait_no_lag(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until ``/readyz`` of the api reports no lag at any stage, twice in a row (one
        reading measures the stages one after the other, so a batch can slip between them)."""
        api = self.one("api")
        last: dict[str, Any] = {}
        streak = 0

        def no_lag() -> bool:
            nonlocal last, streak
            status, last = api.readyz()
            streak = streak + 1 if status == 200 and last.get("lag") == 0 else 0
            return streak >= 2

        try:
            wait_for(no_lag, timeout, "the lag of every stage to be 0", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last /readyz: {last}") from None
        return last

    def group_members(self, role: str) -> list[dict[str, Any]]:
        """Members of a worker role's consumer group, with their partitions (the test broker,
        Tansu, lists the members but leaves their assignments empty)."""
        return asyncio.run(_describe_group(self.kafka, group_id(self.kafka, role)))


async def _describe_group(kafka: KafkaSettings, group: str) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members = []
    for group_info in response.groups:
        *_, group_members = group_info  # DescribeGroups v0-v2: the members come last
        for member in group_members:
            member_id, client_id, _host, _metadata, assignment = member
            partitions = []
            if assignment:
                decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                for _topic, numbers in decoded.assignment:
                    partitions += numbers
            members.append({"member": member_id, "client": client_id, "partitions": partitions})
    return members


# -- feeding ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the feeder sent and what ingest answered."""

    by_address: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    message_ids: dict[str, UUID] = field(default_factory=dict)  # by provider message id
    retries: int = 0
    answers: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def count(self) -> int:
        return len(self.message_ids)


def interaction(tag: str, n: int, customers: int) -> dict[str, Any]:
    """The ``n``th interaction of a feed: ``customers`` addresses, a distinct provider id."""
    at = datetime.now(UTC) - timedelta(hours=2) + timedelta(seconds=n)
    return {
        "channel": "sms",
        "direction": "inbound",
        "address": f"phone:+1555077{n % customers:04d}",
        "provider_message_id": f"{tag}-{n}",
        "occurred_at": at.isoformat(),
        "text": f"message {n} of {tag}",
    }


class Feeder(threading.Thread):
    """Posts ``total`` interactions to an ingest process from a thread: batches and single
    posts in turn, a short pause in between, each retried while ingest answers 503 (or is
    unreachable): a retry is safe, the store dedupes by provider message id.

    With ``hold_at``, the feed waits there until :meth:`release`: a failure the test brings
    about before releasing is then sure to happen mid-stream, however slow the machine."""

    def __init__(
        self,
        url: str,
        total: int,
        *,
        customers: int = 50,
        batch: int = 25,
        pause: float = 0.05,
        tag: str = "feed",
        retry_for: float = 90.0,
        hold_at: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"feeder-{tag}")
        self._url = url
        self.total = total
        self.customers = customers
        self.batch = batch
        self.pause = pause
        self.tag = tag
        self.retry_for = retry_for
        self.sent = Sent()
        self.error: BaseException | None = None
        self.progress = 0  # interactions acknowledged so far
        self.hold_at = hold_at
        self._released = threading.Event()

    def release(self) -> None:
        """Let a feed held at ``hold_at`` go on."""
        self._released.set()

    def run(self) -> None:
        try:
            with httpx.Client(
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
            ) as client:
                n = 0
                single = False
                while n < self.total:
                    if self.hold_at is not None and n >= self.hold_at:
                        self._released.wait(120)  # never forever: finish() reports a stall
                    if single:
                        items = [interaction(self.tag, n, self.customers)]
                        self._post_one(client, items[0])
                    else:
                        count = min(self.batch, self.total - n)
                        items = [interaction(self.tag, n + i, self.customers) for i in range(count)]
                        self._post_batch(client, items)
                    for item in items:
                        self.sent.by_address[item["address"]].append(item["provider_message_id"])
                    n += len(items)
                    self.progress = n
                    single = not single
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _send(self, client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                response = client.post(f"{self._url}{path}", json=body)
            except httpx.TransportError:
                response = None
            if response is not None:
                self.sent.answers[response.status_code] += 1
                if response.status_code not in RETRY_STATUSES:
                    return response
            if time.monotonic() > deadline:
                what = response.text if response is not None else "no answer"
                raise AssertionError(f"ingest refused {path} for {self.retry_for}s: {what}")
            self.sent.retries += 1
            time.sleep(0.3)

    def _post_one(self, client: httpx.Client, item: dict[str, Any]) -> None:
        response = self._send(client, "/v1/interactions", item)
        assert response.status_code in (200, 202), response.text
        body = response.json()
        assert body["status"] in ("accepted", "duplicate"), body
        self.sent.message_ids[item["provider_message_id"]] = UUID(body["message_id"])

    def _post_batch(self, client: httpx.Client, items: list[dict[str, Any]]) -> None:
        response = self._send(client, "/v1/interactions/batch", {"interactions": items})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert len(results) == len(items)
        for item, result in zip(items, results, strict=True):
            assert result["status"] in ("accepted", "duplicate"), result
            self.sent.message_ids[item["provider_message_id"]] = UUID(result["message_id"])

    def finish(self, timeout: float = 180.0) -> Sent:
        self.release()
        self.join(timeout)
        assert not self.is_alive(), "the feeder did not finish"
        if self.error is not None:
            raise AssertionError(f"the feeder failed: {self.error!r}") from self.error
        assert self.sent.count == self.total
        return self.sent


# -- checks -----------------------------------------------------------------------------------


def assert_outcome(cluster: Cluster, sent: Sent, timeout: float = 120.0) -> None:
    """Once no stage has lag: every interaction recorded exactly once
    (:func:`assert_recorded_exactly_once`) and every event published
    (:func:`assert_events_published`; ``hub.events`` is read meanwhile)."""
    cluster.wait_no_lag(timeout)
    cluster.note("no lag")
    with ThreadPoolExecutor(1) as pool:
        records = pool.submit(topic_records, cluster.kafka, cluster.topics.events)
        assert_recorded_exactly_once(cluster, sent)
        counts = assert_events_published(cluster, records.result(90))
    cluster.note(
        f"checked: {counts['records']} records on hub.events for {counts['events']} events"
    )


def assert_recorded_exactly_once(cluster: Cluster, sent: Sent) -> None:
    """Every interaction sent is on its customer's timeline once (the timeline items of
    messages are what ``GET /v1/messages/{id}`` shows), one customer per address, and the
    conversations counted each message once. Call once no stage has lag."""
    api = cluster.one("api")
    for address, provider_ids in sent.by_address.items():
        expected = sorted(str(sent.message_ids[p]) for p in provider_ids)
        first = api.message(sent.message_ids[provider_ids[0]])
        customer = first["customer_id"]
        messages = _timeline_messages(api, customer, len(expected))
        assert sorted(str(m["item_id"]) for m in messages) == expected, (
            f"{address}: {len(expected)} sent, {len(messages)} on the timeline of {customer}"
        )
        assert sorted(m["provider_message_id"] for m in messages) == sorted(provider_ids)
        conversations = api.customer(customer)["open_conversations"]
        counted = sum(c["message_count"] for c in conversations)
        assert counted == len(expected), f"{address}: conversations count {counted} messages"


def _timeline_messages(api: RoleProcess, customer: str, count: int) -> list[dict[str, Any]]:
    """The messages on a customer's timeline, once there are ``count`` or more (views never
    take a row back) or after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        messages = [i for i in api.timeline(customer) if i["kind"] == "message"]
        if len(messages) >= count or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


async def _all_records(kafka: KafkaSettings, topic: str) -> list[Any]:
    """Every record on ``topic`` now (up to its end offsets), in order per partition. Read by
    assigned partitions, not a consumer group: ``read_topic`` (tests/stream/support.py) needs
    the count up front and waits seconds for its group to form."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.client_options())
    await consumer.start()
    found: list[Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += records
    finally:
        await consumer.stop()
    return found


def topic_records(kafka: KafkaSettings, topic: str) -> list[Any]:
    return asyncio.run(_all_records(kafka, topic))


def assert_events_published(cluster: Cluster, records: list[Any]) -> dict[str, int]:
    """``records`` (all of ``hub.events``) hold every event the store published at least once,
    each customer's on one partition, the first occurrences in store order. Returns counts."""
    events = cluster.one("api").events()
    assert events, "the store published nothing"
    by_id = {e["id"]: e for e in events}
    seen: set[str] = set()
    first_positions: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        envelope = decode_event(record.value)
        event_id = str(envelope.id)
        assert event_id in by_id, f"{envelope.type} at {envelope.position} is not in the store"
        assert by_id[event_id]["position"] == envelope.position
        customer = str(envelope.customer_id)
        assert record.key == customer.encode(), "hub.events is keyed by the customer id"
        partitions[customer].add(record.partition)
        if event_id not in seen:
            seen.add(event_id)
            first_positions[customer].append(envelope.position)
    missing = [e for e in events if e["id"] not in seen]
    assert not missing, f"{len(missing)} events never reached hub.events, first: {missing[0]}"
    for customer, positions in first_positions.items():
        assert positions == sorted(positions), f"customer {customer}: out of store order"
        assert len(partitions[customer]) == 1, f"customer {customer} on several partitions"
    return {"events": len(events), "records": len(records)}
