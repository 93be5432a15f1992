"""``hub schema``: the published event schemas and the event catalogue, from the models."""

from __future__ import annotations

from pathlib import Path

import typer

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
