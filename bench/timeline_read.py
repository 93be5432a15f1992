"""timeline_read: GET /v1/customers/{id}/timeline?limit=50 for random customers.

The dataset (customers, messages spread over 30 days) is recorded in-process through the
runtime in batches of 1,000 and projected (untimed), then served by ``hub serve``. Requests are
sequential on one keep-alive connection; the figure is the latency distribution.

Baseline, same run, same connection: GET /healthz, interleaved request by request with the
timeline reads so both see the same machine noise. Ratio: p99 / p99.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import Connection, HttpError, encode_request, install_uvloop
from bench.harness import auth_headers, hub_server
from bench.workload import build_dataset

NAME = "timeline_read"
LIMIT = 50
WARMUP = 200
TARGET_P99_MS = 10.0


async def measure(port: int, customers: list[UUID], requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    headers = auth_headers()
    conn = await Connection(port).open()
    health = encode_request("GET", "/healthz", port, None, headers)
    timeline: list[float] = []
    healthz: list[float] = []
    items = 0
    try:
        for index in range(WARMUP + requests):
            customer = rng.choice(customers)
            raw = encode_request(
                "GET", f"/v1/customers/{customer}/timeline?limit={LIMIT}", port, None, headers
            )
            started = time.perf_counter()
            status, body = await conn.send_raw(raw)
            took = time.perf_counter() - started
            if status != 200:
                raise HttpError(f"timeline {customer}: {status} {body[:200]!r}")
            started = time.perf_counter()
            health_status, _ = await conn.send_raw(health)
            health_took = time.perf_counter() - started
            if health_status != 200:
                raise HttpError(f"healthz: {health_status}")
            if index >= WARMUP:
                timeline.append(took)
                healthz.append(health_took)
                items += len(orjson.loads(body)["items"])
    finally:
        await conn.close()

    def summary(values: list[float]) -> dict[str, float]:
        return {f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 95, 99)} | {
            "max_ms": max(values) * 1000,
            "requests": len(values),
        }

    return {
        "timeline": summary(timeline),
        "healthz": summary(healthz),
        "items_per_page": items / len(timeline),
    }


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    dataset = build_dataset(
        workdir / "data", customers=scale.timeline_customers, messages=scale.timeline_messages
    )
    with hub_server(dataset.data_dir) as server:
        result = asyncio.run(
            measure(server.port, dataset.customer_ids, scale.timeline_requests, 41)
        )
        result["server_rss_mib"] = server.rss_kib() / 1024
    tl, hz = result["timeline"], result["healthz"]
    ratio = tl["p99_ms"] / hz["p99_ms"]
    row = Row(
        benchmark=NAME,
        figure=f"p50 {tl['p50_ms']:.1f} / p95 {tl['p95_ms']:.1f} / p99 {tl['p99_ms']:.1f} ms "
        f"({tl['requests']:,} sequential reads, {len(dataset.customer_ids):,} customers, "
        f"{dataset.interactions:,} messages, {result['items_per_page']:.0f} items/page)",
        target=f"p99 <= {TARGET_P99_MS:.0f} ms",
        baseline=f"GET /healthz: p50 {hz['p50_ms']:.2f} / p99 {hz['p99_ms']:.2f} ms",
        ratio=ratio,
        ratio_label="p99 / p99",
        met=tl["p99_ms"] <= TARGET_P99_MS,
        value=tl["p99_ms"],
        unit="ms",
    )
    result["dataset"] = {
        "customers": len(dataset.customer_ids),
        "interactions": dataset.interactions,
        "stored_events": dataset.stored_events,
        "record_seconds": dataset.record_seconds,
        "project_seconds": dataset.project_seconds,
    }
    return Result(NAME, [row], result)
