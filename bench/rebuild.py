"""rebuild: replay the whole store into freshly reset projections, as ``hub projections
rebuild`` does (reset each projection, then a LogFollower with batches of 5,000 catches up).

The dataset is recorded in-process through the runtime first (untimed). Figures: events
applied per second, counted as (projection, event) pairs like the CLI reports, and store
notifications covered per second.

Baseline, same run, same store: reading the notification log in pages of 5,000 and decoding
every notification to its domain event (``recorder.select_notifications`` +
``mapper.to_domain_event``) and nothing else. The ratio compares notifications per second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import Result, Row, Scale
from bench.workload import build_dataset

NAME = "rebuild"
PAGE = 5000
TARGET = 20_000.0


def decode_log(runtime: Any) -> dict[str, float]:
    """Read and decode every notification, nothing else."""
    recorder = runtime.store.app.recorder
    to_domain_event = runtime.store.app.mapper.to_domain_event
    started = time.perf_counter()
    position = 0
    count = 0
    while True:
        page = recorder.select_notifications(start=position, limit=PAGE, inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            to_domain_event(notification)
        count += len(page)
        position = page[-1].id
    elapsed = time.perf_counter() - started
    return {"notifications": count, "seconds": elapsed, "rate": count / elapsed}


def rebuild_all(runtime: Any) -> dict[str, float]:
    """What ``hub projections rebuild`` does, timed like it (after the resets)."""
    from hub.embedded.follower import LogFollower

    names = [p.name for p in runtime.views.projections]
    for name in names:
        runtime.views.reset(name)
    started = time.perf_counter()
    follower = LogFollower(runtime.store, runtime.views, batch_size=PAGE, only=names)
    applied = follower.catch_up()
    elapsed = time.perf_counter() - started
    return {
        "applied": applied,
        "notifications": follower.position,
        "seconds": elapsed,
        "rate": applied / elapsed,
        "notification_rate": follower.position / elapsed,
    }


def run(scale: Scale, workdir: Path) -> Result:
    from hub.config import Settings
    from hub.runtime import Runtime

    interactions = scale.rebuild_interactions
    dataset = build_dataset(
        workdir / "data", customers=max(1, interactions // 10), messages=interactions, seed=31
    )
    runtime = Runtime(Settings(data_dir=dataset.data_dir))
    runtime.start()
    try:
        decode_log(runtime)  # warm the page cache and the code, untimed
        baseline = decode_log(runtime)
        hub = rebuild_all(runtime)
    finally:
        runtime.stop()
    ratio = hub["notification_rate"] / baseline["rate"]
    row = Row(
        benchmark=NAME,
        figure=f"{hub['rate']:,.0f} events/s applied ({hub['applied']:,.0f} projection events; "
        f"{hub['notification_rate']:,.0f} store events/s of {hub['notifications']:,.0f}, "
        f"from {interactions:,} interactions)",
        target=f">= {TARGET:,.0f} events/s",
        baseline=f"read + decode the log alone: {baseline['rate']:,.0f} store events/s",
        ratio=ratio,
        ratio_label="rebuild / decode (store events/s)",
        met=hub["rate"] >= TARGET,
        value=hub["rate"],
        unit="events/s",
    )
    raw = {
        "hub": hub,
        "baseline": baseline,
        "dataset": {
            "interactions": dataset.interactions,
            "customers": len(dataset.customer_ids),
            "stored_events": dataset.stored_events,
            "record_seconds": dataset.record_seconds,
        },
    }
    return Result(NAME, [row], raw)
