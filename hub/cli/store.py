"""``hub store``: a hub's events, data keys and API tokens exported to a file and imported into
another store (``hub.store.transfer``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub.cli.shared import DataDir, settings_from

store_app = typer.Typer(help="The event store: export and import.", no_args_is_help=True)
ExportFile = Annotated[
    Path, typer.Argument(help="The export file: JSON Lines, gzip when the name ends in .gz.")
]


@store_app.command("export")
def store_export(file: ExportFile, data_dir: DataDir = None) -> None:
    """Write the store's events, data keys and API tokens to FILE (stop the hub first).

    Events stay encrypted, data keys wrapped by the master key, tokens hashed."""
    from hub.store.transfer import TransferError, export_store

    try:
        summary = export_store(settings_from(data_dir=data_dir), file)
    except TransferError as exc:  # (a ConfigurationError is main()'s: exit 2)
        typer.echo(f"export failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(summary.lines()))


@store_app.command("import")
def store_import(file: ExportFile, data_dir: DataDir = None) -> None:
    """Load FILE into the empty store the settings describe (e.g. HUB_STORE_URL).

    The target needs the source's HUB_MASTER_KEY and HUB_ADDRESS_PEPPER. Running the same
    import again completes one that failed."""
    from hub.store.transfer import TransferError, import_store

    try:
        summary = import_store(settings_from(data_dir=data_dir), file)
    except TransferError as exc:  # (a ConfigurationError is main()'s: exit 2)
        typer.echo(f"import failed: {exc}", err=True)
        raise typer.Exit(1) from None
    rebuild = "hub projections rebuild" + (f" --data-dir {data_dir}" if data_dir else "")
    typer.echo("\n".join(summary.lines(rebuild)))
