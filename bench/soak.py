"""soak: ``hub serve`` under a steady mixed load for minutes. Does its memory or its count of
open files grow, do its latencies drift, does anything fail?

``python -m bench --only soak`` (10 min at the default scale, 1 min at ``quick``, 30 min at
``full``: ``Scale.soak_seconds``). The load, offered open-loop (paced by the clock, never by the
answers) at 200 interactions/s (``--soak-rate`` lowers it, and the row then says so; on
an instance too slow for it, for runs of two commits in turns):

- 180 new interactions/s, one POST /v1/interactions each, one due every 1/180 s: bench.workload's
  mix of SMS, WhatsApp, email and web chat, 10% first contacts, the rest from customers seeded
  before (``seed_customers``);
- 10 agents, each with a token of its own (role ``agent``) and a console session with the queue's
  live feed open (``GET /queue/live``, server-sent events) for the whole run, each twice a
  second reading a chat customer's timeline (GET /v1/customers/{id}/timeline?limit=50) and
  replying in their conversation (POST /v1/conversations/{id}/messages, ``urgent`` as in
  bench.channels): 20 replies/s. Replies go to web chat, the one channel ``hub serve`` sends on
  with its defaults (the chat mailbox, in its state database; nothing beyond loopback).

Measured: every 10 s the server's resident memory (VmRSS) and open file descriptors
(/proc/<pid>/fd: files and sockets told apart), summed over the process and any children, and
its RSS every second for the peak; per minute of the run (by when each request was due) the p99
acknowledgement latency of the ingest POSTs and of the replies (from when each was due, so
queueing counts), the p99 freshness of 2 sampled interactions a second (the time from the 202
until the interaction is on its customer's timeline, polled as bench.freshness polls it) and
how soon 1 reply in 10 was sent (GET /v1/messages/{id} until its delivery status is ``sent``).
The pools' connections are all opened before the load, so the server's sockets stay level.

Errors, each a failure of the row: an answer other than the expected status, a broken
connection, a sample not visible within 10 s, a live feed that sent an ``error`` event, ended,
or said nothing for a whole minute, a request or sample still unfinished when the drain ends
(35 s after the load), the projections not caught up 2 min after that, dead letters or
set-aside records, replies not yet sent 30 s later still (``hub_dispatch_total``), an ERROR or
traceback in the server's log. The RSS while these checks run is reported beside the peak.

Targets (issue 20): RSS and open files grow less than 10% after the first minute (the last sample
against the one at 1 min; ``quick``: at 20 s, a third of its minute), with the least-squares slope
of the samples from then on reported; peak RSS <= 400 MiB; no error. Baselines, same run: the
server's RSS and open files idle after start; the first minute's p99s for the later minutes'.

The load and its bookkeeping are bench.soak_load's; bench.kafka_soak runs the same load against
``hub run all`` on the test broker.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from bench import Result, Row, Scale
from bench.client import install_uvloop
from bench.harness import hub_server, open_fds
from bench.soak_load import (
    AGENTS,
    REPLIES_PER_AGENT,
    SAMPLE_INTERVAL,
    Hub,
    Soak,
    create_agents,
    on_timeline,
    seed,
    sign_in_agents,
)
from bench.workload import Workload

NAME = "soak"
TARGET_GROWTH = 0.10
TARGET_RSS_MIB = 400.0


# -- rows -----------------------------------------------------------------------------------------


def _per_minute(minutes: list[dict[str, Any]], key: str) -> str:
    """The minutes' figures, "-" for a minute with nothing measured (say, nothing answered)."""
    return ", ".join(f"{m[key]:,.0f}" if math.isfinite(m[key]) else "-" for m in minutes)


def _cpu_by_minute(minutes: list[dict[str, Any]]) -> str:
    """The CPU the soak sampled, as "; CPU by minute, % of a core: hub a, b; broker c, d"."""
    names = list(minutes[0].get("cpu_percent") or {})
    if not names:
        return ""
    parts = [
        f"{name} " + ", ".join(str(m["cpu_percent"].get(name, "-")) for m in minutes)
        for name in names
    ]
    return "; CPU by minute, % of a core: " + "; ".join(parts)


def _drift(minutes: list[dict[str, Any]], key: str) -> float | None:
    """The worst minute's figure over the first minute's (None without both)."""
    values: list[float] = [m[key] for m in minutes if math.isfinite(m[key])]
    first: float = minutes[0][key]
    if not values or not math.isfinite(first) or not first:
        return None
    return max(values) / first


def rows(name: str, label: str, soak: dict[str, Any], idle: dict[str, float]) -> list[Row]:
    """The row's lines: RSS, open files, the load and its errors, freshness by minute."""
    rss, fds, minutes = soak["rss_mib"], soak["fds"], soak["minutes"]
    last = soak["samples"][-1]
    sent_timeouts = sum(m["reply_sent_timeouts"] for m in minutes)
    fresh_p99s = [m["fresh_p99_ms"] for m in minutes if math.isfinite(m["fresh_p99_ms"])]
    span = f"{soak['seconds'] / 60:.0f} min"
    after = f"after {soak['warmup_seconds']:.0f} s"
    load_problems = []
    if soak["achieved_rate"] < soak["offered_rate"] * 0.95:
        late = soak.get("ingest_acked_late", 0)
        load_problems.append(
            f"fell behind: {soak['achieved_rate']:,.0f}/s acknowledged while the load ran"
            + (f" ({late:,} more after it)" if late else "")
        )
    if soak["errors"]:
        shown = ", ".join(f"{k} {v:,}" for k, v in sorted(soak["errors_by_kind"].items()))
        load_problems.append(f"{soak['errors']:,} errors: {shown}")
    return [
        Row(
            benchmark=name,
            figure=f"RSS of {label} under load for {span}: peak {rss['peak']:,.0f} MiB; "
            f"{rss['growth']:+.1%} {after} ({rss['at_warmup']:,.0f} -> {rss['last']:,.0f} "
            f"MiB), slope {rss['slope_per_minute']:+.2f} MiB/min ({len(soak['samples'])} "
            f"samples every {SAMPLE_INTERVAL:.0f} s; after the load, while the checks ran, up "
            f"to {rss['peak_after_load']:,.0f} MiB; VmHWM {soak['vm_hwm_mib']:,.0f} MiB)",
            target=f"growth < {TARGET_GROWTH:.0%} after the first minute; peak <= "
            f"{TARGET_RSS_MIB:.0f} MiB",
            baseline=f"same server idle after start: {idle['rss_mib']:,.0f} MiB",
            ratio=rss["last"] / rss["at_warmup"],
            ratio_label="last / at 1 min",
            met=rss["growth"] < TARGET_GROWTH and rss["peak"] <= TARGET_RSS_MIB,
            value=rss["peak"],
            unit="MiB",
        ),
        Row(
            benchmark=name,
            figure=f"open files of {label}: {fds['growth']:+.1%} {after} "
            f"({fds['at_warmup']:,.0f} -> {fds['last']:,.0f}; peak {fds['peak']:,.0f}; at the "
            f"end {last['files']} files, {last['sockets']} sockets), slope "
            f"{fds['slope_per_minute']:+.2f}/min",
            target=f"growth < {TARGET_GROWTH:.0%} after the first minute",
            baseline=f"same server idle after start: {idle['fds']:,.0f}",
            ratio=fds["last"] / fds["at_warmup"] if fds["at_warmup"] else None,
            ratio_label="last / at 1 min",
            met=fds["growth"] < TARGET_GROWTH,
            value=fds["growth"] * 100,
            unit="%",
        ),
        Row(
            benchmark=name,
            figure=f"{soak['offered_rate']:,.0f} interactions/s offered for {span} "
            f"({soak['ingest_rate']:,.0f}/s new on SMS, WhatsApp, email and chat + "
            f"{AGENTS * REPLIES_PER_AGENT:,.0f} chat replies/s from {AGENTS} agents, each after "
            f"a timeline read, with a live feed open), {soak['achieved_rate']:,.0f}/s "
            f"acknowledged; ingest p99 by minute {_per_minute(minutes, 'ack_p99_ms')} ms, "
            f"replies p99 by minute {_per_minute(minutes, 'reply_ack_p99_ms')} ms"
            + _cpu_by_minute(minutes)
            + ("; " + "; ".join(load_problems) if load_problems else "; no error"),
            target="no error; the offered rate acknowledged",
            baseline=f"the first minute: ingest p99 {minutes[0]['ack_p99_ms']:,.0f} ms",
            ratio=_drift(minutes, "ack_p99_ms"),
            ratio_label="worst minute / first (p99)",
            met=not load_problems,
            value=soak["errors"],
            unit="errors",
        ),
        Row(
            benchmark=name,
            figure=f"visible p99 by minute {_per_minute(minutes, 'fresh_p99_ms')} ms after the "
            f"202 ({sum(m['fresh_samples'] for m in minutes):,} samples; projection lag up to "
            f"{soak['projection_lag_max']:,} events); replies sent p99 by minute "
            f"{_per_minute(minutes, 'reply_sent_p99_ms')} ms after their 202 "
            f"({sum(m['reply_samples'] for m in minutes):,} samples"
            + (
                f", {sent_timeouts:,} not sent within {soak['reply_timeout']:.0f} s"
                if sent_timeouts
                else ""
            )
            + ")",
            target="- (reported)",
            baseline=f"the first minute: p99 {minutes[0]['fresh_p99_ms']:,.0f} ms",
            ratio=_drift(minutes, "fresh_p99_ms"),
            ratio_label="worst minute / first (p99)",
            met=None,
            value=max(fresh_p99s, default=0.0),
            unit="ms",
        ),
    ]


def run(scale: Scale, workdir: Path) -> Result:
    from hub.config import Settings

    install_uvloop()
    data_dir = workdir / "hub"
    agents = create_agents(Settings(data_dir=data_dir), AGENTS)
    workload = Workload(seed=61, new_share=0.1)
    with hub_server(data_dir) as server:
        time.sleep(1.0)
        idle = {"rss_mib": server.rss_kib() / 1024, "fds": open_fds(server.pid).total()}
        hub = Hub(
            label="`hub serve`",
            ingest_port=server.port,
            api_port=server.port,
            pid=server.pid,
            log_paths=[server.log_path],
            visible=on_timeline,
        )
        conversations = asyncio.run(seed(hub, workload, scale.seed_customers))
        sign_in_agents(server.base_url, agents)
        soak = asyncio.run(
            Soak(hub, workload, agents, conversations, scale.soak_seconds, scale.soak_rate).run()
        )
        soak["vm_hwm_mib"] = server.peak_rss_kib() / 1024
    soak["idle"] = idle
    return Result(NAME, rows(NAME, hub.label, soak, idle), soak)
