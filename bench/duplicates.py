"""duplicates: what the duplicates projection adds to applying a batch of 1,000 inbound messages.

The dataset is recorded in-process through the runtime (untimed): first contacts with names
from a small list (so names repeat, as they do), then messages of which one in ten writes an
address ("my email is ...", a phone number), half of them another customer's. The published
events are then applied, in chunks holding 1,000 ``interaction.received.v1`` each, to two fresh
view databases: one with every default projection, one with every default projection but
duplicates. The chunks alternate which database goes first, so both see the same noise.

Figure: milliseconds per 1,000 inbound messages with the duplicates projection. Baseline,
same run, same events: the same chunks without it. Ratio: with / without (median chunk).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import SCALES, Result, Row, Scale
from bench.workload import Workload, to_inbound

NAME = "duplicates"
CHUNK = 1000
MENTION_SHARE = 0.1
#: Inbound messages per scale (the customers are a tenth of them).
MESSAGES = {"quick": 5_000, "default": 50_000, "full": 200_000}


def record(data_dir: Path, messages: int, seed: int = 16) -> None:
    """Record the dataset through the runtime (no projection runs)."""
    from hub.config import Settings
    from hub.runtime import Runtime

    rng = random.Random(seed)
    workload = Workload(seed=seed, clock="virtual", step=timedelta(days=30) / messages)
    customers = max(1, messages // 10)
    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    try:
        firsts = [workload.interaction(first_contact=True) for _ in range(customers)]
        runtime.record_now([to_inbound(b) for b in firsts])
        known = [c.address for c in workload.customers]
        for start in range(0, messages, CHUNK):
            bodies = []
            for _ in range(min(CHUNK, messages - start)):
                body = workload.interaction(first_contact=False) | {"direction": "inbound"}
                if rng.random() < MENTION_SHARE:
                    body["text"] += " " + _mention(rng, known, body["address"])
                bodies.append(body)
            runtime.record_now([to_inbound(b) for b in bodies])
    finally:
        runtime.stop()


def _mention(rng: random.Random, known: list[str], own: str) -> str:
    """A sentence naming an address: another customer's (half the time) or a new one."""
    if rng.random() < 0.5:
        other = rng.choice(known)
        if other != own and not other.startswith("chat:"):
            return f"You can also reach me at {other.partition(':')[2]}."
    return f"My other email is someone.{rng.randrange(10**9)}@mail.example.net"


def chunks(data_dir: Path) -> list[list[Any]]:
    """The published events, cut after every 1,000th inbound message."""
    from hub.config import Settings
    from hub.store import open_store

    store = open_store(Settings(data_dir=data_dir))
    try:
        found: list[list[Any]] = [[]]
        inbound = 0
        position = 0
        while True:
            envelopes, position = store.read_envelopes(position, 5000)
            if not envelopes:
                break
            for envelope in envelopes:
                found[-1].append(envelope)
                if envelope.type == "interaction.received.v1":
                    inbound += 1
                    if inbound % CHUNK == 0:
                        found.append([])
        return [c for c in found if c]
    finally:
        store.close()


def apply_both(workdir: Path, batches: list[list[Any]]) -> dict[str, list[float]]:
    """Seconds per chunk, with and without the duplicates projection, and of the duplicates
    projection's own ``apply`` (``own``) in the first."""
    from hub.projections import Views, default_projections
    from hub.store.database import create_db_engine

    views = {}
    for name in ("with", "without"):
        engine = create_db_engine(f"sqlite:///{workdir / f'views-{name}.db'}", synchronous="NORMAL")
        projections = [p for p in default_projections() if name == "with" or p.name != "duplicates"]
        views[name] = Views(engine, projections)
        views[name].create()
    took: dict[str, list[float]] = {"with": [], "without": [], "own": []}
    duplicates = views["with"].by_name("duplicates")
    inner = duplicates.apply

    def timed(conn: Any, events: Any) -> None:
        started = time.perf_counter()
        inner(conn, events)
        took["own"].append(time.perf_counter() - started)

    duplicates.apply = timed  # type: ignore[method-assign]
    for index, batch in enumerate(batches):
        order = ("with", "without") if index % 2 == 0 else ("without", "with")
        for name in order:
            started = time.perf_counter()
            views[name].apply(batch, up_to=batch[-1].position)
            took[name].append(time.perf_counter() - started)
    return took


def run(scale: Scale, workdir: Path) -> Result:
    messages = MESSAGES[scale.name]
    data_dir = workdir / "data"
    record(data_dir, messages)
    batches = chunks(data_dir)
    took = apply_both(workdir, batches)
    count = max(1, len(batches) - 1)  # the last chunk holds fewer: left out
    with_ms = statistics.median(took["with"][:count]) * 1000
    without_ms = statistics.median(took["without"][:count]) * 1000
    own_ms = statistics.median(took["own"][:count]) * 1000
    ratio = with_ms / without_ms
    row = Row(
        benchmark=NAME,
        figure=f"{with_ms:,.0f} ms per 1,000 inbound messages applied with the duplicates "
        f"projection (median of {count} chunks; {messages:,} messages, "
        f"{messages // 10:,} customers, {MENTION_SHARE:.0%} mention an address); the "
        f"projection's own apply: {own_ms:,.0f} ms",
        target="—",
        baseline=f"the same chunks without it: {without_ms:,.0f} ms",
        ratio=ratio,
        ratio_label="with / without (median chunk)",
        met=None,
        value=with_ms,
        unit="ms",
    )
    raw = {
        "with_seconds": took["with"],
        "without_seconds": took["without"],
        "own_seconds": took["own"],
        "chunks": count,
    }
    return Result(NAME, [row], raw)


if __name__ == "__main__":  # python -m bench.duplicates [quick|default|full]
    from bench.harness import TempDir

    chosen = SCALES[sys.argv[1] if len(sys.argv) > 1 else "quick"]
    with TempDir(NAME, keep=False) as directory:
        result = run(chosen, directory)
    for line in result.rows:
        print(f"{line.figure}\n  baseline: {line.baseline}\n  ratio {line.ratio:.2f}")
