"""kafka_ingest: the distributed runtime end to end on PostgreSQL, from ingest to visible.

``CONNECTIONS`` clients POST /v1/interactions/batch to the ingest role (1,000 interactions a
request; 500 at ``quick``), each as fast as ingest answers (it answers once the broker
acknowledged). The clock runs from the first request until the last ``LAST_IDS`` message ids of
every client's last batch answer 200 on GET /v1/messages/{id} (they are on their timelines)
**and** /readyz says ``lag`` 0 (nothing left on hub.inbound, in the outbox or on hub.events).
Rate = interactions / that time. Afterwards (untimed) ``CHECK_IDS`` random ids of the run must
answer 200 too.

Both topologies run, each on a new database and its own topics: ``roles`` (ingest, process,
relay, project and api as five processes) and ``all`` (``hub run all``: one process, one
GIL). The better one is the headline row, the other is named in it.

Returning customers are created first and caught up (untimed), as in batch_ingest. Meanwhile
the run records, for the diagnosis: /readyz ``lag_by_stage`` every ``LAG_INTERVAL`` s (when each
stage finished its share), ``hub_role_items_total`` of every role, and the CPU time of every
process (roles, broker, PostgreSQL backends of the run's database, this client, the machine).

Baseline, same run, same broker: aiokafka's raw produce rate (AIOKafkaProducer, acks=all,
no linger and no idempotence, as ingest) of the records ingest produces for interactions of
the same mix (key = address, value = the inbound JSON), to a topic with the same partition
count, from as many concurrent senders in batches of the same size; at least
``RAW_MIN_RECORDS`` records.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import Result, Row, Scale
from bench.client import (
    Connection,
    HttpError,
    install_uvloop,
    post_batch,
    post_encoded_batch,
    readyz,
    wait_caught_up,
)
from bench.harness import auth_headers
from bench.kafka_broker import Broker, ensure_postgres, fresh_database, new_producer, new_topic
from bench.kafka_cluster import (
    PARTITIONS,
    TOPOLOGIES,
    Cluster,
    CpuMeter,
    HubEnv,
    cpu_per_item,
)
from bench.workload import Workload, to_inbound

NAME = "kafka_ingest"
TARGET = 3000.0
CONNECTIONS = 4
LAG_INTERVAL = 0.5
POLL_INTERVAL = 0.05
LAST_IDS = 20  # of each client's last batch, polled until visible
CHECK_IDS = 200  # random ids of the run checked afterwards (untimed)
VISIBLE_TIMEOUT = 900.0
RAW_MIN_RECORDS = 50_000  # the raw producer is fast: enough records for a steady figure


@dataclass(frozen=True)
class Sizes:
    seed_customers: int
    batch: int
    batches: int


SIZES = {
    "quick": Sizes(seed_customers=500, batch=500, batches=6),
    "default": Sizes(seed_customers=2_000, batch=1_000, batches=20),
    "full": Sizes(seed_customers=10_000, batch=1_000, batches=100),
}


class LagSampler:
    """/readyz ``lag_by_stage`` of one process every ``interval`` s, in the background."""

    def __init__(self, port: int, interval: float = LAG_INTERVAL) -> None:
        self.port = port
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []  # (perf_counter, stages)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LagSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        conn = await Connection(self.port, auth_headers()).open()
        try:
            while not self._stop.is_set():
                status = await readyz(conn)
                if status is not None:
                    self.samples.append((time.perf_counter(), dict(status["lag_by_stage"])))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)
        finally:
            await conn.close()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def peaks(self) -> dict[str, int]:
        stages = ("inbound", "relay", "events")
        return {s: max((lag.get(s, 0) for _, lag in self.samples), default=0) for s in stages}

    def stage_done(self, origin: float, after: float) -> dict[str, float | None]:
        """Seconds after ``origin`` at which each stage had finished, in pipeline order: the
        first sample from ``after`` on (and after the previous stage finished) with that
        stage's lag at 0."""
        done: dict[str, float | None] = {}
        for stage in ("inbound", "relay", "events"):
            found = next(
                (t for t, lag in self.samples if t >= after and lag.get(stage, 0) == 0), None
            )
            done[stage] = None if found is None else found - origin
            after = found if found is not None else float("inf")
        return done


async def seed(ingest_port: int, api_port: int, workload: Workload, customers: int) -> None:
    """Create the returning customers through ingest and wait until all is visible."""
    headers = auth_headers()
    conn = await Connection(ingest_port, headers).open()
    control = await Connection(api_port, headers).open()
    try:
        for start in range(0, customers, 1000):
            await post_batch(conn, workload.seed_customers(min(1000, customers - start)))
        await wait_caught_up(control, timeout=300, interval=POLL_INTERVAL)
    finally:
        await conn.close()
        await control.close()


async def visible(control: Connection, message_id: str) -> bool:
    status, body = await control.request("GET", f"/v1/messages/{message_id}")
    if status not in (200, 404):
        raise HttpError(f"GET /v1/messages/{message_id}: {status} {body[:200]!r}")
    return status == 200


async def _pipeline(cluster: Cluster, workload: Workload, sizes: Sizes) -> dict[str, Any]:
    ingest_port, api_port = cluster.ingest.port, cluster.api.port
    headers = auth_headers()
    await seed(ingest_port, api_port, workload, sizes.seed_customers)
    bodies = [
        orjson.dumps({"interactions": workload.batch(sizes.batch)}) for _ in range(sizes.batches)
    ]
    queue: list[bytes] = list(reversed(bodies))
    last_ids: dict[int, list[str]] = {}
    all_ids: list[str] = []
    request_seconds: list[float] = []

    async def poster(index: int) -> None:
        conn = await Connection(ingest_port, headers).open()
        try:
            while queue:
                outcome = await post_encoded_batch(conn, queue.pop(), request_seconds)
                taken = outcome["accepted"] + outcome["recorded"]
                if taken != sizes.batch:
                    raise HttpError(f"batch: {taken} of {sizes.batch} taken: {str(outcome)[:300]}")
                ids = [r["message_id"] for r in outcome["results"]]
                all_ids.extend(ids)
                last_ids[index] = ids[-LAST_IDS:]
        finally:
            await conn.close()

    items_before = await asyncio.to_thread(cluster.role_items)
    meter = CpuMeter(cluster.pids(), [cluster.hub_env.store_url]).start()
    sampler = LagSampler(api_port).start()
    control = await Connection(api_port, headers).open()
    try:
        started = time.perf_counter()
        await asyncio.gather(*(poster(i) for i in range(CONNECTIONS)))
        posted = time.perf_counter()
        pending = [m for ids in last_ids.values() for m in ids]
        ids_seen: float | None = None
        deadline = posted + VISIBLE_TIMEOUT
        while True:
            now = time.perf_counter()
            if pending:
                still = []
                for message_id in pending:
                    if still or not await visible(control, message_id):
                        still.append(message_id)
                pending = still
                if not pending:
                    ids_seen = time.perf_counter()
            if not pending:
                status = await readyz(control)
                if status is not None and status["lag"] == 0:
                    done = time.perf_counter()
                    break
            if now > deadline:
                raise TimeoutError(f"not visible {VISIBLE_TIMEOUT:.0f} s after the last post")
            await asyncio.sleep(POLL_INTERVAL)
        cpu = meter.stop()
        await sampler.stop()
        sampler.samples.append((done, {"inbound": 0, "relay": 0, "events": 0}))
        items_after = await asyncio.to_thread(cluster.role_items)
        checked = random.Random(5).sample(all_ids, min(CHECK_IDS, len(all_ids)))
        missing = [m for m in checked if not await visible(control, m)]
        if missing:
            raise HttpError(
                f"{len(missing)} of {len(checked)} checked ids not visible: {missing[:3]}"
            )
    finally:
        await control.close()
    items = len(all_ids)
    assert ids_seen is not None
    return {
        "topology": cluster.topology,
        "interactions": items,
        "seconds": done - started,
        "rate": items / (done - started),
        "ingest_rate": items / (posted - started),
        "ids_visible_seconds": ids_seen - started,
        "lag_zero_after_ids_seconds": done - ids_seen,
        "stage_done_seconds": sampler.stage_done(started, posted),
        "lag_peaks": sampler.peaks(),
        "lag_samples": [(round(t - started, 2), lag) for t, lag in sampler.samples],
        "batch_request_seconds_mean": sum(request_seconds) / len(request_seconds),
        "role_items": {
            role: items_after.get(role, 0.0) - items_before.get(role, 0.0) for role in items_after
        },
        "cpu": cpu,
    }


async def raw_produce(bootstrap: str, partitions: int, workload: Workload, sizes: Sizes) -> Any:
    """The baseline: records as ingest produces them, straight to the broker."""
    batches: list[list[tuple[bytes, bytes]]] = []
    for _ in range(max(sizes.batches, -(-RAW_MIN_RECORDS // sizes.batch))):
        items = [to_inbound(body) for body in workload.batch(sizes.batch)]
        batches.append(
            [(i.address.encode(), i.model_dump_json(exclude_defaults=True).encode()) for i in items]
        )
    topic = await new_topic(bootstrap, "bench-raw", partitions)
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await (await producer.send(topic, key=b"warm-up", value=b"{}"))
        queue = list(reversed(batches))

        async def sender() -> None:
            while queue:
                records = queue.pop()
                sends = [await producer.send(topic, key=k, value=v) for k, v in records]
                await asyncio.gather(*sends)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    records = sum(len(b) for b in batches)
    value_bytes = sum(len(v) for b in batches for _, v in b)
    return {
        "records": records,
        "seconds": elapsed,
        "rate": records / elapsed,
        "value_bytes_mean": value_bytes / records,
    }


def _stages(run: dict[str, Any]) -> str:
    done = run["stage_done_seconds"]
    names = {"inbound": "process", "relay": "relay", "events": "project"}
    parts = [
        f"{names[s]} {done[s]:.0f} s" if done[s] is not None else f"{names[s]} ?" for s in names
    ]
    return ", ".join(parts)


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    sizes = SIZES[scale.name]
    ensure_postgres()
    runs: dict[str, dict[str, Any]] = {}
    with Broker(workdir) as broker:
        baseline = asyncio.run(raw_produce(broker.bootstrap, PARTITIONS, Workload(seed=71), sizes))
        for topology in TOPOLOGIES:
            with fresh_database(f"ingest_{topology}") as url:
                hub_env = HubEnv(broker.bootstrap, url, url)
                hub_env.kafka_init(workdir)
                with Cluster(topology, hub_env, workdir, broker_pid=broker.pid) as cluster:
                    workload = Workload(seed=61, new_share=0.1)
                    runs[topology] = asyncio.run(_pipeline(cluster, workload, sizes))
    best = max(runs.values(), key=lambda r: r["rate"])
    other = next(r for r in runs.values() if r is not best)
    label = {"roles": "5 role processes", "all": "`hub run all`, one process"}
    rows = [
        Row(
            benchmark=NAME,
            figure=f"{best['rate']:,.0f} interactions/s ingest to visible "
            f"({label[best['topology']]}; {best['interactions']:,} in batches of "
            f"{sizes.batch:,} from {CONNECTIONS} clients; ingest acked "
            f"{best['ingest_rate']:,.0f}/s; stages done after: {_stages(best)}; CPU per "
            f"interaction: {cpu_per_item(best['cpu'], best['interactions'])}, machine "
            f"{best['cpu']['machine_busy'] * 100:.0f}% busy; other topology, "
            f"{label[other['topology']]}: {other['rate']:,.0f}/s)",
            target=f">= {TARGET:,.0f}/s",
            baseline=f"aiokafka produce, acks=all, {PARTITIONS} partitions, "
            f"~{baseline['value_bytes_mean']:,.0f}-byte records: {baseline['rate']:,.0f} records/s",
            ratio=best["rate"] / baseline["rate"],
            ratio_label="hub / raw produce",
            met=best["rate"] >= TARGET,
            value=best["rate"],
            unit="interactions/s",
        )
    ]
    return Result(NAME, rows, {"runs": runs, "baseline": baseline, "broker": broker.kind})
