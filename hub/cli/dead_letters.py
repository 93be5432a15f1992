"""``hub dead-letters``: what was received but could not be recorded, listed, shown, retried,
dropped and purged; works on a stopped hub's data directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from hub.cli.shared import DataDir, open_runtime
from hub.domain.errors import NotFound

if TYPE_CHECKING:
    from hub.runtime import Runtime


dead_letters_app = typer.Typer(
    help="What was received but could not be recorded, kept whole and encrypted.",
    no_args_is_help=True,
)
LetterId = Annotated[UUID, typer.Argument(help="A dead letter's id (from list).")]


@contextlib.contextmanager
def _letters_of(data_dir: Path | None) -> Iterator[Runtime]:
    """The runtime of the hub at ``data_dir``, stopped afterwards; an unknown letter id ends
    the command with its message and exit status 1."""
    runtime = open_runtime(data_dir)
    try:
        yield runtime
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.stop()


@dead_letters_app.command("list")
def dead_letters_list(
    kind: Annotated[str | None, typer.Option(help="email, webhook or interaction.")] = None,
    source: Annotated[str | None, typer.Option(help="A connector, or hub.inbound.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    data_dir: DataDir = None,
) -> None:
    """Dead letters, newest first: id, received, kind, source, size, failed retries, reason."""
    from hub.store.dead_letters import KINDS

    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(KINDS)}")
    with _letters_of(data_dir) as runtime:
        letters = runtime.dead_letters.list(limit, kind=kind, source=source)
    for letter in letters:
        typer.echo(
            f"{letter.id}  {letter.received_at:%Y-%m-%d %H:%M}  {letter.kind:<11} "
            f"{letter.source:<12} {letter.size:>9}  {letter.attempts:>2}  {letter.reason[:100]}"
        )


@dead_letters_app.command("show")
def dead_letters_show(letter_id: LetterId, data_dir: DataDir = None) -> None:
    """One dead letter as JSON, with its original decrypted (credentials masked)."""
    from hub.api.routes.dead_letters import DeadLetterOut, readable

    with _letters_of(data_dir) as runtime:
        letter = runtime.dead_letters.get(letter_id)
    assert letter.original is not None
    shown = DeadLetterOut.of(letter).model_dump(mode="json")
    shown["original"] = readable(letter.original).model_dump(mode="json")
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@dead_letters_app.command("retry")
def dead_letters_retry(letter_id: LetterId, data_dir: DataDir = None) -> None:
    """Hand the original to the path it came in by again and record it (once: what the
    store holds already is not recorded again). Exits 1 when it still fails; the letter then
    stays with the new error. Works on a stopped hub's data directory."""
    with _letters_of(data_dir) as runtime:
        outcome = asyncio.run(runtime.gateway.retry(letter_id))
    if not outcome.succeeded:
        typer.echo(
            f"{letter_id} still fails (attempt {outcome.letter.attempts}): {outcome.error}",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"{letter_id} recorded: {outcome.recorded} new, {outcome.duplicates} already "
        f"recorded, {outcome.reports} delivery report(s); the dead letter is gone"
    )


@dead_letters_app.command("drop")
def dead_letters_drop(letter_id: LetterId, data_dir: DataDir = None) -> None:
    """Forget a dead letter and its original."""
    with _letters_of(data_dir) as runtime:
        dropped = runtime.dead_letters.drop(letter_id)
    if not dropped:
        typer.echo(f"no dead letter {letter_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"dropped {letter_id}")


@dead_letters_app.command("purge")
def dead_letters_purge(
    older_than_days: Annotated[
        float | None,
        typer.Option(min=0, help="Default: HUB_DEAD_LETTER_RETENTION (30 days)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Drop the dead letters received longer ago than the retention (a running hub also
    does this hourly)."""
    with _letters_of(data_dir) as runtime:
        retention = (
            timedelta(days=older_than_days)
            if older_than_days is not None
            else runtime.settings.dead_letter_retention
        )
        purged = runtime.dead_letters.purge_expired(retention)
    typer.echo(f"purged {purged} dead letter(s) older than {retention}")
