"""Serving: ``hub serve`` (the embedded runtime) and ``hub run <role>`` (a process of the
distributed runtime), each behind one HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.shared import DataDir, configure_logging, serve_http, settings_from

if TYPE_CHECKING:
    from fastapi import FastAPI


if TYPE_CHECKING:
    from hub.runtime import Runtime


run_app = typer.Typer(
    help="Roles of the distributed runtime, one process each.", no_args_is_help=True
)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load the demo dataset when the hub is empty, and turn the sandbox on "
            "(simulated customers: nothing is really sent).",
        ),
    ] = False,
) -> None:
    """Start the hub in its embedded runtime (SQLite, no Kafka; the projections in a child
    process it supervises)."""
    from hub.embedded.runtime import EmbeddedRuntime
    from hub.server import build_app

    settings = settings_from(
        host=host, port=port, data_dir=data_dir, sandbox=True if demo else None
    )
    configure_logging(settings)
    runtime = EmbeddedRuntime(settings)
    application = build_app(runtime)
    if demo:
        _enable_demo(application, runtime)

    serve_http(settings, application)


def _enable_demo(application: FastAPI, runtime: Runtime) -> None:
    """Wrap the lifespan so the demo loads once the runtime has started."""
    from fastapi.concurrency import run_in_threadpool

    from hub.demo import introduce_sandbox, load_demo

    inner = application.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            summary = await run_in_threadpool(load_demo, runtime)
            summary += introduce_sandbox(runtime)
            settings = runtime.settings
            summary.append(
                f"demo: the agent console is at http://{settings.host}:{settings.port}/ "
                "(sign in with the admin token, HUB_ADMIN_TOKEN)"
            )
            for line in summary:
                typer.echo(line)
            yield

    application.router.lifespan_context = lifespan


Host = Annotated[str | None, typer.Option(help="Interface of the probes (and routes).")]
Port = Annotated[int | None, typer.Option(help="Port of the probes (and routes).")]


def _run_roles(roles: tuple[str, ...], host: str | None, port: int | None) -> None:
    """One process of the distributed runtime: ``roles`` behind one HTTP server that serves
    the probes, /metrics and the routes of the roles, until SIGTERM. Every role (``hub run
    all``) runs the stream roles in a child process (``HUB_STREAM_ROLES_PROCESS``)."""
    from hub.server import build_app

    # hub.stream brings Faust and aiokafka: only the distributed runtime's commands import
    # it, so `hub serve` and the embedded commands never load them.
    from hub.stream.roles_process import STREAM_ROLES
    from hub.stream.runtime import ROLES, DistributedRuntime

    settings = settings_from(host=host, port=port)
    configure_logging(settings)
    split = settings.stream_roles_process and set(roles) == set(ROLES)
    runtime = DistributedRuntime(settings, roles, child_roles=STREAM_ROLES if split else ())
    serve_http(settings, build_app(runtime))


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


@run_app.command("webhooks")
def run_webhooks(host: Host = None, port: Port = None) -> None:
    """Deliver published events to the subscribed webhook endpoints: queue hub.events per
    endpoint (a consumer group), then send, in order per customer, with retries (several
    processes share the work)."""
    _run_roles(("webhooks",), host, port)


@run_app.command("api")
def run_api(host: Host = None, port: Port = None) -> None:
    """The read API and agents' commands."""
    _run_roles(("api",), host, port)


@run_app.command("all")
def run_all(host: Host = None, port: Port = None) -> None:
    """Every role: a single node on Kafka (the stream roles in a child process it
    supervises, unless HUB_STREAM_ROLES_PROCESS=false)."""
    from hub.stream.runtime import ROLES  # Faust and aiokafka: see _run_roles

    _run_roles(ROLES, host, port)


@run_app.command("dispatch")
def run_dispatch(host: Host = None, port: Port = None) -> None:
    """Send agents' replies through the channel connectors (one active dispatcher at a time,
    by a lease; others wait as standbys)."""
    _run_roles(("dispatch",), host, port)
