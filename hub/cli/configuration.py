"""Configuration: ``hub config show`` (the effective settings, secrets masked) and
``hub keygen`` (a key for the settings that take one)."""

from __future__ import annotations

import base64
import json
import os

import typer

from hub.cli.shared import DataDir, settings_from
from hub.connectors.registry import channel_states

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command("show")
def config_show(data_dir: DataDir = None) -> None:
    """The effective configuration, secrets masked, and which channel connectors are on."""
    settings = settings_from(data_dir=data_dir)
    shown = settings.masked() | {"channels": channel_states(settings)}
    typer.echo(json.dumps(shown, indent=2, default=str))


def keygen() -> None:
    """Print a fresh 32-byte key (base64) for HUB_MASTER_KEY or HUB_ADDRESS_PEPPER."""
    typer.echo(base64.b64encode(os.urandom(32)).decode())
