"""segments: a page of a segment's customers, ``GET /v1/segments/{id}/customers?limit=50``.

The dataset: ``CUSTOMERS`` customers written straight into the view tables (the directory's
customers and addresses, the tag index, conversations; bulk inserts, untimed: recording
100,000 first contacts through the store would take minutes and measure nothing of segments),
each with a phone, an email or both, tags, a last contact spread over a year and an open
conversation for some. Two segments are defined through the API of ``hub serve``:

- ``most``: tag ``customer`` + reachable by SMS + last contact within 90 days (2 in 3);
- ``rare``: tag ``rare`` + reachable by SMS (about 1 in 100).

Each is read, sequentially on one keep-alive connection, as its first page and as a deep page
(page 20, or the last when there are fewer); every answer carries the segment's total. The
API reuses a total while the views stand still, so a second set of rows measures what
recounting costs (in-process, on the same views). Baseline, same run,
interleaved request by request: ``GET /healthz``. Ratio: p99 / p99. Target: < 50 ms a page.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import Connection, HttpError, encode_request, install_uvloop
from bench.harness import auth_headers, hub_server

NAME = "segments"
TARGET_MS = 50.0
LIMIT = 50
WARMUP = 20
DEEP_PAGE = 20
#: Customers per scale (the issue states the target for 100,000 at the default scale).
CUSTOMERS = {"quick": 2_000, "default": 100_000, "full": 100_000}
REQUESTS = {"quick": 30, "default": 300, "full": 1_000}
SEGMENTS: dict[str, dict[str, Any]] = {
    "most": {
        "all": [
            {"tag": "customer"},
            {"channel": "sms"},
            {"last_contact": {"within_days": 90}},
        ]
    },
    "rare": {"all": [{"tag": "rare"}, {"channel": "sms"}]},
}


def build(data_dir: Path, customers: int, seed: int = 16) -> float:
    """Write the dataset into the views of a new hub at ``data_dir``; seconds it took."""
    from hub.config import Settings
    from hub.domain.ids import uuid7
    from hub.projections.conversations import conversations
    from hub.projections.directory import customers as directory
    from hub.projections.directory import identities
    from hub.projections.segments import tag_index
    from hub.runtime import Runtime

    rng = random.Random(seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    try:
        rows: dict[str, list[dict[str, Any]]] = {"c": [], "i": [], "t": [], "v": []}
        first = now - timedelta(days=3 * 365)
        for n in range(customers):
            created = first + timedelta(days=3 * 365) * n / customers
            cid = uuid7(created, seed=n.to_bytes(8, "big"))
            # Most wrote recently: about 3 in 4 within the last 90 days.
            last = max(created, now - timedelta(days=rng.random() ** 5 * 365))
            rows["c"].append(
                {
                    "customer_id": cid,
                    "display_name": f"Customer {n}",
                    "created_at": created,
                    "last_activity_at": last,
                    "search_text": f"customer {n}",
                }
            )
            kinds = rng.choices([("phone",), ("email",), ("phone", "email")], [7, 1, 2])[0]
            for kind in kinds:
                value = f"+1555{n:07d}" if kind == "phone" else f"c{n}@example.org"
                rows["i"].append(
                    {
                        "address": f"{kind}:{value}",
                        "customer_id": cid,
                        "kind": kind,
                        "verified": False,
                        "linked_at": created,
                    }
                )
            tags = ["customer"] if rng.random() < 0.98 else []
            if rng.random() < 0.01:
                tags.append("rare")
            rows["t"] += [{"customer_id": cid, "tag": t} for t in tags]
            if rng.random() < 0.2:
                rows["v"].append(
                    {
                        "conversation_id": uuid7(last, seed=b"c" + n.to_bytes(8, "big")),
                        "customer_id": cid,
                        "channel": "sms" if "phone" in kinds else "email",
                        "address": None,
                        "subject": None,
                        "status": "open",
                        "assignee": None,
                        "opened_at": last,
                        "last_activity_at": last,
                        "message_count": 1,
                    }
                )
        with runtime.views.engine.begin() as conn:
            for table, key in (
                (directory, "c"),
                (identities, "i"),
                (tag_index, "t"),
                (conversations, "v"),
            ):
                for start in range(0, len(rows[key]), 10_000):
                    conn.execute(table.insert(), rows[key][start : start + 10_000])
    finally:
        runtime.stop()
    return time.perf_counter() - started


def count_costs(data_dir: Path, runs: int) -> dict[str, dict[str, float]]:
    """What recounting each segment's total costs, in-process on the same views (the API
    reuses a total while the views stand still, so its pages above do not pay this)."""
    from hub.config import Settings
    from hub.events.segments import parse_filter
    from hub.projections.segment_filter import FilterContext, count
    from hub.store import open_store

    store = open_store(Settings(data_dir=data_dir))
    found: dict[str, dict[str, float]] = {}
    try:
        with store.views_engine.connect() as conn:
            for name, tree in SEGMENTS.items():
                parsed, ctx = parse_filter(tree), FilterContext(now=datetime.now(UTC))
                timings = []
                for _ in range(runs + 1):  # the first warms the cache of pages
                    started = time.perf_counter()
                    count(conn, parsed, ctx)
                    timings.append(time.perf_counter() - started)
                found[name] = _summary(timings[1:])
    finally:
        store.close()
    return found


def _summary(values: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 95, 99)} | {
        "max_ms": max(values) * 1000,
        "requests": len(values),
    }


async def _get(conn: Connection, raw: bytes) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    status, body = await conn.send_raw(raw)
    took = time.perf_counter() - started
    if status != 200:
        raise HttpError(f"{status} {body[:200]!r}")
    found: dict[str, Any] = orjson.loads(body) if body else {}
    return took, found


async def measure(port: int, requests: int) -> dict[str, Any]:
    headers = auth_headers()
    conn = await Connection(port).open()
    health = encode_request("GET", "/healthz", port, None, headers)
    result: dict[str, Any] = {}
    try:
        for name, tree in SEGMENTS.items():
            body = orjson.dumps({"name": f"bench {name}", "filter": tree})
            raw = encode_request("POST", "/v1/segments", port, body, headers)
            status, answer = await conn.send_raw(raw)
            if status != 201:
                raise HttpError(f"define {name}: {status} {answer[:200]!r}")
            segment_id = orjson.loads(answer)["segment_id"]
            path = f"/v1/segments/{segment_id}/customers?limit={LIMIT}"
            cursor, depth = None, 1
            while depth < DEEP_PAGE:  # the cursor of a deep page
                suffix = f"&cursor={quote(cursor)}" if cursor else ""
                raw_page = encode_request("GET", path + suffix, port, None, headers)
                _, found = await _get(conn, raw_page)
                if not found["next_cursor"]:
                    break
                cursor, depth = found["next_cursor"], depth + 1
            deep = path + (f"&cursor={quote(cursor)}" if cursor else "")
            pages = {
                "first": encode_request("GET", path, port, None, headers),
                "deep": encode_request("GET", deep, port, None, headers),
            }
            for which, raw_page in pages.items():
                timings: list[float] = []
                healthz: list[float] = []
                total = 0
                for index in range(WARMUP + requests):
                    took, found = await _get(conn, raw_page)
                    health_took, _ = await _get(conn, health)
                    if index >= WARMUP:
                        timings.append(took)
                        healthz.append(health_took)
                        total = found["total"]
                result[f"{name}/{which}"] = {
                    "page": _summary(timings),
                    "healthz": _summary(healthz),
                    "total": total,
                    "page_number": depth if which == "deep" else 1,
                }
    finally:
        await conn.close()
    return result


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    customers = CUSTOMERS[scale.name]
    data_dir = workdir / "data"
    build_seconds = build(data_dir, customers)
    with hub_server(data_dir) as server:
        result = asyncio.run(measure(server.port, REQUESTS[scale.name]))
        result["server_rss_mib"] = server.rss_kib() / 1024
    result["dataset"] = {"customers": customers, "build_seconds": build_seconds}
    result["recount"] = count_costs(data_dir, 10)
    rows = []
    for key, figures in result.items():
        if "/" not in key:
            continue
        page, hz = figures["page"], figures["healthz"]
        rows.append(
            Row(
                benchmark=f"{NAME} ({key} page, #{figures['page_number']})",
                figure=f"p50 {page['p50_ms']:.1f} / p99 {page['p99_ms']:.1f} ms "
                f"({page['requests']:,} reads of {LIMIT}, total {figures['total']:,} "
                f"of {customers:,} customers)",
                target=f"p99 < {TARGET_MS:.0f} ms",
                baseline=f"GET /healthz: p50 {hz['p50_ms']:.2f} / p99 {hz['p99_ms']:.2f} ms",
                ratio=page["p99_ms"] / hz["p99_ms"],
                ratio_label="p99 / p99",
                met=page["p99_ms"] < TARGET_MS,
                value=page["p99_ms"],
                unit="ms",
            )
        )
    for name, figures in result["recount"].items():
        first_p50 = result[f"{name}/first"]["page"]["p50_ms"]
        rows.append(
            Row(
                benchmark=f"{NAME} ({name}: total recounted)",
                figure=f"p50 {figures['p50_ms']:.1f} / max {figures['max_ms']:.1f} ms "
                f"(in-process, {figures['requests']:,} counts)",
                target="none (a total is reused while the views stand still)",
                baseline=f"its first page above: p50 {first_p50:.1f} ms",
                ratio=figures["p50_ms"] / first_p50,
                ratio_label="p50 / p50",
                met=None,
                value=figures["p50_ms"],
                unit="ms",
            )
        )
    return Result(NAME, rows, result)
