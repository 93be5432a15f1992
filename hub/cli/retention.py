"""``hub retention``: make personal data older than the retention period unreadable now."""

from __future__ import annotations

import typer

retention_app = typer.Typer(help="Retention of personal data by age.", no_args_is_help=True)
