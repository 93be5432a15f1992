"""How a hub is doing: ``hub status`` (positions and lag, with ``--kafka`` the nodes and
partitions of the distributed runtime) and ``hub kafka init`` (the broker's topics)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from hub.cli.shared import DataDir, Kafka, open_runtime, settings_from

kafka_app = typer.Typer(help="The Kafka broker of the distributed runtime.", no_args_is_help=True)


def status(data_dir: DataDir = None, kafka: Kafka = False) -> None:
    """Store position, projection positions and lag; with --kafka, the running nodes and
    their roles, the relay, and the lag of each stage and partition."""
    if not kafka:
        runtime = open_runtime(data_dir)
        try:
            typer.echo(json.dumps(runtime.status(), indent=2))
        finally:
            runtime.stop()
        return
    # hub.stream brings Faust and aiokafka: only the distributed runtime's commands import
    # it, so `hub serve` and the embedded commands never load them.
    from hub.stream.runtime import DistributedRuntime

    distributed = DistributedRuntime(settings_from(data_dir=data_dir), roles=())
    distributed.start()

    async def measure() -> dict[str, Any]:
        await distributed.start_async()
        try:
            return await asyncio.to_thread(distributed.status)
        finally:
            await distributed.stop_async()

    try:
        typer.echo(json.dumps(asyncio.run(measure()), indent=2))
    finally:
        distributed.stop()


@kafka_app.command("init")
def kafka_init() -> None:
    """Create the hub's topics (partitions and replication from HUB_KAFKA__*), check existing ones.
    Exits 1 when an existing topic differs from the configuration."""
    from hub.stream.topics import ensure_topics  # aiokafka: see status

    reports = asyncio.run(ensure_topics(settings_from().kafka))
    for report in reports:
        state = "created" if report.created else "exists"
        line = f"{report.name}: {state}, {report.partitions} partitions"
        typer.echo(line + (f" - {report.problem}" if report.problem else ""))
    if any(r.problem for r in reports):
        raise typer.Exit(1)
