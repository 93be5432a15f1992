"""The results table, and docs/performance.md with the table between its markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import Result

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

INTRO = """# Performance

How fast the Interaction Hub is, measured by `python -m bench` (the `bench/` package). Speed is
measured here and never in timed tests. Machines are noisy, so **every figure comes with a
baseline measured in the same run, and the ratio between the two**: compare ratios across runs
and machines, absolute figures only on the same machine.

## What is measured

- **batch_ingest**: POST /v1/interactions/batch with 1,000 interactions per request to a real
  `hub serve` (SQLite): 10% first contacts, the rest returning customers over SMS, WhatsApp,
  email (threaded with `thread_ref`) and chat. Interactions/s from the first request until all
  are recorded **and** visible (/readyz `lag` 0). Target >= 5,000/s. Baseline: eventsourcing's
  SQLite recorder alone, in-process, inserting 1,000 pre-built ~400-byte StoredEvents per call.
- **single_ingest**: POST /v1/interactions, one interaction per request, from 16 (full: 32)
  keep-alive connections of one asyncio client for a fixed time; req/s. Baseline: a trivial
  FastAPI POST that parses a similar body (`bench/baseline_app.py`) under uvicorn in its own
  process, same client and bodies. Target: ratio >= 0.5.
- **rebuild**: `hub projections rebuild`, in-process: reset every projection, then a LogFollower
  with batches of 5,000 catches up. (projection, event) pairs applied per second, and store
  events per second. Target >= 20,000 events/s. Baseline: reading the notification log in pages
  of 5,000 and decoding every event, nothing else (ratio of store events/s).
- **timeline_read**: GET /v1/customers/{id}/timeline?limit=50 for random customers, sequential
  keep-alive requests; p50/p95/p99. Target p99 <= 10 ms. Baseline: GET /healthz, interleaved
  request by request on the same connection (ratio p99 / p99).
- **freshness**: a steady, open-loop 1,000 interactions/s (20 singles every 20 ms when the server
  sustains singles with 30% headroom, else a batch of 10 every 10 ms; the table says which) for
  20 s (full: 60 s). For 10 sampled interactions a second, the time from the 202 until the
  interaction is on its customer's timeline (polled every 5 ms). Target p99 <= 200 ms; baseline:
  the acknowledgement latency of the same requests, measured from when each was due (p99 /
  p99). Also the server's peak RSS during the load, target <= 400 MiB; baseline: its RSS idle
  after start.

Sizes (`--scale`): `default` finishes in a few minutes on 2 cores (20 batches of 1,000;
10 s of singles; a 50,000-interaction rebuild; 10,000 customers / 100,000 messages for the
timeline; 20 s of freshness load); `full` is the size the targets are stated for (100 batches;
30 s; 250,000 interactions; 100,000 customers / 1,000,000 messages; 60 s; about 40 min on
2 cores, 25 of them building the 1,000,000-message dataset); `quick` only checks that
everything runs. Datasets are built in-process through the runtime (untimed).
Servers run at log level WARNING (no per-request access log), the baseline app too.

## Reading the table

- **ratio** is the figure divided by the baseline of the same run, formed as its label says;
  it is the number to compare between runs and machines. **met?** compares the figure (for
  `single_ingest` the ratio) with the target.
- The run line names the commit; `+hub changes` means `hub/` had uncommitted edits. It also
  gives the load average when the run started: other work on the machine lowers the figures.
- `freshness` measures from each acknowledgement. When the server cannot take the offered
  rate, requests queue (see the acknowledgement latency, counted from when each was due) and
  the row says that the server fell behind; the target is then not met whatever the p99.

## How to run

```
cd /work/main && .venv/bin/python -m bench               # default scale, rewrites the table below
.venv/bin/python -m bench --scale full                     # full size (long)
.venv/bin/python -m bench --only timeline_read             # one benchmark; prints, docs untouched
.venv/bin/python -m bench --json results.json              # also dump the raw measurements
```

`make bench` runs the default. A run of every benchmark rewrites the part of this file between
the `bench` markers; `--only` and `--no-docs` runs leave the file alone.

## The machine

{machine}

## Results
"""


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['nproc']} CPUs (`nproc`), {machine['cpu']}, "
        f"{machine['memory_gib']} GiB memory, Python {machine['python']}, {machine['platform']}"
    )


def _ratio(result_ratio: float | None, label: str) -> str:
    if result_ratio is None:
        return "-"
    return f"{result_ratio:.3g} ({label})"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[met]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(results: list[Result]) -> str:
    lines = [
        "| benchmark | figure | target | baseline (same run) | ratio | met? |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        if result.error:
            lines.append(f"| {result.name} | error: {_cell(result.error)} | | | | **error** |")
            continue
        for row in result.rows:
            cells = (
                row.benchmark,
                row.figure,
                row.target,
                row.baseline,
                _ratio(row.ratio, row.ratio_label),
                _met(row.met),
            )
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def results_block(results: list[Result], meta: dict[str, Any]) -> str:
    durations = ", ".join(f"{r.name} {r.seconds:.0f} s" for r in results)
    return "\n".join(
        [
            BEGIN,
            f"Run {meta['started']} at scale `{meta['scale']}`, commit `{meta['commit']}`, "
            f"{meta['seconds'] / 60:.1f} min in all ({durations}).",
            f"Machine: {machine_line(meta['machine'])}; load average "
            f"{meta['load_average']:.2f} at the start.",
            "",
            table(results),
            END,
        ]
    )


def write_docs(path: Path, results: list[Result], meta: dict[str, Any]) -> None:
    """Replace the block between the markers, creating the file with its intro if needed."""
    block = results_block(results, meta)
    if path.exists():
        text = path.read_text()
    else:
        machine = f"The figures committed first were measured on: {machine_line(meta['machine'])}."
        text = INTRO.replace("{machine}", machine) + "\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
