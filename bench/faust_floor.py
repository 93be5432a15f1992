"""The floor of a Faust worker: the hub's Faust batch agent taking hub.events and doing nothing.

Run as ``python -m bench.faust_floor`` (a process of its own, as ``hub run project`` is) by
bench.kafka_projection. The Faust app is built as the webhooks worker's (``hub.stream.app``: the
hub's driver, its consumer settings, ``_batch_agent`` with ``noack_take`` batches of project's
size and one ack per record), in a consumer group of its own, on uvloop as ``hub run`` is; its
handler only counts. What it reaches is what any worker built on Faust this way can reach on
this broker and machine, whatever its handler does: the ceiling the project worker had until it
left Faust's stream (issue 20, step 4).

Prints one JSON line: events, rate (from the first batch handled to the last, as the other
measurements of kafka_projection), and CPU µs per event over the same window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

TIMEOUT = 900.0


async def floor(settings: Any, topic: str, events: int) -> dict[str, Any]:
    from hub.metrics import Metrics
    from hub.stream.app import WorkerHealth, _batch_agent, _faust_app, _raw_topic

    app = _faust_app(settings, "floor")  # its own group: the real worker starts from 0
    done = asyncio.Event()
    seen = 0
    first: tuple[int, float, float] | None = None  # (events, time, CPU) after the first batch
    last = (0.0, 0.0)

    async def handle(batch: Sequence[Any]) -> None:
        nonlocal seen, first, last
        seen += len(batch)
        now, cpu = time.perf_counter(), time.process_time()
        if first is None:
            first = (seen, now, cpu)
        last = (now, cpu)
        if seen >= events:
            done.set()

    _batch_agent(app, _raw_topic(app, topic), "project", handle, Metrics(), WorkerHealth("floor"))
    app.finalize()
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), TIMEOUT)
        await asyncio.sleep(0.2)  # the last acks
    finally:
        await app.stop()
    assert first is not None
    timed = seen - first[0]
    seconds = last[0] - first[1]
    return {
        "events": seen,
        "timed_events": timed,
        "seconds": seconds,
        "rate": timed / seconds,
        "cpu_us_per_event": (last[1] - first[2]) / timed * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    from hub.config import Settings

    settings = Settings()  # the HUB_* environment of the run (its data dir too), as the roles
    print(json.dumps(uvloop.run(floor(settings, args.topic, args.events))), flush=True)


if __name__ == "__main__":
    main()
