"""The load of bench.soak and bench.kafka_soak, from one asyncio client, and what it saw.

Offered open-loop (paced by the clock, never by the answers): new interactions one POST each,
due every 1 / ``Soak.ingest_rate`` s, a sample of them followed until visible; AGENTS agents,
each with a token and a console session of its own and the queue's live feed open, reading a
chat customer's timeline and replying in their conversation REPLIES_PER_AGENT times a second, a
sample of the replies followed until sent. Everything is counted by the minute of the run it
was due in; every 10 s the server's RSS and open files are sampled. bench.soak describes the
row.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import percentile
from bench.client import Connection, HttpError, post_batch, readyz
from bench.freshness import POLL_SECONDS, SAMPLE_TIMEOUT, _Pool, poll_visible
from bench.harness import (
    ProcessSample,
    auth_headers,
    cpu_seconds,
    proc_status_kib,
    process_tree,
    sample_processes,
)
from bench.workload import Workload
from tests.support.console import sign_in
from tests.support.processes import HOST

AGENTS = 10
REPLIES_PER_AGENT = 2.0  # a second, each after a timeline read
FRESH_SAMPLES_PER_SECOND = 2.0
REPLY_SAMPLE_EVERY = 10  # of an agent's replies: followed until sent (2 a second in all)
#: A sampled reply not sent this many times the sample timeout after its 202 is given up on
#: (counted apart; the replies not sent after the load are counted as errors).
REPLY_TIMEOUT_FACTOR = 3
SENT = frozenset({"sent", "delivered", "read"})
SAMPLE_INTERVAL = 10.0  # seconds between samples of the server's RSS and open files
PEAK_INTERVAL = 1.0  # seconds between samples of its RSS for the peak
WARMUP = 60.0  # growth counts from here (at most a third of the run)
INGEST_CONNECTIONS = 32
WATCH_CONNECTIONS = 16
POOL_SEED = 300  # chat conversations of seeded customers the agents start with
DRAIN_TIMEOUT = 30.0
#: An agent's timeline read and reply unanswered this long fail the row (a run at default
#: scale once waited for one for good: nothing else bounds the agents).
AGENT_TIMEOUT = 30.0
CATCH_UP_TIMEOUT = 120.0
REPLY = (
    b'{"text": "Thanks for waiting: it ships today, here is the tracking link.", "urgent": true}'
)
SESSION_COOKIE = "hub_session"
#: What counts as an error in the server's log (it runs at WARNING).
LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


# -- RSS and open files over time ------------------------------------------------------------


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx * 60


def growth(samples: list[ProcessSample], warmup: float, value: str) -> dict[str, float]:
    """``value`` (rss_kib or fds) at the end against the sample at ``warmup`` s: the growth
    (0.1: 10%) and the slope per minute of the samples from ``warmup`` on."""
    after = [s for s in samples if s.at >= warmup - SAMPLE_INTERVAL / 2]
    first, last = getattr(after[0], value), getattr(after[-1], value)
    scale = 1024 if value == "rss_kib" else 1  # RSS in MiB
    return {
        "at_warmup": first / scale,
        "last": last / scale,
        "peak": max(getattr(s, value) for s in samples) / scale,
        "growth": (last - first) / first if first else 0.0,
        "slope_per_minute": slope_per_minute([(s.at, getattr(s, value) / scale) for s in after]),
        "samples_after_warmup": len(after),
    }


# -- what the load is aimed at ------------------------------------------------------------------


@dataclass
class Hub:
    """The hub under test: where ingest and the API answer, which process to sample, how a
    recorded interaction is seen, and its log."""

    label: str  # "`hub serve`"
    ingest_port: int
    api_port: int
    pid: int
    log_paths: list[Path]
    #: From the acknowledgement of an interaction: the path to poll and when its answer shows it.
    visible: Callable[[dict[str, Any]], tuple[str, Callable[[bytes], bool]]]
    #: Seconds between polls of a sample of this age, and how long a sample may take.
    pause: Callable[[float], float] = lambda _age: POLL_SECONDS
    sample_timeout: float = SAMPLE_TIMEOUT
    #: Other processes whose CPU is reported by minute beside the hub's (the test broker).
    peers: dict[str, int] = field(default_factory=dict)


def on_timeline(outcome: dict[str, Any]) -> tuple[str, Callable[[bytes], bool]]:
    """bench.freshness's check: the message is on its customer's newest timeline page."""
    message_id = outcome["message_id"]
    return (
        f"/v1/customers/{outcome['customer_id']}/timeline?limit=20",
        lambda body: any(i["item_id"] == message_id for i in orjson.loads(body)["items"]),
    )


@dataclass
class Agent:
    name: str
    token: str
    cookie: str = ""  # the console session's, once signed in

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def create_agents(settings: Any, count: int) -> list[Agent]:
    """``count`` agent tokens in the hub's state database, as ``hub tokens create`` makes them
    (``settings``: the hub's configuration, a ``hub.config.Settings``)."""
    from hub.runtime import Runtime

    runtime = Runtime(settings)
    runtime.start()
    try:
        agents = []
        for n in range(count):
            name = f"agent-{n + 1}"
            _, token = runtime.tokens.create("agent", name)
            agents.append(Agent(name, token))
    finally:
        runtime.stop()
    return agents


def sign_in_agents(base_url: str, agents: list[Agent]) -> None:
    """A console session for each agent, signed in as a browser does."""
    for agent in agents:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            response = sign_in(client, agent.token)
            if response.status_code != 303:
                raise HttpError(f"sign-in of {agent.name}: {response.status_code}")
            agent.cookie = f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"


async def seed(hub: Hub, workload: Workload, customers: int) -> list[tuple[str, str]]:
    """The returning customers, caught up; (conversation id, customer id) of up to POOL_SEED
    of those who wrote on web chat from a chat address (the ones a reply reaches)."""
    conn = await Connection(hub.ingest_port, auth_headers()).open()
    control = await Connection(hub.api_port, auth_headers()).open()
    try:
        chat: list[str] = []
        for start in range(0, customers, 1000):
            items = workload.seed_customers(min(1000, customers - start))
            outcome = await post_batch(conn, items)
            chat += [
                result["message_id"]
                for item, result in zip(items, outcome["results"], strict=True)
                if _replyable(item)
            ]
        if not await caught_up(control, CATCH_UP_TIMEOUT):
            raise TimeoutError(f"the seeded customers not visible after {CATCH_UP_TIMEOUT:.0f} s")
        pool = []
        for message_id in chat[:POOL_SEED]:
            message = await control.get_json(f"/v1/messages/{message_id}")
            pool.append((message["conversation_id"], message["customer_id"]))
        return pool
    finally:
        await conn.close()
        await control.close()


def _replyable(body: dict[str, Any]) -> bool:
    """A web chat message from a chat address: the hub's defaults can reply to it."""
    return bool(body["channel"] == "chat" and body["address"].startswith("chat:"))


async def caught_up(conn: Connection, timeout: float) -> bool:
    """/readyz until ``lag`` is 0 (False after ``timeout`` s)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        status = await readyz(conn)
        if status is not None and status["lag"] == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def metric(port: int, name: str, labels: dict[str, str]) -> float:
    """The sum of a /metrics counter over the series carrying ``labels``."""
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=10) as client:
        text = (await client.get("/metrics", headers=auth_headers())).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rpartition(" ")[2])
    return total


def log_errors(paths: list[Path]) -> list[str]:
    lines = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            lines += [
                line
                for line in path.read_text(errors="replace").splitlines()
                if LOG_ERROR.search(line)
            ]
    return lines


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Minute:
    """What happened to the requests due in one minute of the run."""

    offered: int = 0  # ingest requests due
    acked: int = 0
    acked_late: int = 0  # of those, acknowledged only after the load had ended
    replies_due: int = 0
    replies: int = 0
    acks: list[float] = field(default_factory=list)  # seconds from due to the 202
    reply_acks: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)  # timeline reads' latency
    fresh: list[float] = field(default_factory=list)  # seconds from the 202 to visible
    sent: list[float] = field(default_factory=list)  # sampled replies: from the 202 to sent
    sent_timeouts: int = 0
    feed_events: Counter[int] = field(default_factory=Counter)  # by agent
    errors: Counter[str] = field(default_factory=Counter)
    late_max: float = 0.0  # the generator's worst lateness (its own lag behind the clock)
    cpu: dict[str, float] = field(default_factory=dict)  # % of a core, the hub's and peers'

    def summary(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "acked": self.acked,
            "acked_late": self.acked_late,
            "replies_due": self.replies_due,
            "replies": self.replies,
            "ack_p50_ms": percentile(self.acks, 50) * 1000,
            "ack_p99_ms": percentile(self.acks, 99) * 1000,
            "reply_ack_p99_ms": percentile(self.reply_acks, 99) * 1000,
            "read_p99_ms": percentile(self.reads, 99) * 1000,
            "fresh_samples": len(self.fresh),
            "fresh_p50_ms": percentile(self.fresh, 50) * 1000,
            "fresh_p99_ms": percentile(self.fresh, 99) * 1000,
            "reply_samples": len(self.sent),
            "reply_sent_p50_ms": percentile(self.sent, 50) * 1000,
            "reply_sent_p99_ms": percentile(self.sent, 99) * 1000,
            "reply_sent_timeouts": self.sent_timeouts,
            "feed_events": sum(self.feed_events.values()),
            "errors": dict(self.errors),
            "generator_late_max_ms": self.late_max * 1000,
            "cpu_percent": self.cpu,
        }


class Soak:
    """The load of one run against ``hub`` for ``seconds``; :meth:`run` returns the figures."""

    def __init__(
        self,
        hub: Hub,
        workload: Workload,
        agents: list[Agent],
        conversations: list[tuple[str, str]],
        seconds: float,
        rate: float = 200.0,
    ) -> None:
        self.hub, self.workload, self.agents, self.seconds = hub, workload, agents, seconds
        #: New interactions a second: the offered ``rate`` less the agents' replies (180/s).
        self.ingest_rate = rate - AGENTS * REPLIES_PER_AGENT
        if self.ingest_rate <= 0:
            raise ValueError(f"a soak offers more than its agents' {AGENTS * REPLIES_PER_AGENT}/s")
        self.minutes = [Minute() for _ in range(max(1, round(seconds / 60)))]
        #: Recent chat conversations (conversation id, customer id) the agents reply in.
        self.conversations: deque[tuple[str, str]] = deque(conversations, maxlen=1000)
        self.samples: list[ProcessSample] = []
        self.lags: list[tuple[float, int]] = []
        self.error_examples: list[str] = []
        self.started = 0.0
        self.ends = 0.0
        self.replies_acked = 0
        self.unsent = 0
        self.log_errors: list[str] = []
        self.rss_peak_kib = 0  # sampled every PEAK_INTERVAL s during the load
        self.rss_peak_after_kib = 0  # and after it, until the checks are done
        self._checked = asyncio.Event()
        self.rng = random.Random(20)
        self.reply_timeout = hub.sample_timeout * REPLY_TIMEOUT_FACTOR
        self._tasks: set[asyncio.Task[None]] = set()
        self._senders = _Pool(hub.ingest_port, INGEST_CONNECTIONS, auth_headers())
        self._watchers = _Pool(hub.api_port, WATCH_CONNECTIONS, auth_headers())

    # -- bookkeeping

    def minute(self, due: float) -> Minute:
        index = int((due - self.started) // 60)
        return self.minutes[min(max(index, 0), len(self.minutes) - 1)]

    def fail(self, due: float, kind: str, detail: str = "", count: int = 1) -> None:
        """Count ``count`` errors of this kind in the minute of ``due``; keep a few examples."""
        self.minute(due).errors[kind] += count
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{due - self.started:.1f} s: {kind} {detail}".strip())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the run

    async def run(self) -> dict[str, Any]:
        # Every connection of the pools opened now: a pool opens them on demand, and sockets
        # opened by a slow moment later would read as the server's open files growing.
        for pool, size in (
            (self._senders, INGEST_CONNECTIONS),
            (self._watchers, WATCH_CONNECTIONS),
        ):
            await asyncio.gather(*(pool.request("GET", "/healthz", None) for _ in range(size)))
        self.started = time.perf_counter() + 0.5  # the feeds open meanwhile
        ends = self.ends = self.started + self.seconds
        feeds = [asyncio.create_task(self._feed(n, a)) for n, a in enumerate(self.agents)]
        sampler = asyncio.create_task(self._sample(ends))
        peak = asyncio.create_task(self._peak(ends))
        # The agents' connections stay open until the last sample: closed at the end of the
        # load, they would read as the server's open files shrinking.
        conns = [await Connection(self.hub.api_port, a.headers).open() for a in self.agents]
        agents = [asyncio.create_task(self._agent(n, c, ends)) for n, c in enumerate(conns)]
        await self._ingest(ends)
        await asyncio.gather(*agents)
        # Bounded drain: the requests still unanswered, then the samples they started.
        drain_deadline = time.perf_counter() + max(DRAIN_TIMEOUT, self.reply_timeout + 5)
        while self._tasks and time.perf_counter() < drain_deadline:
            await asyncio.wait(
                set(self._tasks), timeout=max(0.0, drain_deadline - time.perf_counter())
            )
        if self._tasks:
            unfinished = len(self._tasks)
            self.fail(ends - 1.0, "unfinished after the drain", str(unfinished), unfinished)
        for task in list(self._tasks):
            task.cancel()
        drained = time.perf_counter() - ends
        await sampler
        for conn in conns:
            await conn.close()
        for task in feeds:
            task.cancel()
        await asyncio.gather(*feeds, return_exceptions=True)
        await self._senders.close()
        await self._watchers.close()
        await self._after(ends)
        self._checked.set()
        await peak
        return self.figures(drained)

    async def _ingest(self, ends: float) -> None:
        """One POST /v1/interactions due every 1 / ``ingest_rate`` s until ``ends``."""
        interval = 1 / self.ingest_rate
        sample_every = max(1, round(self.ingest_rate / FRESH_SAMPLES_PER_SECOND))
        for n in range(round(self.seconds * self.ingest_rate)):
            due = self.started + n * interval
            minute = self.minute(due)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                minute.late_max = max(minute.late_max, -delay)
            body = self.workload.interaction()
            minute.offered += 1
            self._spawn(self._send(body, due, sample=n % sample_every == 0))

    async def _send(self, body: dict[str, Any], due: float, sample: bool) -> None:
        try:
            status, answer = await self._senders.request(
                "POST", "/v1/interactions", orjson.dumps(body)
            )
        except (HttpError, OSError) as exc:
            self.fail(due, f"ingest {type(exc).__name__}", str(exc))
            return
        acked = time.perf_counter()
        if status != 202:
            self.fail(due, f"ingest {status}", repr(answer[:200]))
            return
        minute = self.minute(due)
        minute.acks.append(acked - due)
        minute.acked += 1
        minute.acked_late += acked > self.ends
        if sample:
            self._spawn(self._fresh(orjson.loads(answer), due, acked, _replyable(body)))

    async def _fresh(
        self, outcome: dict[str, Any], due: float, acked: float, replyable: bool
    ) -> None:
        """Follow a sampled interaction until it is visible; a chat conversation (one an agent
        can see now) then joins those the agents reply in."""
        path, visible = self.hub.visible(outcome)
        try:
            seen = await poll_visible(
                self._watchers,
                path,
                acked,
                visible=visible,
                timeout=self.hub.sample_timeout,
                pause=self.hub.pause,
            )
        except (HttpError, OSError) as exc:
            self.fail(due, f"visibility poll {type(exc).__name__}", str(exc)[:200])
            return
        if seen is None:
            self.fail(due, f"not visible within {self.hub.sample_timeout:.0f} s")
            return
        self.minute(due).fresh.append(seen - acked)
        if replyable:
            if outcome.get("conversation_id") is None:  # the distributed runtime's ingest
                path = f"/v1/messages/{outcome['message_id']}"
                status, body = await self._watchers.request("GET", path, None)
                if status != 200:
                    self.fail(due, f"message read {status}", repr(body[:200]))
                    return
                outcome = orjson.loads(body)
            self.conversations.append((outcome["conversation_id"], outcome["customer_id"]))

    async def _agent(self, index: int, conn: Connection, ends: float) -> None:
        """Twice a second: a chat customer's timeline, then a reply in their conversation."""
        period = 1 / REPLIES_PER_AGENT
        first = self.started + index * period / len(self.agents)  # the agents take turns
        count = round((ends - first) / period)
        for n in range(count):
            due = first + n * period
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif time.perf_counter() > ends:  # the hub answered too slowly to keep the pace
                self.fail(ends - 1.0, "agent behind at the end", "", count - n)
                return
            minute = self.minute(due)
            minute.replies_due += 1
            conversation, customer = self.rng.choice(self.conversations)
            try:
                await asyncio.wait_for(
                    self._reply(
                        conn, minute, due, conversation, customer, n % REPLY_SAMPLE_EVERY == 0
                    ),
                    AGENT_TIMEOUT,
                )
            except (HttpError, OSError) as exc:  # TimeoutError among them: fails the row
                self.fail(due, f"agent {type(exc).__name__}", str(exc)[:200])
                await conn.close()  # the next request opens it again

    async def _reply(
        self,
        conn: Connection,
        minute: Minute,
        due: float,
        conversation: str,
        customer: str,
        sample: bool,
    ) -> None:
        sent = time.perf_counter()
        status, answer = await conn.request("GET", f"/v1/customers/{customer}/timeline?limit=50")
        if status != 200:
            self.fail(due, f"timeline read {status}", repr(answer[:200]))
            return
        minute.reads.append(time.perf_counter() - sent)
        status, answer = await conn.request_body(
            "POST", f"/v1/conversations/{conversation}/messages", REPLY
        )
        if status != 202:
            self.fail(due, f"reply {status}", repr(answer[:200]))
            return
        acked = time.perf_counter()
        minute.reply_acks.append(acked - due)
        minute.replies += 1
        self.replies_acked += 1
        if sample:
            self._spawn(self._sent(orjson.loads(answer)["message_id"], due, acked))

    async def _sent(self, message_id: str, due: float, acked: float) -> None:
        """Follow a sampled reply until the dispatcher handed it to the chat mailbox."""

        def sent(body: bytes) -> bool:
            return orjson.loads(body)["delivery_status"] in SENT

        try:
            seen = await poll_visible(
                self._watchers,
                f"/v1/messages/{message_id}",
                acked,
                visible=sent,
                timeout=self.reply_timeout,
                pause=self.hub.pause,
            )
        except (HttpError, OSError) as exc:
            self.fail(due, f"reply poll {type(exc).__name__}", str(exc)[:200])
            return
        if seen is None:
            self.minute(due).sent_timeouts += 1
        else:
            self.minute(due).sent.append(seen - acked)

    async def _feed(self, index: int, agent: Agent) -> None:
        """The agent's queue page's live feed, open the whole run (cancelled at the end);
        reopened (and counted as an error) whenever it ends."""
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{self.hub.api_port}",
            headers={"cookie": agent.cookie},
            timeout=httpx.Timeout(10.0, read=None),
        ) as client:
            while True:
                try:
                    async with client.stream("GET", "/queue/live") as response:
                        if response.status_code != 200:
                            self.fail(time.perf_counter(), f"live feed {response.status_code}")
                            await asyncio.sleep(1.0)
                            continue
                        async for line in response.aiter_lines():
                            if line == "event: changed":
                                self.minute(time.perf_counter()).feed_events[index] += 1
                            elif line == "event: error":
                                self.fail(time.perf_counter(), "live feed error event")
                    self.fail(time.perf_counter(), "live feed ended")
                except httpx.HTTPError as exc:
                    self.fail(time.perf_counter(), f"live feed {type(exc).__name__}", str(exc))
                await asyncio.sleep(1.0)

    async def _sample(self, ends: float) -> None:
        """The server's RSS and open files every SAMPLE_INTERVAL s, and the projections' lag."""
        control = await Connection(self.hub.api_port, auth_headers()).open()
        per_minute = round(60 / SAMPLE_INTERVAL)
        cpu = self._cpu_seconds()
        try:
            for n in range(round(self.seconds / SAMPLE_INTERVAL) + 1):
                at = self.started + n * SAMPLE_INTERVAL
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                self.samples.append(sample_processes(self.hub.pid, n * SAMPLE_INTERVAL))
                if n and n % per_minute == 0:  # the minute that just ended
                    now = self._cpu_seconds()
                    self.minutes[n // per_minute - 1].cpu = {
                        k: round(100 * (now[k] - cpu[k]) / 60) for k in now
                    }
                    cpu = now
                try:
                    status = await readyz(control)
                except (HttpError, OSError) as exc:
                    self.fail(at, f"readyz {type(exc).__name__}", str(exc))
                    continue
                if status is not None:
                    self.lags.append((n * SAMPLE_INTERVAL, int(status["lag"])))
        finally:
            await control.close()

    def _cpu_seconds(self) -> dict[str, float]:
        """CPU time so far: the hub's processes together, then each peer's."""
        return {
            "hub": sum(cpu_seconds(p) for p in process_tree(self.hub.pid)),
            **{name: cpu_seconds(pid) for name, pid in self.hub.peers.items()},
        }

    async def _peak(self, ends: float) -> None:
        while not self._checked.is_set():
            pids = process_tree(self.hub.pid)
            rss = sum(proc_status_kib(p, "VmRSS") for p in pids)
            if time.perf_counter() < ends:
                self.rss_peak_kib = max(self.rss_peak_kib, rss)
            else:
                self.rss_peak_after_kib = max(self.rss_peak_after_kib, rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checked.wait(), PEAK_INTERVAL)

    async def _after(self, ends: float) -> None:
        """What must hold once the load is over: everything visible, nothing set aside or
        dead-lettered, every reply handed to the chat mailbox, no error in the log."""
        last = ends - 1.0  # errors found now belong to the last minute
        control = await Connection(self.hub.api_port, auth_headers()).open()
        try:
            if not await caught_up(control, CATCH_UP_TIMEOUT):
                self.fail(last, f"projections not caught up {CATCH_UP_TIMEOUT:.0f} s after")
            status = await readyz(control)
        finally:
            await control.close()
        if status is not None:
            for key in ("set_aside", "dead_letters"):
                if status.get(key):
                    self.fail(last, key, str(status[key]))
        self.unsent = await self._replies_unsent()
        if self.unsent:
            self.fail(last, "replies not sent after the drain", "", self.unsent)
        self.log_errors = log_errors(self.hub.log_paths)
        for line in self.log_errors:
            self.fail(last, "error in the server's log", line[:200])

    async def _replies_unsent(self) -> int:
        """Replies acknowledged but not (yet, after DRAIN_TIMEOUT s) sent on web chat."""
        deadline = time.perf_counter() + DRAIN_TIMEOUT
        while True:
            sent = await metric(
                self.hub.api_port, "hub_dispatch_total", {"channel": "chat", "outcome": "sent"}
            )
            unsent = self.replies_acked - int(sent)
            if unsent <= 0 or time.perf_counter() > deadline:
                return max(0, unsent)
            await asyncio.sleep(0.5)

    # -- the figures

    def figures(self, drained: float) -> dict[str, Any]:
        minutes = self.minutes
        for n, minute in enumerate(minutes):  # a feed silent for a whole minute is stuck
            for index, agent in enumerate(self.agents):
                if not minute.feed_events[index]:
                    minute.errors["live feed silent for a minute"] += 1
                    if len(self.error_examples) < 20:
                        self.error_examples.append(f"minute {n + 1}: {agent.name}'s feed silent")
        warmup = min(WARMUP, self.seconds / 3)
        offered = sum(m.offered for m in minutes) + sum(m.replies_due for m in minutes)
        # What the hub acknowledged while the load ran: answers that came after its end were
        # queued behind it, and count as falling behind, not as keeping pace.
        acked = sum(m.acked - m.acked_late for m in minutes) + sum(m.replies for m in minutes)
        errors: Counter[str] = Counter()
        for minute in minutes:
            errors.update(minute.errors)
        return {
            "seconds": self.seconds,
            "warmup_seconds": warmup,
            "offered_rate": offered / self.seconds,
            "ingest_rate": self.ingest_rate,
            "achieved_rate": acked / self.seconds,
            "ingest_offered": sum(m.offered for m in minutes),
            "ingest_acked": sum(m.acked for m in minutes),
            "ingest_acked_late": sum(m.acked_late for m in minutes),
            "replies_offered": sum(m.replies_due for m in minutes),
            "replies_acked": self.replies_acked,
            "replies_unsent": self.unsent,
            "drain_seconds": drained,
            "reply_timeout": self.reply_timeout,
            "errors": sum(errors.values()),
            "errors_by_kind": dict(errors),
            "error_examples": self.error_examples,
            "log_errors": self.log_errors[:20],
            "minutes": [m.summary() for m in minutes],
            "rss_mib": growth(self.samples, warmup, "rss_kib")
            | {
                "peak": max(self.rss_peak_kib, *(s.rss_kib for s in self.samples)) / 1024,
                "peak_after_load": self.rss_peak_after_kib / 1024,
            },
            "fds": growth(self.samples, warmup, "fds"),
            "samples": [vars(s) for s in self.samples],
            "projection_lag": self.lags,
            "projection_lag_max": max((lag for _, lag in self.lags), default=0),
        }
