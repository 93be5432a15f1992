"""Benchmarks of the Interaction Hub: ``python -m bench`` (see docs/performance.md).

Every figure is reported with a baseline measured in the same run and the ratio between the
two, because absolute numbers move with the machine and its noise while ratios move less.
Speed is measured here, never in timed tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scale:
    """Sizes of one run. ``default`` finishes in a few minutes on 2 cores; ``full`` is the
    size the targets are stated for; ``quick`` only checks that everything runs."""

    name: str
    batch_batches: int  # timed batches of 1,000 interactions
    single_seconds: float
    single_connections: int
    rebuild_interactions: int
    timeline_customers: int
    timeline_messages: int
    timeline_requests: int
    freshness_seconds: float
    freshness_samples_per_second: float
    seed_customers: int  # returning customers created before the timed ingest phases
    dispatch_messages: int  # replies per channel in bench.channels
    console_interactions: int  # the big customer of bench.console
    console_requests: int  # timed loads of each page
    erase_messages: int  # the erased customer's messages in bench.erase (and as many others')
    soak_seconds: float  # how long bench.soak and bench.kafka_soak hold their load
    #: What they offer, interactions/s (new ones and agents' replies): ``--soak-rate`` lowers
    #: it on an instance too slow for the machine kind's figure, which a row then names.
    soak_rate: float = 200.0


SCALES: dict[str, Scale] = {
    "quick": Scale(
        name="quick",
        batch_batches=3,
        single_seconds=2.0,
        single_connections=16,
        rebuild_interactions=3_000,
        timeline_customers=500,
        timeline_messages=5_000,
        timeline_requests=300,
        freshness_seconds=4.0,
        freshness_samples_per_second=10.0,
        seed_customers=500,
        dispatch_messages=100,
        console_interactions=2_000,
        console_requests=20,
        erase_messages=2_000,
        soak_seconds=60.0,
    ),
    "default": Scale(
        name="default",
        batch_batches=20,
        single_seconds=10.0,
        single_connections=16,
        rebuild_interactions=50_000,
        timeline_customers=10_000,
        timeline_messages=100_000,
        timeline_requests=3_000,
        freshness_seconds=20.0,
        freshness_samples_per_second=10.0,
        seed_customers=2_000,
        dispatch_messages=500,
        console_interactions=10_000,
        console_requests=100,
        erase_messages=10_000,
        soak_seconds=600.0,
    ),
    "full": Scale(
        name="full",
        batch_batches=100,
        single_seconds=30.0,
        single_connections=32,
        rebuild_interactions=250_000,
        timeline_customers=100_000,
        timeline_messages=1_000_000,
        timeline_requests=20_000,
        freshness_seconds=60.0,
        freshness_samples_per_second=10.0,
        seed_customers=10_000,
        dispatch_messages=2_000,
        console_interactions=10_000,
        console_requests=300,
        erase_messages=10_000,
        soak_seconds=1_800.0,
    ),
}


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    figure: str  # what was measured, with its value and unit
    target: str
    baseline: str  # what the baseline is and its value in this run
    ratio: float | None
    ratio_label: str  # how the ratio is formed, e.g. "hub / raw"
    met: bool | None  # None: no target for this line
    value: float = 0.0  # the headline number, for --json consumers
    unit: str = ""


@dataclass
class Result:
    name: str
    rows: list[Row]
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest-rank on the sorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
