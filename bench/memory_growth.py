"""Resident memory of ``hub serve`` by how many interactions (and customers) it has seen, as
fast as it takes them, for the code on ``PYTHONPATH``:
``python -m bench.memory_growth [STEPS] [PER_STEP]`` (default 10 steps of 12,000).

bench.soak's question without its clock: a soak's memory grows with the customers its caches
meet, and 200 interactions/s for 10 minutes (bench.soak) is 10 steps of 12,000 here (10%
first contacts, 2,000 returning customers seeded first, as there), posted in batches of 200.
After each step the projections are caught up and the RSS of the server and of its
projection process is sampled. Its growth from the first step to the last is bench.soak's
"after the first minute", on an instance too slow to hold the soak's rate; it leaves out
the soak's replies, timeline reads and live feeds. Run it in turns against two worktrees to
compare commits (docs/performance.md, issue 20).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.client import Connection, install_uvloop, post_batch, wait_caught_up
from bench.harness import auth_headers, hub_server, proc_status_kib, process_tree
from bench.workload import Workload

SEED = 2_000
BATCH = 200


def _rss_mib(pid: int) -> tuple[float, float]:
    """(the server's own, its projection process's) RSS in MiB."""
    tree = process_tree(pid)
    own = proc_status_kib(pid, "VmRSS")
    children = sum(proc_status_kib(p, "VmRSS") for p in tree if p != pid)
    return own / 1024, children / 1024


async def _run(port: int, pid: int, steps: int, per_step: int) -> list[dict[str, Any]]:
    workload = Workload(seed=61, new_share=0.1)
    conn = await Connection(port, auth_headers()).open()
    try:
        for start in range(0, SEED, 1000):
            await post_batch(conn, workload.seed_customers(min(1000, SEED - start)))
        await wait_caught_up(conn, 120)
        samples = []
        for step in range(1, steps + 1):
            for _ in range(per_step // BATCH):
                await post_batch(conn, workload.batch(BATCH))
            await wait_caught_up(conn, 300)
            server, child = _rss_mib(pid)
            samples.append(
                {
                    "step": step,
                    "interactions": step * per_step,
                    "customers": len(workload.customers),
                    "server_mib": server,
                    "child_mib": child,
                }
            )
            print(
                f"step {step}: {step * per_step:,} interactions, {len(workload.customers):,} "
                f"customers: server {server:,.0f} + projections {child:,.0f} = "
                f"{server + child:,.0f} MiB",
                flush=True,
            )
        return samples
    finally:
        await conn.close()


def main(steps: int, per_step: int) -> list[dict[str, Any]]:
    install_uvloop()
    with tempfile.TemporaryDirectory() as tmp, hub_server(Path(tmp) / "hub") as server:
        return asyncio.run(_run(server.port, server.pid, steps, per_step))


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    per_step = int(sys.argv[2]) if len(sys.argv) > 2 else 12_000
    samples = main(steps, per_step)
    first, last = samples[0], samples[-1]
    total = [s["server_mib"] + s["child_mib"] for s in (first, last)]
    print(
        f"growth after step 1: {total[1] / total[0] - 1:+.1%} ({total[0]:,.0f} -> "
        f"{total[1]:,.0f} MiB; server {last['server_mib'] - first['server_mib']:+.0f}, "
        f"projections {last['child_mib'] - first['child_mib']:+.0f} MiB)"
    )
