"""kafka_projection: how fast the ``project`` worker (``hub.stream.batch_worker``, an aiokafka
consumer taking each fetch as a batch) applies hub.events to the views.

hub.events is filled first (untimed): interactions recorded in-process into a new PostgreSQL
store through the runtime, then published by the relay (``hub.stream.relay.Relay``), exactly
as ``hub run relay`` would. N published events, in store order per customer.

Then, on the same topic, same N events:

- baseline: a plain AIOKafkaConsumer (no group, from the earliest offset) that decodes every
  record (``hub.events.decode_event``) and nothing else;
- second baseline, fairer: the same consumer decoding and applying each fetched batch with the
  same call the worker makes (``Views.apply_partition`` per partition, batches of up to 500) to
  a second, empty views database, in the consumer's thread;
- the worker: ``hub run project`` as its own process on an empty views database. Its progress
  is read from the views (``view_partition_positions``, polled every ``POLL`` s from here), so
  the worker is not disturbed: events applied = events of each partition up to the position
  every projection reached there.

All three are timed from the moment the first batch was done to the last event (the first
batch is not counted): rates do not include start-up or joining the consumer group. Also
reported: how long after the views held everything the group's lag reached 0 (offsets are
committed every ``commit_interval``, 1 s), and the worker's CPU.

The target (ratio >= 0.5) is against the decode-only baseline. The second ratio, against
decode + apply, separates the worker's own overhead (the consumer group, the hand-off to a
thread) from the cost of writing the views, which both share. The third row is Faust's floor
on the same topic (bench.faust_floor: a Faust app and batch agent as the workers had them
until issue 20's step 4, with a handler that does nothing, in a process and consumer group of
its own): no worker built on Faust's per-record stream can be faster, so its ratio to
decode-only says what the batch consumer spares.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import Result, Row, Scale
from bench.client import install_uvloop
from bench.harness import cpu_seconds, process_env
from bench.kafka_broker import Broker, ensure_postgres, fresh_database
from bench.kafka_cluster import PARTITIONS, CpuMeter, HubEnv, role_server, wait_ready
from bench.workload import Workload, to_inbound

NAME = "kafka_projection"
TARGET_RATIO = 0.5
BATCH = 500  # records a batch, as the worker takes them (hub.stream.app.BATCH_SIZE)
POLL = 0.02
TIMEOUT = 900.0


@dataclass(frozen=True)
class Sizes:
    seed_customers: int
    interactions: int


SIZES = {
    "quick": Sizes(seed_customers=300, interactions=3_000),
    "default": Sizes(seed_customers=2_000, interactions=20_000),
    "full": Sizes(seed_customers=10_000, interactions=100_000),
}


def fill(hub_env: HubEnv, workdir: Path, sizes: Sizes) -> dict[str, Any]:
    """Record interactions into the store in-process, then publish them with the relay."""
    from hub.runtime import Runtime
    from hub.stream.relay import Relay

    runtime = Runtime(hub_env.settings(workdir / "fill"))
    runtime.start()
    try:
        workload = Workload(seed=81, new_share=0.1)
        started = time.perf_counter()
        for start in range(0, sizes.seed_customers, 1000):
            count = min(1000, sizes.seed_customers - start)
            runtime.record_now([to_inbound(b) for b in workload.seed_customers(count)])
        for start in range(0, sizes.interactions, 1000):
            count = min(1000, sizes.interactions - start)
            runtime.record_now([to_inbound(b) for b in workload.batch(count)])
        recorded = time.perf_counter() - started

        async def publish() -> int:
            relay = Relay(runtime.store, runtime.settings.kafka)
            await relay.start()
            try:
                while await relay.publish_once():
                    pass
            finally:
                await relay.stop()
            return relay.published

        started = time.perf_counter()
        published = asyncio.run(publish())
        relayed = time.perf_counter() - started
    finally:
        runtime.stop()
    return {
        "interactions": sizes.seed_customers + sizes.interactions,
        "events": published,
        "record_seconds": recorded,
        "relay_seconds": relayed,
    }


async def consume(hub_env: HubEnv, events: int, views: Any = None) -> dict[str, Any]:
    """Read the whole of hub.events with a plain consumer: decode (and apply, given views)."""
    from aiokafka import AIOKafkaConsumer

    from hub.events import decode_event

    topic = hub_env.topic("hub.events")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=hub_env.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    positions: dict[int, list[int]] = {}
    got = first = 0
    first_at = last_at = 0.0
    cpu_at_first = cpu_at_last = 0.0
    try:
        deadline = time.perf_counter() + TIMEOUT
        while got < events:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"read {got} of {events} events")
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            for tp, records in batches.items():
                envelopes = [decode_event(r.value) for r in records]
                if views is not None:
                    views.apply_partition(tp.topic, tp.partition, envelopes)
                positions.setdefault(tp.partition, []).extend(e.position for e in envelopes)
                got += len(records)
            if got and not first:
                first, first_at, cpu_at_first = got, time.perf_counter(), time.process_time()
        last_at, cpu_at_last = time.perf_counter(), time.process_time()
    finally:
        await consumer.stop()
    return {
        "events": got,
        "timed_events": got - first,
        "seconds": last_at - first_at,
        "rate": (got - first) / (last_at - first_at),
        "cpu_us_per_event": (cpu_at_last - cpu_at_first) / (got - first) * 1e6,
        "positions": {p: sorted(v) for p, v in positions.items()},
    }


class ViewsWatcher(threading.Thread):
    """Polls the worker's views for how many events every projection has applied."""

    def __init__(self, url: str, topic: str, positions: dict[int, list[int]]) -> None:
        super().__init__(daemon=True)
        self.url, self.topic, self.positions = url, topic, positions
        self.total = sum(len(v) for v in positions.values())
        self.first: tuple[float, int] | None = None  # (time, applied) of the first progress
        self.done_at: float | None = None
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        from hub.projections import default_projections

        self.projections = len(default_projections())  # each keeps a position a partition

    def applied(self, conn: psycopg.Connection[Any]) -> int:
        rows = conn.execute(
            "SELECT partition, min(position), count(*) FROM view_partition_positions "
            "WHERE topic = %s GROUP BY partition",
            (self.topic,),
        ).fetchall()
        count = 0
        for partition, position, projections in rows:
            if projections == self.projections:
                count += bisect.bisect_right(self.positions.get(int(partition), []), position)
        return count

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stopping.is_set():
                    try:
                        applied = self.applied(conn)
                    except psycopg.errors.UndefinedTable:
                        applied = 0  # the worker has not created its tables yet
                    now = time.perf_counter()
                    if applied and self.first is None:
                        self.first = (now, applied)
                    if applied >= self.total:
                        self.done_at = now
                        return
                    time.sleep(POLL)
        except BaseException as exc:
            self.error = exc


def worker_rate(
    hub_env: HubEnv, workdir: Path, positions: dict[int, list[int]], broker_pid: int | None
) -> dict[str, Any]:
    """``hub run project`` from an empty views database until the views hold every event."""
    watcher = ViewsWatcher(hub_env.views_url, hub_env.topic("hub.events"), positions)
    watcher.start()
    server = role_server(hub_env, workdir, "project")
    launched = time.perf_counter()
    with server:
        processes = {"project": server.pid}
        if broker_pid is not None:
            processes["broker"] = broker_pid
        meter = CpuMeter(processes, [hub_env.views_url]).start()
        project_cpu_at_start = cpu_seconds(server.pid)
        watcher.join(TIMEOUT)
        if watcher.error is not None:
            raise watcher.error
        if watcher.done_at is None or watcher.first is None:
            watcher.stopping.set()
            raise TimeoutError(f"views incomplete after {TIMEOUT:.0f} s: {server.log_tail()}")
        cpu = meter.stop()
        ready = wait_ready(server)
        lag_deadline = time.perf_counter() + 60
        while ready["lag_by_stage"]["events"] and time.perf_counter() < lag_deadline:
            time.sleep(POLL)
            ready = wait_ready(server)
        lag_zero = time.perf_counter()
    first_at, first = watcher.first
    timed = watcher.total - first
    return {
        "events": watcher.total,
        "timed_events": timed,
        "seconds": watcher.done_at - first_at,
        "rate": timed / (watcher.done_at - first_at),
        "start_seconds": first_at - launched,
        "lag_zero_after_views_seconds": lag_zero - watcher.done_at,
        "lag_left": ready["lag_by_stage"]["events"],
        "startup_cpu_seconds": project_cpu_at_start,
        "cpu": cpu,
    }


def faust_floor(hub_env: HubEnv, workdir: Path, events: int) -> dict[str, Any]:
    """bench.faust_floor in a process of its own, with the run's HUB_* environment."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.faust_floor",
            "--topic",
            hub_env.topic("hub.events"),
            "--events",
            str(events),
        ],
        env=process_env(hub_env.variables(workdir / "floor")),
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.faust_floor failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    sizes = SIZES[scale.name]
    ensure_postgres()
    with (
        Broker(workdir) as broker,
        fresh_database("projection") as store_url,
        fresh_database("projection_apply") as apply_url,
    ):
        hub_env = HubEnv(broker.bootstrap, store_url, store_url)
        hub_env.kafka_init(workdir)
        filled = fill(hub_env, workdir, sizes)
        decode = asyncio.run(consume(hub_env, filled["events"]))
        positions = decode.pop("positions")

        from hub.projections import Views
        from hub.store.database import create_db_engine

        engine = create_db_engine(apply_url)
        try:
            views = Views(engine)
            views.create()
            apply = asyncio.run(consume(hub_env, filled["events"], views))
        finally:
            engine.dispose()
        apply.pop("positions")
        worker = worker_rate(hub_env, workdir, positions, broker.pid)
        floor = faust_floor(hub_env, workdir, filled["events"])
    cpu = worker["cpu"]
    per_event = {
        name: seconds / worker["events"] * 1e6 for name, seconds in cpu["cpu_seconds"].items()
    }
    common = (
        f"{worker['events']:,} events from {filled['interactions']:,} interactions, "
        f"{PARTITIONS} partitions"
    )
    rows = [
        Row(
            benchmark=NAME,
            figure=f"{worker['rate']:,.0f} events/s applied by `hub run project` ({common}; "
            f"worker CPU {per_event['project']:.0f} µs/event, PostgreSQL "
            f"{per_event['postgres']:.0f} µs/event; lag 0 "
            f"{worker['lag_zero_after_views_seconds']:.1f} s after the views were complete)",
            target=f"ratio >= {TARGET_RATIO}",
            baseline=f"plain AIOKafkaConsumer, decode only: {decode['rate']:,.0f} events/s",
            ratio=worker["rate"] / decode["rate"],
            ratio_label="worker / decode",
            met=worker["rate"] / decode["rate"] >= TARGET_RATIO,
            value=worker["rate"],
            unit="events/s",
        ),
        Row(
            benchmark=NAME,
            figure=f"same worker: {worker['rate']:,.0f} events/s",
            target="- (the worker's own overhead)",
            baseline="same consumer, decode + the same Views.apply_partition per partition and "
            f"batch of <= {BATCH}, in its thread: {apply['rate']:,.0f} events/s "
            f"({apply['cpu_us_per_event']:.0f} µs/event of CPU in the client)",
            ratio=worker["rate"] / apply["rate"],
            ratio_label="worker / decode + apply",
            met=None,
            value=worker["rate"],
            unit="events/s",
        ),
        Row(
            benchmark=NAME,
            figure=f"Faust's floor: the workers' batch agent doing nothing, "
            f"{floor['rate']:,.0f} events/s ({floor['cpu_us_per_event']:.0f} µs/event of CPU)",
            target="- (no worker on Faust's stream is faster)",
            baseline=f"the same decode-only consumer: {decode['rate']:,.0f} events/s",
            ratio=floor["rate"] / decode["rate"],
            ratio_label="floor / decode",
            met=None,
            value=floor["rate"],
            unit="events/s",
        ),
    ]
    raw = {
        "floor": floor,
        "fill": filled,
        "decode": decode,
        "apply": apply,
        "worker": worker,
        "broker": broker.kind,
    }
    raw["worker"]["cpu_us_per_event"] = per_event
    return Result(NAME, rows, raw)
