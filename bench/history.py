"""history: GET /v1/customers/{id}/timeline?as_of=...&limit=50, the timeline as the hub knew
it at a moment (docs/history.md), for random customers at random moments of the recording.

The dataset is timeline_read's (customers, messages spread over 30 days, recorded in-process
and projected, untimed), plus one customer with many messages (a third outbound, each with a
delivery report), recorded last. ``hub serve`` answers; requests are sequential on one
keep-alive connection.

Baseline, same run, same connection: today's timeline of the same customer (no as_of),
interleaved request by request with the as_of reads so both see the same machine noise.
Ratio: as_of p99 / timeline p99, for the random customers and for the big one.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import Connection, HttpError, encode_request, install_uvloop
from bench.harness import auth_headers, hub_server
from bench.workload import build_dataset

NAME = "history"
LIMIT = 50
WARMUP = 100
#: The big customer: a tenth of the dataset's messages, at most 10,000.
BIG_MAX = 10_000


@dataclass(frozen=True)
class Window:
    """Customers and the wall-clock span in which their events were recorded."""

    customers: list[UUID]
    start: datetime
    end: datetime


def record_big_customer(data_dir: Path, messages: int) -> Window:
    """One phone customer with ``messages`` messages (every third outbound and delivered),
    recorded in batches of 1,000 through the runtime, then projected (untimed)."""
    from hub.config import Settings
    from hub.embedded.follower import LogFollower
    from hub.events import InboundInteraction
    from hub.runtime import Runtime

    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    start = datetime.now(UTC)
    first = start - timedelta(days=60)
    customer: UUID | None = None
    try:
        for offset in range(0, messages, 1000):
            batch = [
                InboundInteraction(
                    channel="sms",
                    direction="outbound" if n % 3 == 2 else "inbound",
                    address="phone:+4915100000042",
                    provider_message_id=f"big-{n}",
                    occurred_at=first + timedelta(minutes=5 * n),
                    text=f"message {n} of the big customer's story",
                )
                for n in range(offset, min(offset + 1000, messages))
            ]
            results = runtime.record_now(batch)
            if customer is None:  # moments from here on know the customer
                customer, start = results[0].customer_id, datetime.now(UTC)
            for item, result in zip(batch, results, strict=True):
                if item.direction == "outbound":
                    runtime.commands.update_delivery(
                        result.message_id, "delivered", item.occurred_at + timedelta(seconds=3)
                    )
        end = datetime.now(UTC)
        LogFollower(runtime.store, runtime.views, batch_size=5000).catch_up()
    finally:
        runtime.stop()
    assert customer is not None
    return Window([customer], start, end)


async def measure(port: int, window: Window, requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    headers = auth_headers()
    conn = await Connection(port).open()
    as_of: list[float] = []
    today: list[float] = []
    items = unknown = pages = 0
    span = (window.end - window.start).total_seconds()
    try:
        while pages < WARMUP + requests:
            customer = rng.choice(window.customers)
            moment = window.start + timedelta(seconds=rng.uniform(0, span))
            path = f"/v1/customers/{customer}/timeline?limit={LIMIT}"
            then = f"{path}&as_of={quote(moment.isoformat())}"
            took, status, body = await _timed(
                conn, encode_request("GET", then, port, None, headers)
            )
            if status == 404:  # the customer had not appeared by then: not a page
                unknown += 1
                continue
            if status != 200:
                raise HttpError(f"as_of {customer}: {status} {body[:200]!r}")
            base_took, base_status, _ = await _timed(
                conn, encode_request("GET", path, port, None, headers)
            )
            if base_status != 200:
                raise HttpError(f"timeline {customer}: {base_status}")
            if pages >= WARMUP:
                as_of.append(took)
                today.append(base_took)
                items += len(orjson.loads(body)["items"])
            pages += 1
    finally:
        await conn.close()
    return {
        "as_of": _summary(as_of),
        "timeline": _summary(today),
        "items_per_page": items / len(as_of),
        "not_known_yet": unknown,  # moments before the customer appeared (404, left out)
    }


async def _timed(conn: Connection, raw: bytes) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    status, body = await conn.send_raw(raw)
    return time.perf_counter() - started, status, body


def _summary(values: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 95, 99)} | {
        "max_ms": max(values) * 1000,
        "requests": len(values),
    }


def _row(label: str, result: dict[str, Any]) -> Row:
    then, today = result["as_of"], result["timeline"]
    return Row(
        benchmark=NAME,
        figure=f"timeline as_of, {label}: p50 {then['p50_ms']:.1f} / p95 {then['p95_ms']:.1f} "
        f"/ p99 {then['p99_ms']:.1f} ms ({then['requests']:,} sequential reads, "
        f"{result['items_per_page']:.0f} items/page)",
        target="none (a page of an old timeline costs a few of today's)",
        baseline=f"today's timeline, same customers: p50 {today['p50_ms']:.1f} / "
        f"p99 {today['p99_ms']:.1f} ms",
        ratio=then["p99_ms"] / today["p99_ms"],
        ratio_label="as_of p99 / timeline p99",
        met=None,
        value=then["p99_ms"],
        unit="ms",
    )


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    data_dir = workdir / "data"
    started = datetime.now(UTC)
    dataset = build_dataset(
        data_dir, customers=scale.timeline_customers, messages=scale.timeline_messages
    )
    everyone = Window(dataset.customer_ids, started, datetime.now(UTC))
    big_size = min(BIG_MAX, max(100, scale.timeline_messages // 10))
    big = record_big_customer(data_dir, big_size)
    requests = scale.timeline_requests
    with hub_server(data_dir) as server:
        result = {
            "random": asyncio.run(measure(server.port, everyone, requests, 43)),
            "big": asyncio.run(measure(server.port, big, max(100, requests // 3), 47)),
        }
        result["server_rss_mib"] = server.rss_kib() / 1024
    rows = [
        _row(
            f"random customers ({len(dataset.customer_ids):,} customers, "
            f"{dataset.interactions:,} messages)",
            result["random"],
        ),
        _row(f"one customer of {big_size:,} messages", result["big"]),
    ]
    result["dataset"] = {
        "customers": len(dataset.customer_ids),
        "interactions": dataset.interactions,
        "big_customer_messages": big_size,
        "record_seconds": dataset.record_seconds,
        "project_seconds": dataset.project_seconds,
    }
    return Result(NAME, rows, result)
