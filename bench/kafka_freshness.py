"""kafka_freshness: how soon an interaction taken by ingest is visible, under 1,000/s.

The distributed runtime as five role processes (ingest, process, relay, project, api) on a new
PostgreSQL database and its own topics. Load is open-loop, as in bench.freshness (its pool, its
batch mode and rate): one POST /v1/interactions/batch of 10 every 10 ms to ingest, for
``freshness_seconds`` (default 20 s). For ``freshness_samples_per_second`` sampled interactions
(the first of a sampled batch), a watcher polls GET /v1/messages/{id} on api from the moment
ingest's 200 arrived until it answers 200 (the message is on its customer's timeline):
freshness = seen - acknowledged. A sample is polled every 20 ms up to 400 ms of age, then
every 5% of its age up to 2 s and every 10% after (at most 1 s apart): precise near the
target, and the watchers do not flood api (a process on the same two cores, whose GETs cost
~2 ms of CPU each) with hundreds of samples in flight while the pipeline is behind.

Where a sample's time went, from timestamps on the same clock: ``recorded_at`` of its
interaction.received.v1 (or .sent.v1) event (set by process when it recorded it), the
hub.events record's timestamp (set by the relay when it produced it) and the moment it was
seen; hub.events is read back after the run for them.

The achieved send rate is what ingest acknowledged per second. When the pipeline cannot keep
up, interactions queue on hub.inbound (see the lag by stage) and freshness grows with the
length of the run; the row says so and the target is then not met.

Baseline, same run: the acknowledgement latency of the same requests, measured from when each
was due (p99 / p99). A second row: the same measure at a trickle of 100/s (one single POST
every 10 ms) first, the pipeline's own latency without a backlog (no target); its baseline is
one produce-consume hop on the same broker with a consumer that waits for data as the hub's
workers do (``fetch_max_wait_ms``, ``hub.stream.faust_driver.FETCH_MAX_WAIT_MS``):
process and project are each such a hop.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import install_uvloop
from bench.freshness import BATCHES, RATE, Mode, OpenLoop, _Pool, poll_visible
from bench.harness import auth_headers
from bench.kafka_broker import Broker, ensure_postgres, fresh_database, new_producer, new_topic
from bench.kafka_cluster import PARTITIONS, Cluster, CpuMeter, HubEnv, cpu_summary
from bench.kafka_ingest import LagSampler, seed
from bench.workload import Workload
from hub.stream.faust_driver import FETCH_MAX_WAIT_MS

NAME = "kafka_freshness"
TOPOLOGY = "roles"
TARGET_P99_MS = 1000.0
TRICKLE = Mode("trickle", 0.010, 1, 1, 4)  # 100 singles/s
TRICKLE_SECONDS = {"quick": 3.0, "default": 10.0, "full": 20.0}
HOPS = {"quick": 10, "default": 20, "full": 40}
WORKER_FETCH_MAX_WAIT_MS = FETCH_MAX_WAIT_MS  # as the workers' consumers wait
MESSAGE_EVENTS = ("interaction.received.v1", "interaction.sent.v1")
#: The last samples took longer than this after the load ended: a backlog was draining.
DRAIN_BEHIND_SECONDS = 5.0
#: A sample is polled every 5% of its age up to 2 s, then every 10% (20 ms to 1 s apart).
POLL_MIN = 0.02
POLL_SHARES = ((2.0, 0.05), (float("inf"), 0.10))
POLL_MAX = 1.0


def _sample_timeout(seconds: float) -> float:
    """How long a sample may take: the backlog of a pipeline far slower than the load drains
    for several times the length of the run."""
    return 60.0 + 6.0 * seconds


def _pause(age: float) -> float:
    """Seconds between polls of a sample of this age (see POLL_SHARES)."""
    share = next(share for until, share in POLL_SHARES if age < until)
    return max(POLL_MIN, min(POLL_MAX, age * share))


async def _load(
    cluster: Cluster,
    workload: Workload,
    mode: Mode,
    seconds: float,
    samples_per_second: float,
) -> dict[str, Any]:
    headers = auth_headers()
    senders = _Pool(cluster.ingest.port, mode.connections, headers)
    watchers = _Pool(cluster.api.port, 32, headers)
    sample_timeout = _sample_timeout(seconds)
    stamps: list[tuple[str, float, float]] = []  # (message id, acked, seen) on time.time()

    async def watch(first: dict[str, Any], acked: float) -> float | None:
        message_id = first["message_id"]
        acked_wall = time.time() - (time.perf_counter() - acked)
        seen = await poll_visible(
            watchers,
            f"/v1/messages/{message_id}",
            acked,
            visible=lambda _body: True,
            timeout=sample_timeout,
            pause=_pause,
        )
        if seen is not None:
            stamps.append((message_id, acked_wall, acked_wall + seen - acked))
        return seen

    sampler = LagSampler(cluster.api.port, interval=1.0).start()
    meter = CpuMeter(cluster.pids(), [cluster.hub_env.store_url]).start()
    loop = OpenLoop(senders, mode, watch)
    await loop.run(workload, seconds, samples_per_second, drain_timeout=sample_timeout)
    cpu = meter.stop()
    await sampler.stop()
    await senders.close()
    await watchers.close()
    return {
        **loop.summary(seconds),
        "offered_rate": loop.offered / seconds,
        "sample_timeout_seconds": sample_timeout,
        "stamps": stamps,
        "lag_peaks": sampler.peaks(),
        "lag_samples": [(round(t - loop.started, 2), lag) for t, lag in sampler.samples],
        "cpu": cpu,
    }


async def event_stamps(hub_env: HubEnv, wanted: set[str]) -> dict[str, tuple[float, float]]:
    """Message id -> (recorded_at, produced to hub.events) of the wanted messages'
    interaction.received.v1 (or .sent.v1) events, read back from hub.events."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = hub_env.topic("hub.events")
    partitions = [TopicPartition(topic, p) for p in range(hub_env.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hub_env.bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: dict[str, tuple[float, float]] = {}
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    event = orjson.loads(record.value)
                    if event["type"] not in MESSAGE_EVENTS:
                        continue
                    message_id = event["data"]["message_id"]
                    if message_id in wanted:
                        recorded = datetime.fromisoformat(event["recorded_at"]).timestamp()
                        found[message_id] = (recorded, record.timestamp / 1000)
    finally:
        await consumer.stop()
    return found


def stage_breakdown(
    stamps: list[tuple[str, float, float]], events: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """p50/p99 of each sample's time from ingest's 200 to recorded (process), from recorded to
    produced to hub.events (relay), and from there to seen (project, and the polling)."""
    spans: dict[str, list[float]] = {"process": [], "relay": [], "project": []}
    for message_id, acked, seen in stamps:
        if message_id not in events:
            continue
        recorded, published = events[message_id]
        spans["process"].append(recorded - acked)
        spans["relay"].append(published - recorded)
        spans["project"].append(seen - published)
    return {
        "samples": len(spans["process"]),
        "p50_ms": {k: percentile(v, 50) * 1000 for k, v in spans.items()},
        "p99_ms": {k: percentile(v, 99) * 1000 for k, v in spans.items()},
    }


def _stages_text(phase: dict[str, Any]) -> str:
    p50 = phase["stages"]["p50_ms"]
    return (
        f"p50 by stage: ingest's 200 to recorded {p50['process']:,.0f}, to produced to "
        f"hub.events {p50['relay']:,.0f}, to visible {p50['project']:,.0f} ms"
    )


async def broker_hop(bootstrap: str, partitions: int, hops: int) -> dict[str, Any]:
    """One record at a time, produced (acks=all) and consumed on a topic with ``partitions``
    partitions, by a consumer that waits for data as the hub's workers do
    (``fetch_max_wait_ms`` as they set it): the broker's part of each consumer hop."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = await new_topic(bootstrap, "bench-hop", partitions)
    producer = new_producer(bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=WORKER_FETCH_MAX_WAIT_MS,
    )
    await producer.start()
    await consumer.start()
    latencies: list[float] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        rng = random.Random(7)
        for hop in range(hops):
            await asyncio.sleep(rng.uniform(0.05, 0.25))  # not in step with the fetches
            sent = time.perf_counter()
            await producer.send_and_wait(topic, key=str(hop).encode(), value=b"x" * 400)
            await asyncio.wait_for(consumer.getone(), 30)
            latencies.append(time.perf_counter() - sent)
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "hops": len(latencies),
        "partitions": partitions,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def _measure(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    workload = Workload(seed=91, new_share=0.1)
    await seed(cluster.ingest.port, cluster.api.port, workload, scale.seed_customers)
    trickle = await _load(
        cluster,
        workload,
        TRICKLE,
        TRICKLE_SECONDS[scale.name],
        scale.freshness_samples_per_second,
    )
    await seed(cluster.ingest.port, cluster.api.port, workload, 0)  # caught up again
    load = await _load(
        cluster,
        workload,
        BATCHES,
        scale.freshness_seconds,
        scale.freshness_samples_per_second,
    )
    wanted = {m for phase in (trickle, load) for m, _, _ in phase["stamps"]}
    events = await event_stamps(cluster.hub_env, wanted)
    for phase in (trickle, load):
        phase["stages"] = stage_breakdown(phase.pop("stamps"), events)
    return {"trickle": trickle, "load": load}


def _problems(load: dict[str, Any], rate: float) -> list[str]:
    problems = []
    if load["sample_timeouts"]:
        problems.append(
            f"{load['sample_timeouts']} samples not visible within "
            f"{load['sample_timeout_seconds']:.0f} s"
        )
    if load["failures"]:
        problems.append(f"failures {load['failures']}")
    if load["achieved_rate"] < rate * 0.95 or load["unacknowledged"]:
        behind = f"ingest fell behind: acknowledged {load['achieved_rate']:,.0f}/s"
        if load["unacknowledged"]:
            behind += f", {load['unacknowledged']:,} never acknowledged"
        problems.append(behind)
    peaks = load["lag_peaks"]
    if load["drain_seconds"] > DRAIN_BEHIND_SECONDS:
        problems.append(
            f"pipeline fell behind: lag up to {peaks['inbound']:,} on hub.inbound, "
            f"{peaks['relay']:,} in the outbox, {peaks['events']:,} on hub.events; "
            f"drained {load['drain_seconds']:.0f} s after the load"
        )
    return problems


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    ensure_postgres()
    with Broker(workdir) as broker, fresh_database("freshness") as url:
        hub_env = HubEnv(broker.bootstrap, url, url)
        hub_env.kafka_init(workdir)
        hop = asyncio.run(broker_hop(broker.bootstrap, PARTITIONS, HOPS[scale.name]))
        with Cluster(TOPOLOGY, hub_env, workdir, broker_pid=broker.pid) as cluster:
            measured = asyncio.run(_measure(cluster, scale))
    load, trickle = measured["load"], measured["trickle"]
    problems = _problems(load, RATE)
    rows = [
        Row(
            benchmark=NAME,
            figure=f"visible (GET /v1/messages/{{id}}) p50 {load['fresh_p50_ms']:,.0f} / p99 "
            f"{load['fresh_p99_ms']:,.0f} ms after ingest's 200 ({load['samples']} samples; "
            f"{BATCHES.label}; {RATE:,}/s offered for {scale.freshness_seconds:.0f} s, "
            f"{load['achieved_rate']:,.0f}/s acknowledged; 5 role processes; CPU "
            f"{cpu_summary(load['cpu'])}; {_stages_text(load)}"
            + ("; " + "; ".join(problems) if problems else "")
            + ")",
            target=f"p99 <= {TARGET_P99_MS:,.0f} ms",
            baseline=f"ingest acknowledgement p50 {load['ack_p50_ms']:,.0f} / p99 "
            f"{load['ack_p99_ms']:,.0f} ms",
            ratio=load["fresh_p99_ms"] / load["ack_p99_ms"],
            ratio_label="p99 / p99",
            met=load["fresh_p99_ms"] <= TARGET_P99_MS and not problems,
            value=load["fresh_p99_ms"],
            unit="ms",
        ),
        Row(
            benchmark=NAME,
            figure=f"at a trickle of {trickle['offered_rate']:,.0f}/s: visible p50 "
            f"{trickle['fresh_p50_ms']:,.0f} / p99 {trickle['fresh_p99_ms']:,.0f} ms "
            f"({TRICKLE.label}; {trickle['samples']} samples; {_stages_text(trickle)}"
            + "".join(f"; {p}" for p in _problems(trickle, trickle["offered_rate"]))
            + ")",
            target="- (the pipeline's own latency)",
            baseline=f"one produce-consume hop on the same broker, {PARTITIONS} partitions, "
            "consumer waiting as the hub's workers "
            f"(fetch_max_wait_ms {WORKER_FETCH_MAX_WAIT_MS:,}): "
            f"p50 {hop['p50_ms']:,.0f} / p99 {hop['p99_ms']:,.0f} ms",
            ratio=trickle["fresh_p99_ms"] / hop["p99_ms"],
            ratio_label="p99 / hop p99",
            met=None,
            value=trickle["fresh_p99_ms"],
            unit="ms",
        ),
    ]
    raw = {**measured, "hop": hop, "broker": broker.kind, "topology": TOPOLOGY}
    return Result(NAME, rows, raw)
