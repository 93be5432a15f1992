"""freshness: how soon a recorded interaction shows in its customer's timeline, under a steady
1,000 interactions/s, and how much memory the server holds meanwhile.

Load is open-loop (paced by the clock, not by the answers): 20 single POSTs every 20 ms when
the server sustains singles with headroom (a 2 s closed-loop probe must reach 1,300 req/s),
else one batch of 10 every 10 ms. The mode is named in the results.

For a sample of the interactions (``freshness_samples_per_second``), a watcher polls
GET /v1/customers/{id}/timeline every 5 ms from the moment the 202 (or the batch's 200)
arrives until the message is on the page: freshness = time seen - time acknowledged. (The SSE
stream is fed after the store write, before projection, so it cannot tell "visible".)

Baselines, same run: the acknowledgement latency of the same requests (p99, measured from the
time each was due, so queueing counts) for freshness; the server's RSS idle after start for the
peak RSS, which is sampled every 100 ms during the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import (
    Connection,
    HttpError,
    install_uvloop,
    post_batch,
    readyz,
    wait_caught_up,
)
from bench.harness import ServerProcess, auth_headers, hub_server
from bench.single_ingest import closed_loop, interaction_requests
from bench.workload import Workload

NAME = "freshness"
RATE = 1000  # interactions per second offered
SINGLES_HEADROOM = 1.3
POLL_SECONDS = 0.005
SAMPLE_TIMEOUT = 10.0
TARGET_P99_MS = 200.0
TARGET_RSS_MIB = 400.0
LAG_INTERVAL = 0.5  # seconds between /readyz samples of the projection lag


@dataclass(frozen=True)
class Mode:
    name: str
    interval: float  # seconds between ticks
    per_tick: int  # requests per tick
    per_request: int  # interactions per request
    connections: int

    @property
    def label(self) -> str:
        if self.per_request == 1:
            return f"singles, {self.per_tick} every {self.interval * 1000:.0f} ms"
        return f"batches of {self.per_request} every {self.interval * 1000:.0f} ms"


SINGLES = Mode("singles", 0.020, 20, 1, 64)
BATCHES = Mode("batches", 0.010, 1, 10, 16)


class _Pool:
    """Keep-alive connections handed out one request at a time, opened on demand."""

    def __init__(self, port: int, size: int, headers: dict[str, str]) -> None:
        self._port, self._headers = port, headers
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        self._slots = asyncio.Semaphore(size)
        self._all: list[Connection] = []

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        async with self._slots:
            conn = self._idle.get_nowait() if not self._idle.empty() else None
            if conn is None:
                conn = await Connection(self._port, self._headers).open()
                self._all.append(conn)
            try:
                answer = await conn.request_body(method, path, body)
            except BaseException:
                await conn.close()
                raise
            self._idle.put_nowait(conn)
            return answer

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()


#: A sample's watcher: polls until the first interaction of a sampled request is visible,
#: given that request's answer for it (``customer_id``, ``message_id``...) and when it was
#: acknowledged; returns when it was seen, None when it gave up (times on ``perf_counter``).
Watch = Callable[[dict[str, Any], float], Awaitable[float | None]]


async def poll_visible(
    pool: _Pool,
    path: str,
    acked: float,
    *,
    visible: Callable[[bytes], bool],
    timeout: float,
    pause: Callable[[float], float],
) -> float | None:
    """GET ``path`` until it answers 200 with a body that is ``visible`` (404: not yet). Returns
    when it was seen; None once more than ``timeout`` s have passed since ``acked``. Polls start
    ``pause(age)`` s apart, age being the time since ``acked``."""
    while True:
        polled = time.perf_counter()
        status, body = await pool.request("GET", path, None)
        seen = time.perf_counter()
        if status == 200 and visible(body):
            return seen
        if status not in (200, 404):
            raise HttpError(f"GET {path}: {status} {body[:200]!r}")
        age = seen - acked
        if age > timeout:
            return None
        await asyncio.sleep(max(0.0, polled + pause(age) - time.perf_counter()))


class OpenLoop:
    """Open-loop load, paced by the clock and not by the answers: ``mode.per_tick`` requests
    of ``mode.per_request`` interactions every ``mode.interval`` s through ``senders``. The
    first request of a tick in every ``1 / (samples_per_second * interval)`` is sampled:
    ``watch`` follows the first interaction of its answer from the moment it arrived."""

    def __init__(self, senders: _Pool, mode: Mode, watch: Watch) -> None:
        self.senders, self.mode, self.watch = senders, mode, watch
        self.acks: list[float] = []  # acknowledgement latency, from when each request was due
        self.fresh: list[float] = []  # seen - acknowledged of the samples
        self.timeouts = 0
        self.failures: dict[str, int] = {}
        self.interactions = 0  # acknowledged
        self.offered = 0
        self.last_ack = self.started = self.offered_until = self.drained = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(
        self, workload: Workload, seconds: float, samples_per_second: float, drain_timeout: float
    ) -> None:
        """Offer the load for ``seconds``, then wait up to ``drain_timeout`` s for the answers
        and the samples (cancelled after that)."""
        mode = self.mode
        ticks_per_sample = max(1, round(1 / (samples_per_second * mode.interval)))
        self.started = started = time.perf_counter()
        ticks = round(seconds / mode.interval)
        for tick in range(ticks):
            due = started + tick * mode.interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for k in range(mode.per_tick):
                if mode.per_request == 1:
                    body = orjson.dumps(workload.interaction())
                else:
                    body = orjson.dumps({"interactions": workload.batch(mode.per_request)})
                self._spawn(self._send(body, due, sample=k == 0 and tick % ticks_per_sample == 0))
        self.offered = ticks * mode.per_tick * mode.per_request
        self.offered_until = time.perf_counter()
        # Bounded drain: senders first, then the watchers they started.
        drain_deadline = self.offered_until + drain_timeout
        while self._tasks and time.perf_counter() < drain_deadline:
            await asyncio.wait(
                set(self._tasks), timeout=max(0.0, drain_deadline - time.perf_counter())
            )
        for task in list(self._tasks):
            task.cancel()
        self.drained = time.perf_counter()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, body: bytes, due: float, sample: bool) -> None:
        mode = self.mode
        path = "/v1/interactions" if mode.per_request == 1 else "/v1/interactions/batch"
        try:
            status, answer = await self.senders.request("POST", path, body)
        except (HttpError, OSError) as exc:
            self.failures[type(exc).__name__] = self.failures.get(type(exc).__name__, 0) + 1
            return
        acked = time.perf_counter()
        if not 200 <= status < 300:
            self.failures[str(status)] = self.failures.get(str(status), 0) + 1
            return
        self.acks.append(acked - due)
        self.last_ack = max(self.last_ack, acked)
        self.interactions += mode.per_request
        if sample:
            outcome = orjson.loads(answer)
            first = outcome if mode.per_request == 1 else outcome["results"][0]
            self._spawn(self._sample(first, acked))

    async def _sample(self, first: dict[str, Any], acked: float) -> None:
        seen = await self.watch(first, acked)
        if seen is None:
            self.timeouts += 1
        else:
            self.fresh.append(seen - acked)

    def summary(self, seconds: float) -> dict[str, Any]:
        """The figures of a run offered for ``seconds``."""
        elapsed = max(self.last_ack, self.started + seconds) - self.started  # to the last ack
        return {
            "mode": self.mode.name,
            "mode_label": self.mode.label,
            "offered_interactions": self.offered,
            "unacknowledged": self.offered - self.interactions,
            "achieved_rate": self.interactions / elapsed,
            "interactions": self.interactions,
            "seconds": elapsed,
            "drain_seconds": self.drained - self.offered_until,
            "failures": self.failures,
            "samples": len(self.fresh),
            "sample_timeouts": self.timeouts,
            "fresh_p50_ms": percentile(self.fresh, 50) * 1000,
            "fresh_p99_ms": percentile(self.fresh, 99) * 1000,
            "fresh_max_ms": max(self.fresh, default=float("nan")) * 1000,
            "ack_p50_ms": percentile(self.acks, 50) * 1000,
            "ack_p99_ms": percentile(self.acks, 99) * 1000,
        }


async def _load(
    port: int,
    workload: Workload,
    mode: Mode,
    seconds: float,
    samples_per_second: float,
    server: ServerProcess,
) -> dict[str, Any]:
    headers = auth_headers()
    senders = _Pool(port, mode.connections, headers)
    watchers = _Pool(port, 32, headers)
    rss_peak = 0
    done = asyncio.Event()

    async def watch(first: dict[str, Any], acked: float) -> float | None:
        message_id = first["message_id"]
        return await poll_visible(
            watchers,
            f"/v1/customers/{first['customer_id']}/timeline?limit=10",
            acked,
            visible=lambda body: any(
                i["item_id"] == message_id for i in orjson.loads(body)["items"]
            ),
            timeout=SAMPLE_TIMEOUT,
            pause=lambda _age: POLL_SECONDS,
        )

    async def sample_rss() -> None:
        nonlocal rss_peak
        while not done.is_set():
            rss_peak = max(rss_peak, server.rss_kib())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)

    lags: list[int] = []

    async def sample_lag() -> None:
        """Projection lag (store events not yet applied) from /readyz, for the diagnosis."""
        conn = await Connection(port, headers).open()
        try:
            while not done.is_set():
                status = await readyz(conn)
                if status is not None:
                    lags.append(int(status["lag"]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), LAG_INTERVAL)
        finally:
            await conn.close()

    sampler = asyncio.create_task(sample_rss())
    lag_sampler = asyncio.create_task(sample_lag())
    loop = OpenLoop(senders, mode, watch)
    await loop.run(workload, seconds, samples_per_second, drain_timeout=SAMPLE_TIMEOUT)
    done.set()
    await sampler
    await lag_sampler
    await senders.close()
    await watchers.close()
    return {
        **loop.summary(seconds),
        "offered_rate": RATE,
        "peak_rss_mib": rss_peak / 1024,
        "projection_lag_max": max(lags, default=0),
        "projection_lag_samples": lags,
    }


async def _prepare(port: int, workload: Workload, customers: int) -> None:
    conn = await Connection(port, auth_headers()).open()
    try:
        for start in range(0, customers, 1000):
            await post_batch(conn, workload.seed_customers(min(1000, customers - start)))
        await wait_caught_up(conn, timeout=120)
    finally:
        await conn.close()


async def _caught_up(port: int) -> None:
    conn = await Connection(port, auth_headers()).open()
    try:
        await wait_caught_up(conn, timeout=120)
    finally:
        await conn.close()


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    workload = Workload(seed=51, new_share=0.1)
    with hub_server(workdir / "hub") as server:
        time.sleep(1.0)
        idle_rss = server.rss_kib() / 1024
        asyncio.run(_prepare(server.port, workload, scale.seed_customers))
        requests = interaction_requests(server.port, workload, auth_headers())
        probe = asyncio.run(closed_loop(server.port, requests, 16, 2.0, server))
        mode = SINGLES if probe["rate"] >= RATE * SINGLES_HEADROOM else BATCHES
        asyncio.run(_caught_up(server.port))
        load = asyncio.run(
            _load(
                server.port,
                workload,
                mode,
                scale.freshness_seconds,
                scale.freshness_samples_per_second,
                server,
            )
        )
        load["vm_hwm_mib"] = server.peak_rss_kib() / 1024
    load["idle_rss_mib"] = idle_rss
    load["probe_single_rate"] = probe["rate"]
    problems = []
    if load["sample_timeouts"]:
        problems.append(
            f"{load['sample_timeouts']} samples not visible within {SAMPLE_TIMEOUT:.0f} s"
        )
    if load["failures"]:
        problems.append(f"failures {load['failures']}")
    if load["achieved_rate"] < RATE * 0.95 or load["unacknowledged"]:
        behind = f"server fell behind: acknowledged {load['achieved_rate']:,.0f}/s"
        if load["unacknowledged"]:
            behind += f", {load['unacknowledged']:,} never acknowledged"
        problems.append(behind)
    fresh_row = Row(
        benchmark=NAME,
        figure=f"visible in timeline p50 {load['fresh_p50_ms']:.0f} / p99 "
        f"{load['fresh_p99_ms']:.0f} ms ({load['samples']} samples; {mode.label}; "
        f"{RATE:,}/s offered; projection lag up to {load['projection_lag_max']:,} events"
        + ("; " + "; ".join(problems) if problems else "")
        + ")",
        target=f"p99 <= {TARGET_P99_MS:.0f} ms",
        baseline=f"202 acknowledgement p50 {load['ack_p50_ms']:.0f} / p99 "
        f"{load['ack_p99_ms']:.0f} ms",
        ratio=load["fresh_p99_ms"] / load["ack_p99_ms"],
        ratio_label="p99 / p99",
        met=load["fresh_p99_ms"] <= TARGET_P99_MS and not problems,
        value=load["fresh_p99_ms"],
        unit="ms",
    )
    rss_row = Row(
        benchmark=NAME,
        figure=f"peak RSS {load['peak_rss_mib']:,.0f} MiB during the load",
        target=f"<= {TARGET_RSS_MIB:.0f} MiB",
        baseline=f"same server idle after start: {idle_rss:,.0f} MiB",
        ratio=load["peak_rss_mib"] / idle_rss,
        ratio_label="peak / idle",
        met=load["peak_rss_mib"] <= TARGET_RSS_MIB,
        value=load["peak_rss_mib"],
        unit="MiB",
    )
    return Result(NAME, [fresh_row, rss_row], load)
