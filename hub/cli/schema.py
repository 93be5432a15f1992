"""``hub schema``: the published event schemas, the event catalogue and the AsyncAPI document,
from the models."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hub import __version__
from hub.events.asyncapi import asyncapi_document
from hub.events.catalogue import export_schemas, render_catalogue

schema_app = typer.Typer(help="Published event schemas.", no_args_is_help=True)


@schema_app.command("export")
def schema_export(directory: Path) -> None:
    """Write one JSON Schema file per published event type (and the inbound contract)."""
    written = export_schemas(directory)
    for path in written:
        typer.echo(str(path))


@schema_app.command("catalogue")
def schema_catalogue() -> None:
    """Print the event catalogue (docs/events.md) generated from the models."""
    typer.echo(render_catalogue(), nl=False)


@schema_app.command("asyncapi")
def schema_asyncapi() -> None:
    """Print the AsyncAPI 3.0 document (JSON) of hub.events and hub.inbound."""
    # The stream package loads aiokafka: only for this command (see hub.cli).
    from hub.config import KafkaSettings
    from hub.stream.topics import Topics

    topics = Topics.from_settings(KafkaSettings())  # the names without a prefix
    document = asyncapi_document(__version__, topics.events, topics.inbound)
    typer.echo(json.dumps(document, indent=2))
