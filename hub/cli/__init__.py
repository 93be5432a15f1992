"""The ``hub`` command: serve, schemas, projections, tokens, configuration.

The root command and :func:`main` (the ``hub`` script); each group of commands is a module:
:mod:`~hub.cli.serving` (``serve``, ``run <role>``), :mod:`~hub.cli.status` (``status``,
``kafka``), :mod:`~hub.cli.tokens`, :mod:`~hub.cli.projections`, :mod:`~hub.cli.store`,
:mod:`~hub.cli.dead_letters`, :mod:`~hub.cli.schema` and :mod:`~hub.cli.configuration`
(``config``, ``keygen``); what they share is in :mod:`~hub.cli.shared`.

The CLI is the composition root, so it may import any package (docs/architecture.md). Its
modules import the runtime, the web stack, the store and the stream inside the commands that
use them: loading them all costs about 2 s, which ``hub keygen`` or ``hub --help`` should not
pay (the import graph still sees these imports).
"""

from __future__ import annotations

import typer

from hub.cli.configuration import config_app, keygen
from hub.cli.customers import customers_app
from hub.cli.dead_letters import dead_letters_app
from hub.cli.projections import projections_app
from hub.cli.retention import retention_app
from hub.cli.schema import schema_app
from hub.cli.serving import run_app, serve
from hub.cli.shared import limit_malloc_arenas, tune_garbage_collector
from hub.cli.status import kafka_app, status
from hub.cli.store import store_app
from hub.cli.tokens import tokens_app
from hub.config import ConfigurationError, InvalidSettings

__all__ = ["app", "main"]

app = typer.Typer(help="Interaction Hub: one unified timeline per customer.", no_args_is_help=True)
# In the order `hub --help` lists them.
app.command()(serve)
app.command()(status)
app.command()(keygen)
app.add_typer(schema_app, name="schema")
app.add_typer(projections_app, name="projections")
app.add_typer(tokens_app, name="tokens")
app.add_typer(config_app, name="config")
app.add_typer(kafka_app, name="kafka")
app.add_typer(run_app, name="run")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(store_app, name="store")
app.add_typer(customers_app, name="customers")
app.add_typer(retention_app, name="retention")


def main() -> None:
    tune_garbage_collector()
    limit_malloc_arenas()
    try:
        app()
    except ConfigurationError as exc:
        # The operator's to fix, not a bug: one line per problem, no traceback.
        problems = exc.problems if isinstance(exc, InvalidSettings) else (str(exc),)
        for problem in problems:
            typer.echo(problem, err=True)
        raise SystemExit(2) from None
