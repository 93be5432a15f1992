"""batch_ingest: POST /v1/interactions/batch, 1,000 interactions a request, to ``hub serve``.

The clock runs from the first request until /readyz reports ``lag`` 0, i.e. until every
interaction is recorded AND applied to the timeline. Two connections post, so the server
always has the next batch waiting (a connector with a little pipelining).

Baseline, same run: eventsourcing's SQLite recorder inserting 1,000 pre-built ~400-byte
StoredEvents per call, in-process (``store.app.recorder.insert_events``): the raw write path
under everything the hub does.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
from eventsourcing.persistence import StoredEvent

from bench import Result, Row, Scale
from bench.client import (
    Connection,
    HttpError,
    install_uvloop,
    post_batch,
    post_encoded_batch,
    wait_caught_up,
)
from bench.harness import auth_headers, hub_server
from bench.workload import Workload

NAME = "batch_ingest"
BATCH = 1000
CONNECTIONS = 2
TARGET = 5000.0
RAW_MIN_CALLS = 50  # the raw inserts are fast: enough calls for a steady figure


def raw_insert_rate(data_dir: Path, calls: int) -> dict[str, float]:
    """Events/s of the bare recorder: ``calls`` calls of ``BATCH`` stored events each, each
    call timed on its own (building the events is not timed)."""
    from hub.config import Settings
    from hub.store import open_store

    store = open_store(Settings(data_dir=data_dir))
    elapsed = 0.0
    try:
        recorder = store.app.recorder
        recorder.insert_events(_stored_events(10))  # open the connection, untimed
        for _ in range(calls):
            events = _stored_events(BATCH)
            started = time.perf_counter()
            recorder.insert_events(events)
            elapsed += time.perf_counter() - started
    finally:
        store.close()
    return {"events": calls * BATCH, "seconds": elapsed, "rate": calls * BATCH / elapsed}


def _stored_events(count: int) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=uuid4(),
            originator_version=1,
            topic="hub.domain.model:Message.Recorded",
            state=os.urandom(200).hex().encode(),  # 400 bytes
        )
        for _ in range(count)
    ]


async def _hub_rate(port: int, scale: Scale, workload: Workload) -> dict[str, Any]:
    headers = auth_headers()
    control = await Connection(port, headers).open()
    try:
        for start in range(0, scale.seed_customers, BATCH):  # returning customers, untimed
            size = min(BATCH, scale.seed_customers - start)
            await post_batch(control, workload.seed_customers(size))
        await wait_caught_up(control, timeout=120)
        bodies = [
            orjson.dumps({"interactions": workload.batch(BATCH)})
            for _ in range(scale.batch_batches)
        ]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        recorded = 0
        request_seconds: list[float] = []

        async def poster() -> None:
            nonlocal recorded
            conn = await Connection(port, headers).open()
            try:
                while not queue.empty():
                    outcome = await post_encoded_batch(conn, queue.get_nowait(), request_seconds)
                    if outcome["recorded"] != BATCH:
                        raise HttpError(f"batch recorded {outcome['recorded']} of {BATCH}")
                    recorded += outcome["recorded"]
            finally:
                await conn.close()

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(CONNECTIONS)))
        posted = time.perf_counter()
        visible = await wait_caught_up(control, timeout=600, interval=0.005)
    finally:
        await control.close()
    elapsed = visible - started
    return {
        "interactions": recorded,
        "seconds": elapsed,
        "rate": recorded / elapsed,
        "recorded_rate": recorded / (posted - started),
        "projection_tail_seconds": visible - posted,
        "batch_request_seconds_mean": sum(request_seconds) / len(request_seconds),
        "body_bytes_mean": sum(len(b) for b in bodies) / len(bodies),
    }


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    raw = raw_insert_rate(workdir / "raw", max(scale.batch_batches, RAW_MIN_CALLS))
    data_dir = workdir / "hub"
    workload = Workload(seed=11, new_share=0.1)
    with hub_server(data_dir) as server:
        hub = asyncio.run(_hub_rate(server.port, scale, workload))
        hub["peak_rss_mib"] = server.peak_rss_kib() / 1024
    ratio = hub["rate"] / raw["rate"]
    row = Row(
        benchmark=NAME,
        figure=f"{hub['rate']:,.0f} interactions/s recorded and visible "
        f"({hub['interactions']:,} in batches of {BATCH:,}; writes alone "
        f"{hub['recorded_rate']:,.0f}/s, timeline {hub['projection_tail_seconds']:.2f} s behind)",
        target=f">= {TARGET:,.0f}/s",
        baseline=f"raw recorder insert_events, {BATCH:,}/call: {raw['rate']:,.0f} events/s",
        ratio=ratio,
        ratio_label="hub / raw",
        met=hub["rate"] >= TARGET,
        value=hub["rate"],
        unit="interactions/s",
    )
    return Result(NAME, [row], {"hub": hub, "raw": raw})
