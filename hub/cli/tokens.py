"""``hub tokens``: the API's bearer tokens, created, revoked and listed in the store."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer

from hub.cli.shared import DataDir, open_runtime

tokens_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="admin, agent or service.")],
    name: Annotated[str, typer.Option(help="Who or what will use it.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a token; it is shown once."""
    from hub.store.tokens import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    runtime = open_runtime(data_dir)
    try:
        token_id, token = runtime.tokens.create(role, name or role)
    finally:
        runtime.stop()
    typer.echo(f"id:    {token_id}\ntoken: {token}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: UUID, data_dir: DataDir = None) -> None:
    """Revoke a token by id (takes effect within seconds in running processes)."""
    runtime = open_runtime(data_dir)
    try:
        revoked = runtime.tokens.revoke(token_id)
    finally:
        runtime.stop()
    if not revoked:
        typer.echo(f"no active token {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


@tokens_app.command("list")
def tokens_list(data_dir: DataDir = None) -> None:
    """Tokens (ids, names, roles; never the tokens themselves)."""
    runtime = open_runtime(data_dir)
    try:
        for info in runtime.tokens.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            typer.echo(f"{info.token_id}  {info.role:<8} {state:<18} {info.name}")
    finally:
        runtime.stop()
