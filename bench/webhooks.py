"""webhooks: outbound webhook deliveries (docs/webhooks.md) to a trivial receiver on loopback.

Two figures, each with a baseline from the same run:

- **throughput**: interactions of many customers are recorded (untimed), an endpoint for
  ``interaction.received.v1`` is created, and a replay from the first position queues them all
  at once; the figure is deliveries per second from the replay request until the receiver has
  every one. Baseline: the same receiver driven by a plain client with as many connections as
  the hub sends at once to one endpoint (``HUB_WEBHOOKS__MAX_IN_FLIGHT``), posting an envelope
  of the same size, for a fixed time. Ratio: hub / plain client.
- **latency**: interactions posted one by one at a steady 200 a second; the figure is the time
  from the event's ``recorded_at`` to its arrival at the receiver (p50/p99; same clock, same
  machine). Baseline: a plain client's POST round trip to the receiver at the same rate.
  Ratio: p99 / p99.

``hub serve`` runs with ``HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true`` (the receiver is on
loopback); the receiver is bench.webhook_receiver in a process of its own.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import Connection, HttpError, encode_request, install_uvloop, post_batch
from bench.harness import ServerProcess, auth_headers, free_port, hub_server
from bench.workload import Workload

NAME = "webhooks"
MAX_IN_FLIGHT = 16
RATE = 200.0
#: A second, lower steady rate: the latency when deliveries keep up (see docs/performance.md).
LOW_RATE = 40.0
TARGET_P99_MS = 1_000.0
#: Interactions replayed for the throughput figure, and seconds of steady load, by scale.
SIZES = {"quick": (500, 3.0), "default": (5_000, 15.0), "full": (20_000, 30.0)}


def receiver_server(workdir: Path) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        [sys.executable, "-m", "bench.webhook_receiver", "--port", str(port)],
        port=port,
        log_path=workdir / f"receiver-{port}.log",
    )


async def _stats(receiver: Connection) -> dict[str, Any]:
    return dict(await receiver.get_json("/stats"))


async def _wait_received(receiver: Connection, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = await _stats(receiver)
        if stats["unique"] >= count:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"receiver has {stats['unique']} of {count} after {timeout}s")
        await asyncio.sleep(0.02)


async def plain_rate(port: int, body: bytes, seconds: float) -> float:
    """Requests per second of ``MAX_IN_FLIGHT`` closed-loop connections posting ``body``."""
    raw = encode_request("POST", "/hook", port, body, {"webhook-id": "msg_baseline"})
    done = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = await Connection(port).open()
        try:
            while time.perf_counter() < stop_at:
                status, _ = await conn.send_raw(raw)
                if status == 204:
                    done += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(MAX_IN_FLIGHT)))
    return done / (time.perf_counter() - started)


async def _paced(seconds: float, send: Any, rate: float = RATE) -> int:
    """Call ``send()`` (a coroutine function) ``rate`` times a second for ``seconds``, each in
    its own task, on schedule whatever the answers take; returns how many were sent."""
    interval = 1 / rate
    start = time.perf_counter()
    tasks = []
    n = 0
    while (due := start + n * interval) < start + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send()))
        n += 1
    await asyncio.gather(*tasks)
    return n


async def plain_latencies(port: int, body: bytes, seconds: float) -> list[float]:
    """Round trips (ms) of POSTs to the receiver at RATE a second, from a pool of connections."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await Connection(port).open())
    latencies: list[float] = []

    async def send() -> None:
        conn = await pool.get()
        sent = time.perf_counter()
        await conn.request_body("POST", "/hook", body)
        latencies.append((time.perf_counter() - sent) * 1000)
        pool.put_nowait(conn)

    await _paced(seconds, send)
    while not pool.empty():
        await pool.get_nowait().close()
    return latencies


async def _measure(hub: ServerProcess, receiver: ServerProcess, scale: Scale) -> dict[str, Any]:
    replayed, seconds = SIZES.get(scale.name, SIZES["default"])
    workload = Workload(seed=17)
    api = await Connection(hub.port, auth_headers()).open()
    sink = await Connection(receiver.port).open()
    try:
        # untimed: the events to replay, from many customers (order per customer holds
        # deliveries of one customer back; these are spread)
        for _ in range(0, replayed, 500):
            await post_batch(api, [i | {"direction": "inbound"} for i in workload.batch(500)])
        status, body = await api.request(
            "POST",
            "/v1/webhooks",
            {
                "url": f"http://127.0.0.1:{receiver.port}/hook",
                "event_types": ["interaction.received.v1"],
                "description": "bench",
            },
        )
        if status != 201:
            raise HttpError(f"create webhook: {status} {body[:300]!r}")
        endpoint = orjson.loads(body)["id"]
        page = await api.get_json("/v1/events?limit=50")
        received = [e for e in page["events"] if e["type"] == "interaction.received.v1"]
        envelope = orjson.dumps(received[0])  # the baseline posts a body of the same size

        base_rate = await plain_rate(receiver.port, envelope, min(seconds, 10.0))
        await sink.request("POST", "/reset")

        started = time.perf_counter()
        status, body = await api.request(
            "POST", f"/v1/webhooks/{endpoint}/replay?from_position=1", None
        )
        if status != 202:
            raise HttpError(f"replay: {status} {body[:300]!r}")
        queued = orjson.loads(body)["queued"]
        await _wait_received(sink, queued, timeout=600)
        hub_rate = queued / (time.perf_counter() - started)
        print(f"  replayed {queued} at {hub_rate:,.0f}/s", file=sys.stderr, flush=True)

        # latency at a steady rate
        base_latencies = await plain_latencies(receiver.port, envelope, seconds)
        conns: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(16):
            conns.put_nowait(await Connection(hub.port, auth_headers()).open())

        async def ingest() -> None:
            conn = await conns.get()
            body = orjson.dumps(workload.interaction() | {"direction": "inbound"})
            answer, _ = await conn.request_body("POST", "/v1/interactions", body)
            if answer not in (200, 201, 202):
                raise HttpError(f"ingest: {answer}")
            conns.put_nowait(conn)

        steady = {}
        for rate in (RATE, LOW_RATE):
            await sink.request("POST", "/reset")
            sent = await _paced(seconds, ingest, rate)
            stats = await _wait_received(sink, sent, timeout=600)
            steady[rate] = (sent, stats["latencies_ms"])
            print(f"  {rate:.0f}/s: {sent} delivered", file=sys.stderr, flush=True)
        while not conns.empty():
            await conns.get_nowait().close()
        return {
            "replayed": queued,
            "hub_rate": hub_rate,
            "base_rate": base_rate,
            "steady_sent": steady[RATE][0],
            "latencies_ms": steady[RATE][1],
            "low_sent": steady[LOW_RATE][0],
            "low_latencies_ms": steady[LOW_RATE][1],
            "base_latencies_ms": base_latencies,
            "hub_cpu_seconds": hub.cpu_seconds(),
        }
    finally:
        await api.close()
        await sink.close()


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    with (
        receiver_server(workdir) as receiver,
        hub_server(
            workdir / "hub",
            WEBHOOKS__ALLOW_PRIVATE_NETWORKS="true",
            WEBHOOKS__MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
        ) as hub,
    ):
        raw = asyncio.run(_measure(hub, receiver, scale))
    lat, base = raw["latencies_ms"], raw["base_latencies_ms"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    rows = [
        Row(
            NAME,
            f"{raw['hub_rate']:,.0f} deliveries/s ({raw['replayed']:,} events replayed to one "
            f"endpoint, up to {MAX_IN_FLIGHT} in flight)",
            "-",
            f"the receiver from a plain client, {MAX_IN_FLIGHT} connections: "
            f"{raw['base_rate']:,.0f} req/s",
            raw["hub_rate"] / raw["base_rate"],
            "hub / plain client",
            None,
            raw["hub_rate"],
            "deliveries/s",
        ),
        Row(
            NAME,
            f"recorded to delivered p50 {p50:,.0f} / p99 {p99:,.0f} ms at a steady "
            f"{RATE:.0f} events/s ({raw['steady_sent']:,} events)",
            f"p99 <= {TARGET_P99_MS:,.0f} ms",
            f"a plain POST to the receiver at the same rate: p50 {b50:.1f} / p99 {b99:.1f} ms",
            p99 / b99 if b99 else None,
            "p99 / p99",
            p99 <= TARGET_P99_MS,
            p99,
            "ms",
        ),
    ]
    low = raw["low_latencies_ms"]
    rows.append(
        Row(
            NAME,
            f"recorded to delivered p50 {percentile(low, 50):,.0f} / p99 {percentile(low, 99):,.0f}"
            f" ms at a steady {LOW_RATE:.0f} events/s ({raw['low_sent']:,} events)",
            "-",
            f"the same plain POST: p99 {b99:.1f} ms",
            percentile(low, 99) / b99 if b99 else None,
            "p99 / p99",
            None,
            percentile(low, 99),
            "ms",
        )
    )
    return Result(NAME, rows, raw={k: v for k, v in raw.items() if "latencies" not in k})
