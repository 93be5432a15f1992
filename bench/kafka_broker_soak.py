"""kafka_broker_soak: the test broker alone under the soak's Kafka traffic, no hub.

``python -m bench --only kafka_broker_soak`` (5 minutes at the default scale, 1 at ``quick``).
A fresh broker (bench.kafka_broker: Tansu with memory storage, unless
``HUB_BENCH_KAFKA_BOOTSTRAP`` names another) takes the rate kafka_soak offers, 200 records/s of
~480 bytes on one topic of the cluster's partitions, produced with the hub's producer settings
(acks=all, one record per send), and one consumer group reads them as the hub's workers read
(fetches waiting up to 50 ms, a commit after each batch). Reported by minute: the broker's CPU
and the produce acknowledgement's p99. Its baseline: a second fresh broker taking the same
produce for a minute with nobody consuming.

What it is for: kafka_soak's ingest waits on the broker's acknowledgements, on the same two
cores as the hub. A broker whose cost grows with the records it holds, as it keeps them all,
sets a floor under that row that no change to the hub moves; this row measures it apart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench import Result, Row, Scale, percentile
from bench.client import install_uvloop
from bench.harness import cpu_seconds
from bench.kafka_broker import Broker, new_producer, new_topic
from bench.kafka_cluster import PARTITIONS
from bench.kafka_freshness import WORKER_FETCH_MAX_WAIT_MS

NAME = "kafka_broker_soak"
RATE = 200.0  # records/s: kafka_soak's offered interactions
RECORD = b"x" * 480  # about an interaction's size on hub.inbound
BASELINE_SECONDS = 60.0
GROWS = 2.0  # the last minute's CPU over the first's: what reads as "grows with the log"


async def _load(bootstrap: str, pid: int, seconds: float, consume: bool) -> dict[str, Any]:
    """Produce RATE records/s for ``seconds`` (and consume them in a group); by minute: the
    broker's CPU (% of a core) and the produce p99 (ms)."""
    from aiokafka import AIOKafkaConsumer

    topic = await new_topic(bootstrap, "bench-broker-soak", PARTITIONS)
    producer = new_producer(bootstrap)
    await producer.start()
    consumed = 0

    async def read(stopping: asyncio.Event) -> None:
        """Read as the workers read, in a group, a commit after each batch."""
        nonlocal consumed
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{topic}-group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=WORKER_FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        try:
            while not stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if batches:
                    consumed += sum(len(records) for records in batches.values())
                    await consumer.commit()
        finally:
            await consumer.stop()

    acks: list[list[float]] = [[]]  # by minute
    cpu: list[float] = []  # by minute, the last one as long as it lasted
    pending: set[asyncio.Task[None]] = set()

    async def send(n: int) -> None:
        sent = time.perf_counter()
        await (await producer.send(topic, key=f"k{n % 1000}".encode(), value=RECORD))
        acks[-1].append(time.perf_counter() - sent)

    stopping = asyncio.Event()
    reader = asyncio.create_task(read(stopping)) if consume else None
    started = time.perf_counter()
    minute_started, cpu_at = started, cpu_seconds(pid)

    def minute_ends() -> None:
        nonlocal minute_started, cpu_at
        now, used = time.perf_counter(), cpu_seconds(pid)
        cpu.append(100 * (used - cpu_at) / (now - minute_started))
        minute_started, cpu_at = now, used

    n = 0
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            if elapsed >= 60 * len(acks):
                minute_ends()
                acks.append([])
            task = asyncio.create_task(send(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            await asyncio.sleep(max(0.0, started + n / RATE - time.perf_counter()))
        if pending:
            await asyncio.wait(set(pending))
        minute_ends()
    finally:
        stopping.set()
        if reader is not None:
            await reader
        await producer.stop()
    return {
        "produced": n,
        "consumed": consumed,
        "cpu_percent": [round(c) for c in cpu],
        "ack_p99_ms": [percentile(a, 99) * 1000 for a in acks],
    }


def _fresh_broker(workdir: Path, seconds: float, consume: bool) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    with Broker(workdir) as broker:
        if broker.pid is None:  # HUB_BENCH_KAFKA_BOOTSTRAP's: not ours to sample
            raise RuntimeError("the broker's CPU can be read only from a broker the row starts")
        figures = asyncio.run(_load(broker.bootstrap, broker.pid, seconds, consume))
        figures["broker"] = broker.kind
    return figures


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    seconds = min(scale.soak_seconds, 300.0)
    alone_seconds = min(BASELINE_SECONDS, seconds / 3)
    alone = _fresh_broker(workdir / "produce", alone_seconds, False)
    soak = _fresh_broker(workdir / "soak", seconds, True)
    cpu, first = soak["cpu_percent"], max(soak["cpu_percent"][0], 1)
    by_minute = ", ".join(f"{c}" for c in cpu)
    acks = ", ".join(f"{a:,.1f}" for a in soak["ack_p99_ms"])
    row = Row(
        benchmark=NAME,
        figure=f"{soak['broker']} alone, {RATE:,.0f} records/s produced (acks=all) and "
        f"consumed by one group for {seconds / 60:.0f} min ({soak['produced']:,} records, "
        f"{soak['consumed']:,} consumed): broker CPU by minute {by_minute}% of a core; "
        f"produce p99 by minute {acks} ms",
        target="- (bounds kafka_soak on this broker: its ingest waits on these acknowledgements)",
        baseline=f"the same produce, nobody consuming, {alone_seconds:.0f} s: broker CPU "
        f"{alone['cpu_percent'][0]}%",
        ratio=cpu[-1] / first,
        ratio_label="last minute's CPU / first's",
        met=None,
        value=cpu[-1],
        unit="% CPU",
    )
    if cpu[-1] / first >= GROWS:
        row.figure += " (grows with the records it holds)"
    return Result(NAME, [row], {"alone": alone, "soak": soak})
