"""``hub customers``: a data subject's rights from the command line (erase, export); works on
the data directory of a running or stopped hub."""

from __future__ import annotations

import typer

customers_app = typer.Typer(
    help="A customer's personal data: erase it, export it.", no_args_is_help=True
)
