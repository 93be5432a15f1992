"""``hub projections``: the read models, dropped and replayed from the event store."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from hub.cli.shared import DataDir, Kafka, open_runtime

projections_app = typer.Typer(help="Read models built from the events.", no_args_is_help=True)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="One projection; default: all.")] = None,
    data_dir: DataDir = None,
    kafka: Kafka = False,
) -> None:
    """Drop a projection's tables and replay it from the event store. With --kafka (stop the
    project workers first), every hub.events partition then counts as applied up to the
    rebuilt position, so the projectors go on from there without applying anything twice."""
    from hub.embedded.follower import LogFollower

    # hub.stream brings aiokafka: imported by the commands that may use it, never by `hub serve`.
    from hub.stream.nodes import running_nodes
    from hub.stream.topics import Topics, partition_count

    runtime = open_runtime(data_dir)
    try:
        if kafka:
            busy = [
                n["node_id"]
                for n in running_nodes(runtime.store.state_engine)
                if n["alive"] and "project" in n["roles"]
            ]
            if busy:
                typer.echo(f"stop the project workers first: {', '.join(busy)}", err=True)
                raise typer.Exit(1)
        names = [name] if name else [p.name for p in runtime.views.projections]
        for one in names:
            try:
                runtime.views.reset(one)
            except KeyError:
                known = ", ".join(p.name for p in runtime.views.projections)
                raise typer.BadParameter(f"unknown projection {one!r} (known: {known})") from None
        started = time.perf_counter()
        follower = LogFollower(runtime.store, runtime.views, batch_size=5000, only=names)
        applied = follower.catch_up()
        elapsed = time.perf_counter() - started
        typer.echo(
            f"rebuilt {', '.join(names)}: {applied} events applied in {elapsed:.2f}s, "
            f"position {follower.position}"
        )
        if kafka:
            topic = Topics.from_settings(runtime.settings.kafka).events
            partitions = asyncio.run(partition_count(runtime.settings.kafka, topic))
            runtime.views.rebuilt_up_to(names, topic, partitions, follower.position)
            typer.echo(f"{topic}: {partitions} partitions marked applied up to there")
    finally:
        runtime.stop()
