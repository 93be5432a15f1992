"""``hub customers``: a data subject's rights from the command line (erase, export); works on
the data directory of a running or stopped hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from hub.cli.shared import DataDir, open_runtime

customers_app = typer.Typer(
    help="A customer's personal data: erase it, export it.", no_args_is_help=True
)


@customers_app.command("erase")
def erase(
    customer_id: Annotated[
        UUID, typer.Argument(help="The customer (any member of a merge group).")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why, a code: data_subject_request, consent_withdrawn, objection, "
            "unlawfully_processed, legal_obligation, child_data, retention_expired, test_data.",
        ),
    ],
    actor: Annotated[str, typer.Option(help="Who asks (recorded in customer.erased.v1).")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Erase a customer's personal data and that of its whole merge group, for good.

    Prints the erased ids; exit status 1 for an unknown customer or reason. A running hub on
    the same data directory learns of it from the log within a second."""
    from hub.domain.errors import InvalidCommand, NotFound

    runtime = open_runtime(data_dir)
    try:
        report = runtime.erase(customer_id, actor=actor, reason=reason)
    except (NotFound, InvalidCommand) as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.stop()
    for erased in report.customer_ids:
        typer.echo(str(erased))
    note = "already erased" if report.already_erased else "erased"
    expiry = report.kafka_copies_expire_by
    typer.echo(
        f"{note}: {len(report.customer_ids)} customer(s)"
        + (f"; copies on Kafka expire by {expiry.isoformat()}" if expiry else ""),
        err=True,
    )


@customers_app.command("export")
def export(
    customer_id: Annotated[
        UUID, typer.Argument(help="The customer (any member of a merge group).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write it to this file (created owner-only, 0600)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Everything the hub holds about a person (the customer's whole merge group) as one
    JSON document (docs/export.md), to standard output or to a file; streamed, in bounded
    memory. Recorded in the access log as `cli:export` by the operating-system user.
    Exit status 1 for an unknown or erased customer."""
    import getpass
    import os
    import sys

    from hub.domain.errors import DomainError
    from hub.runtime.export import prepare_export
    from hub.store.tokens import Principal

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        user = f"uid {os.getuid()}"
    who = Principal(token_id=None, name=f"command line ({user})", role="admin")
    runtime = open_runtime(data_dir)
    try:
        try:
            document = prepare_export(runtime, customer_id)
        except DomainError as exc:
            typer.echo(exc.message, err=True)
            raise typer.Exit(1) from None
        chunks = document.recorded_chunks(who, "cli:export")
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
            return
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with wider access
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.write(b"\n")
        except BaseException:
            output.unlink(missing_ok=True)  # no half document left behind
            raise
        stats = document.stats
        typer.echo(
            f"wrote {output}: customers {', '.join(map(str, document.customer_ids))}; "
            f"{stats.conversations} conversation(s), {stats.messages} message(s), "
            f"{stats.notes} note(s), {stats.scheduled_messages} scheduled message(s)",
            err=True,
        )
    finally:
        runtime.stop()


@customers_app.command("export-schema")
def export_schema() -> None:
    """Print the JSON Schema of the export document (docs/export.schema.json)."""
    import json

    from hub.events.export import document_schema

    typer.echo(json.dumps(document_schema(), indent=2, ensure_ascii=False))
