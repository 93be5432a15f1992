"""reports: service reports over a year of conversations, and what the service projection
adds to a rebuild.

The dataset (untimed): a Mon-Fri 09:00-17:00 Europe/Vilnius calendar with Lithuania's public
holidays and two SLA policies (``standard``; ``vip`` for customers tagged vip) saved first,
then ``CONVERSATIONS`` conversations over a year, recorded through the domain in batches: each
a first customer message on one of six channels, an agent's reply minutes to hours later
(``interaction.sent.v1``), an assignee among 50 agents, tags for about 3 in 10 customers,
about 70% resolved, about 5% reopened by the customer and answered again. The domain stamps
status changes, assignments and tags with the clock, so a virtual clock stands in for it while
the dataset is recorded. The projections then catch up, and the SLA watcher records the
breaches of the conversations left open, as a year of running would have.

Each customer's first message tells an acquisition source (utm source/medium/campaign) for
about 7 in 10 of them, and about 4 in 10 customers place one to three orders in the weeks
after (EUR, some USD, a few CZK without a rate), some partly cancelled. About two thirds of
the resolved conversations get a CSAT survey an hour after their resolution and most answer;
a panel also gets NPS (``hub.demo.surveys.record_survey_history``, as the demo's history).

Rebuild (in-process, same store, same events): the existing projections alone, then all of
them with ``service``, then ``service`` alone, then ``business`` alone; store events per
second of each. Target: the existing projections keep >= 90% of their rate when ``service``
joins them (stricter than the issue's "within 10% of before for the existing rows", which
docs/performance.md measures against the commit before the issue, in turns).

Reports: ``GET /v1/reports/{name}`` on ``hub serve`` over that data, sequential keep-alive
requests, p50/p95. Baseline, interleaved request by request: ``SELECT count(*) FROM
service_responses`` on the same views database, in-process (the cost of touching every
response row once, no Python per row). Target: p95 <= 2 s a report at 100,000 conversations.
Recording 100,000 takes long, so the default scale records 10,000 and, before the reports,
copies the rows of the views they read nine times under new ids (``replicate``): the reports
read 100,000 conversations' rows, with the recorded ones' times, channels and figures.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bench import Result, Row, Scale, percentile
from bench.harness import auth_headers, hub_server

NAME = "reports"
#: Conversations per scale. The target is stated for 100,000 (``full``): the default records
#: 10,000 (the whole run takes about 3.5 minutes on 2 cores) and copies their view rows for
#: the reports (``COPIES``).
CONVERSATIONS = {"quick": 2_000, "default": 10_000, "full": 100_000}
#: How many times the reports' view rows are copied before the reports are measured, so the
#: default scale measures them at the 100,000 conversations of the target (see ``replicate``).
COPIES = {"quick": 1, "default": 10, "full": 1}
REQUESTS = {"quick": 3, "default": 10, "full": 20}
WARMUP = 1
CHUNK = 1_000  # conversations recorded per batch
TARGET_SECONDS = 2.0
REBUILD_RATIO_TARGET = 0.9
ZONE = "Europe/Vilnius"
#: Channels and how often each is used.
CHANNELS = {"email": 30, "chat": 20, "whatsapp": 20, "sms": 15, "messenger": 10, "telegram": 5}
AGENTS = tuple(f"agent{n:02d}@example.com" for n in range(50))
TAGS = ("vip", "b2b", "billing", "returns", "wholesale")
WORKDAY = [{"start": "09:00", "end": "17:00"}]
CALENDAR = {
    "time_zone": ZONE,
    "hours": {day: WORKDAY for day in ("monday", "tuesday", "wednesday", "thursday", "friday")},
    "holidays": {"country": "LT"},
}
POLICIES = {
    "vip": {
        "calendar": "vilnius-office",
        "tags": ["vip"],
        "priority": 10,
        "first_response_minutes": 30,
        "next_response_minutes": 60,
        "resolution_minutes": 960,
    },
    "standard": {
        "calendar": "vilnius-office",
        "first_response_minutes": 120,
        "next_response_minutes": 240,
        "resolution_minutes": 2880,
    },
}
#: The reports measured: (label, report, group, days back from today).
REPORTS = (
    ("response-times by week, 1 year", "response-times", "week", 365),
    ("resolution by month, 1 year", "resolution", "month", 365),
    ("conversations by channel, 1 year", "conversations", "channel", 365),
    ("response-times by day, 90 days", "response-times", "day", 90),
    ("response-times by tag, 1 year", "response-times", "tag", 365),
    ("retention by month, 1 year", "retention", "month", 365),
    ("value by source, 1 year", "value", "source", 365),
    ("sources by campaign, 1 year", "sources", "campaign", 365),
    ("satisfaction by week, 1 year", "satisfaction", "week", 365),
    ("satisfaction by agent, 1 year", "satisfaction", "agent", 365),
)
#: The view tables the reports read: what ``replicate`` copies.
REPORT_TABLES = (
    "service_conversations",
    "service_responses",
    "service_customer_tags",
    "directory_merges",
    "business_customers",
    "business_days",
    "business_orders",
    "survey_answers",
)
#: Acquisition sources of the customers and how often each (None: nothing told).
SOURCES = (
    (("google", "cpc", "winter-sale"), 30),
    (("google", "cpc", "summer-sale"), 10),
    (("newsletter", "email", "weekly"), 15),
    (("facebook", "social", None), 15),
    (None, 30),
)
#: Currencies of the orders and how often each; the reports convert USD, not CZK.
CURRENCIES = {"EUR": 85, "USD": 12, "CZK": 3}
RATES = {"USD": "0.92"}


# -- the dataset ---------------------------------------------------------------------------


class VirtualClock:
    """Stands in for eventsourcing's event timestamps while installed: the domain stamps
    status changes, assignments and tags with "now", and this history happened last year."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    @contextmanager
    def installed(self) -> Iterator[VirtualClock]:
        from eventsourcing.domain import CanCreateTimestamp

        original = CanCreateTimestamp.__dict__["create_timestamp"]
        CanCreateTimestamp.create_timestamp = staticmethod(self._now)  # type: ignore[method-assign]
        try:
            yield self
        finally:
            CanCreateTimestamp.create_timestamp = original  # type: ignore[method-assign]

    def _now(self) -> datetime:
        return self.now or datetime.now(UTC)


@dataclass
class _Conversation:
    n: int
    channel: str
    address: str
    opened_at: datetime
    replied_at: datetime
    assignee: str | None
    tags: list[str]
    resolved_at: datetime | None
    reopened_at: datetime | None = None
    replied_again_at: datetime | None = None
    resolved_again_at: datetime | None = None
    ids: dict[str, UUID] = field(default_factory=dict)

    source: tuple[str, str | None, str | None] | None = None
    orders: list[tuple[datetime, str, str, bool]] = field(default_factory=list)

    def pmid(self, which: str) -> str:
        return f"bench-{self.n}-{which}"


def _minutes(rng: random.Random, median: float, spread: float, cap: float) -> timedelta:
    return timedelta(minutes=min(cap, rng.lognormvariate(math.log(median), spread)))


def plan(conversations: int, now: datetime, seed: int = 23) -> list[_Conversation]:
    """Every conversation of the year, in the order they open."""
    rng = random.Random(seed)
    first = now - timedelta(days=368)
    span = timedelta(days=358)  # the last opens 10 days ago: every target has passed since
    channels, weights = list(CHANNELS), list(CHANNELS.values())
    found = []
    for n in range(conversations):
        channel = rng.choices(channels, weights)[0]
        address = {
            "email": f"email:c{n}@example.org",
            "sms": f"phone:+3706{n:07d}",
            "whatsapp": f"phone:+3705{n:07d}",
            "telegram": f"telegram:{1_000_000 + n}",
        }.get(channel, f"{channel}:v{n}")
        opened = first + span * (n + rng.random()) / conversations
        replied = opened + _minutes(rng, 45, 1.3, 2 * 1440)
        tags = rng.sample(TAGS, rng.choice((1, 1, 2))) if rng.random() < 0.3 else []
        resolved = replied + _minutes(rng, 180, 1.5, 4 * 1440) if rng.random() < 0.7 else None
        c = _Conversation(
            n,
            channel,
            address,
            opened,
            replied,
            rng.choice(AGENTS) if rng.random() < 0.9 else None,
            tags,
            resolved,
        )
        c.source = rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
        if rng.random() < 0.4:
            for _ in range(rng.choice((1, 1, 2, 3))):
                placed = opened + timedelta(days=rng.uniform(0, 120))
                if placed < now - timedelta(hours=1):
                    currency = rng.choices(list(CURRENCIES), list(CURRENCIES.values()))[0]
                    amount = f"{rng.randint(10, 400)}.{rng.randint(0, 99):02d}"
                    c.orders.append((placed, amount, currency, rng.random() < 0.05))
        if resolved is not None and rng.random() < 0.05 / 0.7:
            c.reopened_at = resolved + _minutes(rng, 120, 1.0, 12 * 60)
            c.replied_again_at = c.reopened_at + _minutes(rng, 30, 1.0, 1440)
            if rng.random() < 0.6:
                c.resolved_again_at = c.replied_again_at + _minutes(rng, 60, 1.0, 1440)
        found.append(c)
    return found


def _message(c: _Conversation, which: str, direction: str, at: datetime) -> Any:
    from hub.events import InboundInteraction
    from hub.events.inbound import InboundSource

    source = None
    if which == "first" and c.source is not None:
        name, medium, campaign = c.source
        source = InboundSource(source=name, medium=medium, campaign=campaign)
    return InboundInteraction(
        source=source,
        channel=c.channel,  # type: ignore[arg-type]
        direction=direction,  # type: ignore[arg-type]
        address=c.address,
        provider_message_id=c.pmid(which),
        occurred_at=at,
        text="Where is my order? It was due on Monday." if direction == "inbound" else "On it.",
        subject="Order" if c.channel == "email" else None,
        # Replies name the first message: email threads by it, other channels join it
        # however long the conversation was idle.
        thread_ref=None if which == "first" else c.pmid("first"),
    )


class _Recorder:
    """Writes the planned conversations through the domain, a batch at a time."""

    def __init__(self, runtime: Any, clock: VirtualClock) -> None:
        self.runtime = runtime
        self.app = runtime.store.app
        self.clock = clock

    def record(self, items: list[tuple[_Conversation, str, str, datetime]]) -> None:
        if not items:
            return
        self.clock.now = min(at for *_, at in items)
        results = self.runtime.record_now([_message(c, w, d, at) for c, w, d, at in items])
        for (c, *_), result in zip(items, results, strict=True):
            c.ids.setdefault("conversation", result.conversation_id)
            c.ids.setdefault("customer", result.customer_id)

    def each(
        self, kind: type[Any], changes: list[tuple[UUID, datetime, Callable[[Any], None]]]
    ) -> None:
        """Apply ``change`` to each aggregate at its time, all in one unit of work."""
        if not changes:
            return

        def command(uow: Any) -> None:
            uow.load([aggregate_id for aggregate_id, _, _ in changes])
            for aggregate_id, at, change in changes:
                aggregate = uow.require(kind, aggregate_id, kind.__name__)
                self.clock.now = at
                change(aggregate)
                uow.collect(aggregate)

        self.app.runner.run(command)

    def orders(self, chunk: list[_Conversation]) -> None:
        """The chunk's orders (and cancellations) as POST /v1/activities records them."""
        from hub.domain.activities import check_activity

        specs = []
        for c in chunk:
            for k, (placed, amount, currency, cancelled) in enumerate(c.orders):
                body = {
                    "type": "order.placed",
                    "source": "shop",
                    "source_id": f"bench-{c.n}-{k}",
                    "occurred_at": placed,
                    "customer_id": c.ids["customer"],
                    "amount": amount,
                    "currency": currency,
                }
                specs.append(check_activity(body))
                if cancelled:
                    again = body | {
                        "type": "order.cancelled",
                        "source_id": f"bench-{c.n}-{k}-cancel",
                        "occurred_at": placed + timedelta(hours=3),
                    }
                    specs.append(check_activity(again))
        if specs:
            self.runtime.commands.activities.record_many(specs)

    def chunk(self, chunk: list[_Conversation]) -> None:
        from hub.domain.ids import uuid7
        from hub.domain.model import Conversation, Customer

        cipher = self.app.cipher

        def tag(tags: list[str]) -> Callable[[Any], None]:
            def change(customer: Any) -> None:
                encrypted = [cipher.encrypt(customer.id, t) for t in sorted(tags)]
                customer.change_tags(
                    tags=encrypted, added=encrypted, removed=[], actor=None, correlation_id=uuid7()
                )

            return change

        def assign(agent: str) -> Callable[[Any], None]:
            def change(conversation: Any) -> None:
                conversation.assign(
                    assignee=agent,
                    actor=agent,
                    customer_id=conversation.customer_id,
                    correlation_id=uuid7(),
                )

            return change

        def status(value: str, agent: str | None) -> Callable[[Any], None]:
            def change(conversation: Any) -> None:
                conversation.change_status(
                    status=value,
                    previous_status=conversation.status,
                    actor=agent,
                    reason="agent",
                    customer_id=conversation.customer_id,
                    correlation_id=uuid7(),
                )

            return change

        self.record([(c, "first", "inbound", c.opened_at) for c in chunk])
        self.each(
            Customer,
            [
                (c.ids["customer"], c.opened_at + timedelta(minutes=1), tag(c.tags))
                for c in chunk
                if c.tags
            ],
        )
        self.each(
            Conversation,
            [
                (c.ids["conversation"], c.opened_at + (c.replied_at - c.opened_at) / 2, assign(a))
                for c in chunk
                if (a := c.assignee) is not None
            ],
        )
        self.record([(c, "reply", "outbound", c.replied_at) for c in chunk])
        self.each(
            Conversation,
            [
                (c.ids["conversation"], c.resolved_at, status("resolved", c.assignee))
                for c in chunk
                if c.resolved_at is not None
            ],
        )
        for c in chunk:  # one at a time: the domain stamps the reopening with the clock
            if c.reopened_at is not None:
                self.record([(c, "again", "inbound", c.reopened_at)])
        self.record(
            [
                (c, "reply-again", "outbound", c.replied_again_at)
                for c in chunk
                if c.replied_again_at is not None
            ]
        )
        self.each(
            Conversation,
            [
                (c.ids["conversation"], c.resolved_again_at, status("resolved", c.assignee))
                for c in chunk
                if c.resolved_again_at is not None
            ],
        )
        self.orders(chunk)


def build(runtime: Any, conversations: int, now: datetime) -> dict[str, Any]:
    """Definitions, then the year of conversations; positions and seconds."""
    app = runtime.store.app
    app.service_levels.save_calendar("vilnius-office", CALENDAR, actor="bench")
    for name, policy in POLICIES.items():
        app.service_levels.save_policy(name, policy, actor="bench")
    planned = plan(conversations, now)
    started = time.perf_counter()
    clock = VirtualClock()
    recorder = _Recorder(runtime, clock)
    with clock.installed():
        for start in range(0, len(planned), CHUNK):
            recorder.chunk(planned[start : start + CHUNK])
    record_seconds = time.perf_counter() - started
    started = time.perf_counter()
    answered = surveys(runtime, planned)
    return {
        "conversations": conversations,
        "resolved": sum(c.resolved_at is not None for c in planned),
        "reopened": sum(c.reopened_at is not None for c in planned),
        "tagged": sum(bool(c.tags) for c in planned),
        "with_source": sum(c.source is not None for c in planned),
        "orders": sum(len(c.orders) for c in planned),
        "surveys_answered": answered,
        "record_seconds": record_seconds,
        "survey_seconds": time.perf_counter() - started,
    }


def surveys(runtime: Any, planned: list[_Conversation]) -> int:
    """CSAT surveys on about two thirds of the resolved conversations an hour after their
    resolution, most answered, and NPS for a panel, as the demo records its history
    (``hub.demo.surveys``); how many were answered."""
    from hub.demo.surveys import record_survey_history

    threads = [
        (c.ids["customer"], c.ids["conversation"], c.channel, c.assignee, resolved)
        for c in planned
        if (resolved := c.resolved_again_at or (c.resolved_at if c.reopened_at is None else None))
    ]
    return record_survey_history(runtime, threads, random.Random(29))


def record_breaches(runtime: Any, now: datetime) -> int:
    """What the SLA watcher would have recorded over the year (conversations left open)."""
    from hub.embedded.follower import LogFollower
    from hub.runtime.sla import SlaWatcher

    watcher = SlaWatcher(runtime.store.app, runtime.views.engine)
    follower = LogFollower(runtime.store, runtime.views, batch_size=5000, only=["service"])
    recorded = 0
    while True:
        follower.catch_up()
        new = watcher.plan(now)
        if not new:
            return recorded
        recorded += new


def replicate(views_db: Path, copies: int) -> dict[str, int]:
    """Copy the rows of the tables the reports read ``copies - 1`` times, each copy under
    new ids (a copy's ids keep the originals' but for the version digit and the one after
    it, which no UUID the hub makes has: so references between the tables hold within a
    copy, and no copy meets another or an original); the rows per table after."""
    if not 1 <= copies <= 16:
        raise ValueError(copies)
    database = sqlite3.connect(views_db)
    try:
        for table in REPORT_TABLES:
            columns = database.execute(f"PRAGMA table_info({table})").fetchall()
            names = [name for _, name, *_ in columns]
            ids = {name for _, name, kind, *_ in columns if kind.upper() == "CHAR(32)"}
            marked = next(name for _, name, kind, _, _, pk in columns if pk and name in ids)
            for copy in range(1, copies):
                values = ", ".join(
                    f"substr({n}, 1, 12) || 'f{copy:x}' || substr({n}, 15)" if n in ids else n
                    for n in names
                )
                database.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) SELECT {values} "
                    f"FROM {table} WHERE substr({marked}, 13, 1) != 'f'"
                )
        database.commit()
        return {
            table: database.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in REPORT_TABLES
        }
    finally:
        database.close()


# -- rebuild with and without the service projection ---------------------------------------


def rebuild(runtime: Any, names: list[str]) -> dict[str, float]:
    """Reset ``names`` and catch them up from the start, as ``hub projections rebuild``."""
    from hub.embedded.follower import LogFollower

    for name in names:
        runtime.views.reset(name)
    started = time.perf_counter()
    follower = LogFollower(runtime.store, runtime.views, batch_size=5000, only=names)
    applied = follower.catch_up()
    elapsed = time.perf_counter() - started
    return {
        "projections": len(names),
        "applied": applied,
        "notifications": follower.position,
        "seconds": elapsed,
        "rate": follower.position / elapsed,
        "applied_rate": applied / elapsed,
    }


# -- reports -------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 95)} | {
        "max_ms": max(values) * 1000,
        "requests": len(values),
    }


def _params(today: datetime, group: str, days: int) -> dict[str, str]:
    return {
        "from": (today - timedelta(days=days)).date().isoformat(),
        "to": today.date().isoformat(),
        "group": group,
        "tz": ZONE,
    }


def measure_reports(
    base_url: str, views_db: Path, today: datetime, requests: int
) -> dict[str, Any]:
    """Every report ``WARMUP`` times first, then each ``requests`` times, each followed by
    the baseline. (With only its own warm-up request, the report measured first right after
    the dataset was written took about twice as long as on the same data later; the cause is
    not pinned down, the write-back of the ~350 MB just written the likely one.)"""
    database = sqlite3.connect(f"file:{views_db}?mode=ro", uri=True)
    found: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=base_url, headers=auth_headers(), timeout=120.0) as client:
            for _ in range(WARMUP):
                for label, name, group, days in REPORTS:
                    answer = client.get(f"/v1/reports/{name}", params=_params(today, group, days))
                    if answer.status_code != 200:
                        raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:200]}")
            for label, name, group, days in REPORTS:
                params = _params(today, group, days)
                timings: list[float] = []
                counts: list[float] = []
                rows = 0
                size = 0
                for _ in range(requests):
                    started = time.perf_counter()
                    answer = client.get(f"/v1/reports/{name}", params=params)
                    took = time.perf_counter() - started
                    if answer.status_code != 200:
                        raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:200]}")
                    started = time.perf_counter()
                    database.execute("SELECT count(*) FROM service_responses").fetchone()
                    timings.append(took)
                    counts.append(time.perf_counter() - started)
                    rows, size = len(answer.json()["rows"]), len(answer.content)
                found[label] = {
                    "report": _summary(timings),
                    "count": _summary(counts),
                    "rows": rows,
                    "bytes": size,
                    "params": params,
                }
            found["responses"] = database.execute(
                "SELECT count(*) FROM service_responses"
            ).fetchone()[0]
    finally:
        database.close()
    return found


# -- the benchmark -------------------------------------------------------------------------


def run(scale: Scale, workdir: Path) -> Result:
    from hub.config import Settings
    from hub.runtime import Runtime

    conversations = CONVERSATIONS[scale.name]
    data_dir = workdir / "data"
    now = datetime.now(UTC)
    # The sandbox's channels: the surveys' questions are decided as if they could be sent.
    settings = Settings(data_dir=data_dir, sandbox=True)
    runtime = Runtime(settings)
    runtime.start()
    try:
        dataset = build(runtime, conversations, now)
        started = time.perf_counter()
        dataset["breaches"] = record_breaches(runtime, now)
        dataset["breach_seconds"] = time.perf_counter() - started
        dataset["stored_events"] = runtime.store_position()
        everything = [p.name for p in runtime.views.projections]
        existing = [n for n in everything if n not in ("service", "business")]
        without = rebuild(runtime, existing)
        with_service = rebuild(runtime, [*existing, "service"])
        alone = rebuild(runtime, ["service"])
        business = rebuild(runtime, ["business"])
    finally:
        runtime.stop()
    copies = COPIES[scale.name]
    dataset["report_rows"] = replicate(data_dir / "views.db", copies)
    os.sync()  # what the dataset wrote is on disk before the reports are timed
    with hub_server(data_dir, reports__rates=json.dumps(RATES)) as server:
        reports = measure_reports(server.base_url, data_dir / "views.db", now, REQUESTS[scale.name])
        reports["server_rss_mib"] = server.rss_kib() / 1024

    measured = conversations * copies
    size = f"{conversations:,} conversations over a year"
    report_size = (
        f"{measured:,} conversations: the {conversations:,} recorded and {copies - 1} copies"
        if copies > 1
        else size
    )
    rows = []
    for label, *_ in REPORTS:
        figures = reports[label]
        report, count = figures["report"], figures["count"]
        rows.append(
            Row(
                benchmark=f"{NAME} ({label})",
                figure=f"p50 {report['p50_ms']:,.0f} / p95 {report['p95_ms']:,.0f} ms "
                f"({report['requests']} requests, {figures['rows']} rows, {report_size})",
                target=f"p95 <= {TARGET_SECONDS:g} s (at 100,000 conversations)",
                baseline=f"SELECT count(*) of {reports['responses']:,} service_responses, "
                f"in-process: p50 {count['p50_ms']:.1f} / p95 {count['p95_ms']:.1f} ms",
                ratio=report["p95_ms"] / count["p95_ms"],
                ratio_label="p95 / p95",
                # The target is stated for 100,000 conversations: a smaller run says nothing.
                met=report["p95_ms"] <= TARGET_SECONDS * 1000 if measured >= 100_000 else None,
                value=report["p95_ms"],
                unit="ms",
            )
        )
    ratio = with_service["rate"] / without["rate"]
    rows.append(
        Row(
            benchmark=f"{NAME} (rebuild with the service projection)",
            figure=f"{with_service['rate']:,.0f} store events/s, "
            f"{with_service['projections']} projections (all but business) "
            f"({with_service['notifications']:,} events, {size})",
            target=f">= {REBUILD_RATIO_TARGET:.0%} of the rate without it",
            baseline=f"the {without['projections']} others (neither service nor business): "
            f"{without['rate']:,.0f} store events/s",
            ratio=ratio,
            ratio_label="with / without (store events/s)",
            met=ratio >= REBUILD_RATIO_TARGET,
            value=with_service["rate"],
            unit="events/s",
        )
    )
    rows.append(
        Row(
            benchmark=f"{NAME} (rebuild of the service projection alone)",
            figure=f"{alone['rate']:,.0f} store events/s ({alone['applied']:,} of "
            f"{alone['notifications']:,} events its own, {alone['seconds']:.1f} s)",
            target="none",
            baseline=f"the other projections alone: {without['rate']:,.0f} store events/s",
            ratio=alone["rate"] / without["rate"],
            ratio_label="service / others (store events/s)",
            met=None,
            value=alone["rate"],
            unit="events/s",
        )
    )
    rows.append(
        Row(
            benchmark=f"{NAME} (rebuild of the business projection alone)",
            figure=f"{business['rate']:,.0f} store events/s ({business['applied']:,} of "
            f"{business['notifications']:,} events its own, {business['seconds']:.1f} s)",
            target="none",
            baseline=f"the other projections alone: {without['rate']:,.0f} store events/s",
            ratio=business["rate"] / without["rate"],
            ratio_label="business / others (store events/s)",
            met=None,
            value=business["rate"],
            unit="events/s",
        )
    )
    raw = {
        "dataset": dataset,
        "rebuild": {
            "without_service": without,
            "with_service": with_service,
            "alone": alone,
            "business": business,
        },
        "reports": reports,
    }
    return Result(NAME, rows, raw)
