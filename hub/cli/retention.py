"""``hub retention``: make personal data older than the retention period unreadable now.

``run`` applies ``HUB_RETENTION__MESSAGE_DAYS`` at once (a running hub does it at start and
daily): the secrets of the days before the cutoff are destroyed, the views blanked, old dead
letters dropped (``hub.runtime.retention``, docs/retention.md). ``status`` says what the
retention is and which days are destroyed already. Both work beside a running hub.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from hub.cli.shared import DataDir, open_runtime

retention_app = typer.Typer(help="Retention of personal data by age.", no_args_is_help=True)

_OFF = (
    "message retention is off: set HUB_RETENTION__MESSAGE_DAYS (days) for message bodies to expire"
)


@retention_app.command("run")
def retention_run(data_dir: DataDir = None) -> None:
    """Expire now the message bodies, subjects and attachments older than
    HUB_RETENTION__MESSAGE_DAYS, everywhere (exit status 1 when no retention is set)."""
    runtime = open_runtime(data_dir)
    try:
        run = runtime.apply_retention()
    finally:
        runtime.stop()
    if run is None:
        typer.echo(_OFF, err=True)
        raise typer.Exit(1)
    typer.echo(run.summary())


@retention_app.command("status")
def retention_status(data_dir: DataDir = None) -> None:
    """The message retention, its cutoff now, and the days whose secrets are destroyed."""
    from hub.store.keys import destroyed_periods

    runtime = open_runtime(data_dir)
    try:
        retention = runtime.settings.retention
        destroyed = destroyed_periods(runtime.store.state_engine)
    finally:
        runtime.stop()
    days = retention.message_days
    if days is None:
        typer.echo(_OFF)
    else:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        typer.echo(f"message bodies kept {days} day(s): expired before {cutoff:%Y-%m-%d %H:%M} UTC")
    if destroyed:
        typer.echo(f"day secrets destroyed: {len(destroyed)} ({destroyed[0]}..{destroyed[-1]})")
    else:
        typer.echo("day secrets destroyed: none")
    typer.echo(f"access log kept {retention.access_log_days} day(s)")
