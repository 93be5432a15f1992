"""The ``hub`` command: serve, schemas, projections, tokens, configuration."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from hub.config import ConfigurationError, InvalidSettings, Settings, load_settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

app = typer.Typer(help="Interaction Hub: one unified timeline per customer.", no_args_is_help=True)
schema_app = typer.Typer(help="Published event schemas.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models built from the events.", no_args_is_help=True)
tokens_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
kafka_app = typer.Typer(help="The Kafka broker of the distributed runtime.", no_args_is_help=True)
run_app = typer.Typer(
    help="Roles of the distributed runtime, one process each.", no_args_is_help=True
)
app.add_typer(schema_app, name="schema")
app.add_typer(projections_app, name="projections")
app.add_typer(tokens_app, name="tokens")
app.add_typer(config_app, name="config")
app.add_typer(kafka_app, name="kafka")
app.add_typer(run_app, name="run")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $HUB_DATA_DIR or ./hub-data)."),
]


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo dataset when the hub is empty.")
    ] = False,
) -> None:
    """Start the hub in its embedded runtime (one process, SQLite, no Kafka)."""
    from hub.embedded.runtime import EmbeddedRuntime
    from hub.server import build_app

    settings = _settings(host=host, port=port, data_dir=data_dir)
    _logging(settings)
    runtime = EmbeddedRuntime(settings)
    application = build_app(runtime)
    if demo:
        _enable_demo(application, runtime)

    _serve_http(settings, application)


def _serve_http(settings: Settings, application: Any) -> None:
    """Serve ``application`` until SIGTERM or SIGINT; exit 3 when the server cannot start."""
    import uvicorn

    from hub.api import request_shutdown
    from hub.api.timeouts import slow_client_protocol

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            request_shutdown(application)  # end event streams, or shutdown waits for them
            super().handle_exit(sig, frame)

    startup = _StartupConfiguration(application)
    config = uvicorn.Config(
        startup,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        http=slow_client_protocol(settings),  # request head and body read timeouts
        ws_max_size=settings.max_body_bytes,  # a chat frame, bounded like a body (not 16 MiB)
    )
    server = Server(config)
    signal.signal(signal.SIGTERM, _stop_cleanly)
    try:
        server.run()
    except SystemExit:
        if startup.error is not None:  # uvicorn exits 3 on any failed start-up
            raise startup.error from None  # main() prints it
        raise
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: could not start (port taken, startup failed)


class _StartupConfiguration:
    """ASGI wrapper that takes a :class:`ConfigurationError` raised while the application
    starts (the runtime opens the store, the producers meet the broker) out of uvicorn,
    which would log it with a traceback, so that the command reports it as one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: ConfigurationError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)  # sent below, once it is known why
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except ConfigurationError as exc:
            self.error = exc
            # uvicorn logs a failure's message (Starlette puts the traceback there) and
            # then ends quietly: without one it just stops.
            await send({"type": "lifespan.startup.failed", "message": ""})
            raise
        finally:
            for message in failed if self.error is None else ():
                await send(message)


def _stop_cleanly(_signum: int, _frame: object) -> None:
    """SIGTERM outside uvicorn's own handling: before it starts, or when uvicorn re-raises
    the signal after its graceful shutdown (which would end the process as killed by
    SIGTERM). A requested stop is a success: exit 0."""
    raise SystemExit(0)


def _enable_demo(application: Any, runtime: Any) -> None:
    """Wrap the lifespan so the demo loads once the runtime has started."""
    from contextlib import asynccontextmanager

    from fastapi.concurrency import run_in_threadpool

    from hub.demo import load_demo

    inner = application.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with inner(app):
            summary = await run_in_threadpool(load_demo, runtime)
            settings = runtime.settings
            summary.append(
                f"demo: the agent console is at http://{settings.host}:{settings.port}/ "
                "(sign in with the admin token, HUB_ADMIN_TOKEN)"
            )
            for line in summary:
                typer.echo(line)
            yield

    application.router.lifespan_context = lifespan


@schema_app.command("export")
def schema_export(directory: Path) -> None:
    """Write one JSON Schema file per published event type (and the inbound contract)."""
    from hub.events.catalogue import export_schemas

    written = export_schemas(directory)
    for path in written:
        typer.echo(str(path))


@schema_app.command("catalogue")
def schema_catalogue() -> None:
    """Print the event catalogue (docs/events.md) generated from the models."""
    from hub.events.catalogue import render_catalogue

    typer.echo(render_catalogue(), nl=False)


def _open_runtime(data_dir: Path | None) -> Any:
    from hub.runtime import Runtime

    settings = _settings(data_dir=data_dir)
    runtime = Runtime(settings)
    runtime.start()
    return runtime


Kafka = Annotated[
    bool,
    typer.Option(
        "--kafka",
        help="The distributed runtime: include the broker (HUB_KAFKA__*) and its positions.",
    ),
]


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="One projection; default: all.")] = None,
    data_dir: DataDir = None,
    kafka: Kafka = False,
) -> None:
    """Drop a projection's tables and replay it from the event store. With --kafka (stop the
    project workers first), every hub.events partition then counts as applied up to the
    rebuilt position, so the projectors go on from there without applying anything twice."""
    import asyncio
    import time

    from hub.embedded.follower import LogFollower
    from hub.stream.nodes import running_nodes
    from hub.stream.topics import Topics, partition_count

    runtime = _open_runtime(data_dir)
    try:
        if kafka:
            busy = [
                n["node_id"]
                for n in running_nodes(runtime.store.state_engine)
                if n["alive"] and "project" in n["roles"]
            ]
            if busy:
                typer.echo(f"stop the project workers first: {', '.join(busy)}", err=True)
                raise typer.Exit(1)
        names = [name] if name else [p.name for p in runtime.views.projections]
        for one in names:
            try:
                runtime.views.reset(one)
            except KeyError:
                known = ", ".join(p.name for p in runtime.views.projections)
                raise typer.BadParameter(f"unknown projection {one!r} (known: {known})") from None
        started = time.perf_counter()
        follower = LogFollower(runtime.store, runtime.views, batch_size=5000, only=names)
        applied = follower.catch_up()
        elapsed = time.perf_counter() - started
        typer.echo(
            f"rebuilt {', '.join(names)}: {applied} events applied in {elapsed:.2f}s, "
            f"position {follower.position}"
        )
        if kafka:
            topic = Topics.from_settings(runtime.settings.kafka).events
            partitions = asyncio.run(partition_count(runtime.settings.kafka, topic))
            runtime.views.rebuilt_up_to(names, topic, partitions, follower.position)
            typer.echo(f"{topic}: {partitions} partitions marked applied up to there")
    finally:
        runtime.stop()


@app.command()
def status(data_dir: DataDir = None, kafka: Kafka = False) -> None:
    """Store position, projection positions and lag; with --kafka, the running nodes and
    their roles, the relay, and the lag of each stage and partition."""
    if not kafka:
        runtime = _open_runtime(data_dir)
        try:
            typer.echo(json.dumps(runtime.status(), indent=2))
        finally:
            runtime.stop()
        return
    import asyncio

    from hub.stream.runtime import DistributedRuntime

    distributed = DistributedRuntime(_settings(data_dir=data_dir), roles=())
    distributed.start()

    async def measure() -> dict[str, Any]:
        await distributed.start_async()
        try:
            return await asyncio.to_thread(distributed.status)
        finally:
            await distributed.stop_async()

    try:
        typer.echo(json.dumps(asyncio.run(measure()), indent=2))
    finally:
        distributed.stop()


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
    runtime = _open_runtime(data_dir)
    try:
        token_id, token = runtime.tokens.create(role, name or role)
    finally:
        runtime.stop()
    typer.echo(f"id:    {token_id}\ntoken: {token}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: UUID, data_dir: DataDir = None) -> None:
    """Revoke a token by id (takes effect within seconds in running processes)."""
    runtime = _open_runtime(data_dir)
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
    runtime = _open_runtime(data_dir)
    try:
        for info in runtime.tokens.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            typer.echo(f"{info.token_id}  {info.role:<8} {state:<18} {info.name}")
    finally:
        runtime.stop()


@config_app.command("show")
def config_show(data_dir: DataDir = None) -> None:
    """The effective configuration, secrets masked, and which channel connectors are on."""
    from hub.connectors.registry import channel_states

    settings = _settings(data_dir=data_dir)
    shown = settings.masked() | {"channels": channel_states(settings)}
    typer.echo(json.dumps(shown, indent=2, default=str))


dead_letters_app = typer.Typer(
    help="What was received but could not be recorded, kept whole and encrypted.",
    no_args_is_help=True,
)
app.add_typer(dead_letters_app, name="dead-letters")
LetterId = Annotated[UUID, typer.Argument(help="A dead letter's id (from list).")]


@contextlib.contextmanager
def _letters_of(data_dir: Path | None) -> Iterator[Any]:
    """The runtime of the hub at ``data_dir``, stopped afterwards; an unknown letter id ends
    the command with its message and exit status 1."""
    from hub.domain.errors import NotFound

    runtime = _open_runtime(data_dir)
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
        letters = runtime.store.dead_letters.list(limit, kind=kind, source=source)
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
        letter = runtime.store.dead_letters.get(letter_id)
    assert letter.original is not None
    shown = DeadLetterOut.of(letter).model_dump(mode="json")
    shown["original"] = readable(letter.original).model_dump(mode="json")
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@dead_letters_app.command("retry")
def dead_letters_retry(letter_id: LetterId, data_dir: DataDir = None) -> None:
    """Hand the original to the path it came in by again and record it (once: what the
    store holds already is not recorded again). Exits 1 when it still fails; the letter then
    stays with the new error. Works on a stopped hub's data directory."""
    import asyncio

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
        dropped = runtime.store.dead_letters.drop(letter_id)
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
    from datetime import timedelta

    with _letters_of(data_dir) as runtime:
        retention = (
            timedelta(days=older_than_days)
            if older_than_days is not None
            else runtime.settings.dead_letter_retention
        )
        purged = runtime.store.dead_letters.purge_expired(retention)
    typer.echo(f"purged {purged} dead letter(s) older than {retention}")


store_app = typer.Typer(help="The event store: export and import.", no_args_is_help=True)
app.add_typer(store_app, name="store")
ExportFile = Annotated[
    Path, typer.Argument(help="The export file: JSON Lines, gzip when the name ends in .gz.")
]


@store_app.command("export")
def store_export(file: ExportFile, data_dir: DataDir = None) -> None:
    """Write the store's events, data keys and API tokens to FILE (stop the hub first).

    Events stay encrypted, data keys wrapped by the master key, tokens hashed."""
    from hub.store.transfer import TransferError, export_store

    try:
        summary = export_store(_settings(data_dir=data_dir), file)
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
        summary = import_store(_settings(data_dir=data_dir), file)
    except TransferError as exc:  # (a ConfigurationError is main()'s: exit 2)
        typer.echo(f"import failed: {exc}", err=True)
        raise typer.Exit(1) from None
    rebuild = "hub projections rebuild" + (f" --data-dir {data_dir}" if data_dir else "")
    typer.echo("\n".join(summary.lines(rebuild)))


@kafka_app.command("init")
def kafka_init() -> None:
    """Create the hub's topics (partitions and replication from HUB_KAFKA__*), check existing ones.
    Exits 1 when an existing topic differs from the configuration."""
    import asyncio

    from hub.stream.topics import ensure_topics

    reports = asyncio.run(ensure_topics(_settings().kafka))
    for report in reports:
        state = "created" if report.created else "exists"
        line = f"{report.name}: {state}, {report.partitions} partitions"
        typer.echo(line + (f" - {report.problem}" if report.problem else ""))
    if any(r.problem for r in reports):
        raise typer.Exit(1)


Host = Annotated[str | None, typer.Option(help="Interface of the probes (and routes).")]
Port = Annotated[int | None, typer.Option(help="Port of the probes (and routes).")]


def _run_roles(roles: tuple[str, ...], host: str | None, port: int | None) -> None:
    """One process of the distributed runtime: ``roles`` behind one HTTP server that serves
    the probes, /metrics and the routes of the roles, until SIGTERM."""
    from hub.server import build_app
    from hub.stream.runtime import DistributedRuntime

    settings = _settings(host=host, port=port)
    _logging(settings)
    runtime = DistributedRuntime(settings, roles)
    _serve_http(settings, build_app(runtime))


@run_app.command("ingest")
def run_ingest(host: Host = None, port: Port = None) -> None:
    """The API channel's intake: produce interactions to hub.inbound (acks=all) and answer
    once the broker has them."""
    _run_roles(("ingest",), host, port)


@run_app.command("process")
def run_process(host: Host = None, port: Port = None) -> None:
    """Take hub.inbound in batches into the store (one transaction per batch); records that
    can never be processed go to hub.inbound.dlq with the reason."""
    _run_roles(("process",), host, port)


@run_app.command("relay")
def run_relay(host: Host = None, port: Port = None) -> None:
    """Publish the store's events to hub.events in order (one active relay at a time; the
    others stand by)."""
    _run_roles(("relay",), host, port)


@run_app.command("project")
def run_project(host: Host = None, port: Port = None) -> None:
    """Apply hub.events to the read models (positions per partition, kept with the views)."""
    _run_roles(("project",), host, port)


@run_app.command("api")
def run_api(host: Host = None, port: Port = None) -> None:
    """The read API and agents' commands."""
    _run_roles(("api",), host, port)


@run_app.command("all")
def run_all(host: Host = None, port: Port = None) -> None:
    """Every role in one process: a single node on Kafka."""
    from hub.stream.runtime import ROLES

    _run_roles(ROLES, host, port)


@run_app.command("dispatch")
def run_dispatch(host: Host = None, port: Port = None) -> None:
    """Send agents' replies through the channel connectors (one active dispatcher at a time,
    by a lease; others wait as standbys)."""
    _run_roles(("dispatch",), host, port)


@app.command()
def keygen() -> None:
    """Print a fresh 32-byte key (base64) for HUB_MASTER_KEY or HUB_ADDRESS_PEPPER."""
    typer.echo(base64.b64encode(os.urandom(32)).decode())


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        # The operator's to fix, not a bug: one line per problem, no traceback.
        problems = exc.problems if isinstance(exc, InvalidSettings) else (str(exc),)
        for problem in problems:
            typer.echo(problem, err=True)
        raise SystemExit(2) from None
