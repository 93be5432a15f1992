"""``python -m bench.scheduler_cost [--rounds N] [--seconds S]``: what the scheduler's
wake-ups cost single requests (issue 20, step 0).

``hub serve`` under the single_ingest load (16 connections, one interaction a request, 2,000
seeded customers), with the scheduler (the default) and without it
(``HUB_AUTOMATION__ENABLED=false``), in turns: requests per second and latency of each. Every
commit wakes the scheduler, which reads the log again; docs/performance.md ("Issue 20, step
0") has the figures and the profile that led here. Prints the figures; not a row of
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.client import install_uvloop
from bench.harness import auth_headers, hub_server
from bench.single_ingest import _seed, closed_loop, interaction_requests
from bench.workload import Workload

CONFIGURATIONS = {"default": {}, "no scheduler": {"automation__enabled": "false"}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    install_uvloop()
    for _ in range(args.rounds):
        for label, settings in CONFIGURATIONS.items():
            workload = Workload(seed=22, new_share=0.1)
            with (
                tempfile.TemporaryDirectory() as work,
                hub_server(Path(work) / "hub", **settings) as server,
            ):
                asyncio.run(_seed(server.port, workload, 2000))
                requests = interaction_requests(server.port, workload, auth_headers())
                found = asyncio.run(closed_loop(server.port, requests, 16, args.seconds, server))
            print(
                f"{label}: {found['rate']:,.0f} req/s, p50 {found['latency_p50_ms']:.0f} / "
                f"p99 {found['latency_p99_ms']:.0f} ms, server CPU {found['server_cpu_share']:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
