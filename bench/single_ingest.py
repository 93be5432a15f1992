"""single_ingest: POST /v1/interactions, one interaction a request, many connections at once.

A fixed number of keep-alive connections post back to back for a fixed time (closed loop);
the figure is successful requests per second. The client is one asyncio process with a lean
HTTP client (bench.client) so it leaves the server most of the machine.

Baseline, same run, same client and bodies: a trivial FastAPI endpoint that parses a similar
body and answers a small JSON (bench.baseline_app) under uvicorn in its own process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import (
    Connection,
    encode_request,
    install_uvloop,
    post_batch,
    wait_caught_up,
)
from bench.harness import ServerProcess, auth_headers, baseline_server, hub_server
from bench.workload import Workload

NAME = "single_ingest"
TARGET_RATIO = 0.5
WARMUP_SECONDS = 1.0


def interaction_requests(
    port: int, workload: Workload, headers: dict[str, str]
) -> Callable[[], bytes]:
    """POST /v1/interactions, one new interaction of ``workload`` a request."""

    def next_request() -> bytes:
        body = orjson.dumps(workload.interaction())
        return encode_request("POST", "/v1/interactions", port, body, headers)

    return next_request


async def closed_loop(
    port: int,
    next_request: Callable[[], bytes],
    connections: int,
    seconds: float,
    server: ServerProcess,
) -> dict[str, Any]:
    """``connections`` clients sending ``next_request()`` back to back for ``seconds`` (after a
    warm-up)."""
    ok = 0
    errors: dict[int, int] = {}
    latencies: list[float] = []
    measuring = False
    stop_at = time.perf_counter() + WARMUP_SECONDS + seconds

    async def client() -> None:
        nonlocal ok
        conn = await Connection(port).open()
        try:
            while time.perf_counter() < stop_at:
                raw = next_request()
                sent = time.perf_counter()
                status, _ = await conn.send_raw(raw)
                if measuring:
                    latencies.append(time.perf_counter() - sent)
                    if 200 <= status < 300:
                        ok += 1
                    else:
                        errors[status] = errors.get(status, 0) + 1
        finally:
            await conn.close()

    async def clock() -> tuple[float, float, float]:
        nonlocal measuring
        await asyncio.sleep(WARMUP_SECONDS)
        cpu_before = server.cpu_seconds()
        measuring = True
        started = time.perf_counter()
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        measuring = False
        return started, time.perf_counter(), server.cpu_seconds() - cpu_before

    timing = asyncio.create_task(clock())
    await asyncio.gather(*(client() for _ in range(connections)))
    started, ended, cpu = await timing
    elapsed = ended - started
    return {
        "requests": ok,
        "errors": errors,
        "seconds": elapsed,
        "rate": ok / elapsed,
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p99_ms": percentile(latencies, 99) * 1000,
        "server_cpu_share": cpu / elapsed,  # 1.0 = one core busy the whole time
    }


async def _seed(port: int, workload: Workload, customers: int) -> None:
    conn = await Connection(port, auth_headers()).open()
    try:
        for start in range(0, customers, 1000):
            await post_batch(conn, workload.seed_customers(min(1000, customers - start)))
        await wait_caught_up(conn, timeout=120)
    finally:
        await conn.close()


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    connections = scale.single_connections
    with baseline_server(workdir) as server:
        requests = interaction_requests(server.port, Workload(seed=21), {})
        baseline = asyncio.run(
            closed_loop(server.port, requests, connections, scale.single_seconds, server)
        )
    workload = Workload(seed=22, new_share=0.1)
    with hub_server(workdir / "hub") as server:
        asyncio.run(_seed(server.port, workload, scale.seed_customers))
        requests = interaction_requests(server.port, workload, auth_headers())
        hub = asyncio.run(
            closed_loop(server.port, requests, connections, scale.single_seconds, server)
        )
    ratio = hub["rate"] / baseline["rate"]
    row = Row(
        benchmark=NAME,
        figure=f"{hub['rate']:,.0f} req/s ({connections} connections, "
        f"p99 {hub['latency_p99_ms']:.0f} ms, server CPU {hub['server_cpu_share']:.0%}"
        + (f", errors {hub['errors']}" if hub["errors"] else "")
        + ")",
        target=f"ratio >= {TARGET_RATIO}",
        baseline=f"trivial FastAPI POST: {baseline['rate']:,.0f} req/s "
        f"(server CPU {baseline['server_cpu_share']:.0%})",
        ratio=ratio,
        ratio_label="hub / trivial",
        met=ratio >= TARGET_RATIO and not hub["errors"],
        value=hub["rate"],
        unit="req/s",
    )
    return Result(NAME, [row], {"hub": hub, "baseline": baseline, "connections": connections})
