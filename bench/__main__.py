"""``python -m bench [--scale default|full|quick] [--only NAME] [--json PATH] [--no-docs]``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import SCALES, Result, Scale
from bench.harness import TempDir, machine
from bench.report import table, write_docs
from hub.cli.shared import tune_garbage_collector

#: Run order: cheap and independent first, the dataset builders after, the long soak last of the
#: embedded rows; then the distributed runtime (Kafka and PostgreSQL), its soak last.
BENCHMARKS = (
    "batch_ingest",
    "single_ingest",
    "freshness",
    "timeline_read",
    "history",
    "segments",
    "duplicates",
    "search",
    "rebuild",
    "reports",
    "channels",
    "console",
    "erase",
    "webhooks",
    "automation",
    "soak",
    "kafka_ingest",
    "kafka_projection",
    "kafka_freshness",
    "kafka_broker_soak",
    "kafka_soak",
)
ROOT = Path(__file__).resolve().parents[1]


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hub"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+hub changes" if dirty else "")


def run_one(name: str, scale: Scale, keep: bool) -> Result:
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    with TempDir(name, keep=keep) as workdir:
        try:
            result: Result = module.run(scale, workdir)
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            result = Result(name, [], error=f"{type(exc).__name__}: {exc}")
        if keep:
            print(f"  kept {workdir}", file=sys.stderr)
    result.seconds = time.perf_counter() - started
    return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="repeatable")
    parser.add_argument("--json", type=Path, help="write the raw results to this file")
    parser.add_argument(
        "--docs", type=Path, default=ROOT / "docs" / "performance.md", help="table goes here"
    )
    parser.add_argument("--no-docs", action="store_true", help="leave the docs alone")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dirs")
    parser.add_argument(
        "--soak-rate",
        type=float,
        help="interactions/s the soaks offer (default 200; lower on an instance too slow for "
        "it, and say so: the growth depends on how many customers arrive)",
    )
    args = parser.parse_args(argv)
    # What runs in this process (a rebuild, the recorders) runs as under the `hub` command.
    tune_garbage_collector()

    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    scale = SCALES[args.scale]
    if args.soak_rate is not None:
        scale = dataclasses.replace(scale, soak_rate=args.soak_rate)
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "commit": _commit(),
        "machine": machine(),
        "load_average": os.getloadavg()[0],  # other work on the machine skews the figures
    }
    started = time.perf_counter()
    results: list[Result] = []
    for name in names:
        print(f"[bench] {name} ({args.scale})...", file=sys.stderr, flush=True)
        result = run_one(name, scale, args.keep)
        results.append(result)
        state = f"error: {result.error}" if result.error else "done"
        print(f"[bench] {name} {state} in {result.seconds:.0f} s", file=sys.stderr, flush=True)
        meta["seconds"] = time.perf_counter() - started
        if args.json:  # after every row: a run stopped later keeps the rows it finished
            _write_json(args.json, meta, results)
    meta["seconds"] = time.perf_counter() - started

    print(table(results))
    print(f"\n{len(results)} benchmark(s) in {meta['seconds']:.0f} s", file=sys.stderr)
    # A quick run only checks that everything runs: its figures never replace the table.
    if not args.only and not args.no_docs and args.scale != "quick":
        write_docs(args.docs, results, meta)
        print(f"[bench] wrote {args.docs}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


def _write_json(path: Path, meta: dict[str, Any], results: list[Result]) -> None:
    payload = {"meta": meta, "results": [r.as_dict() for r in results]}
    path.write_text(json.dumps(_json_safe(payload), indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
