"""Builds the FastAPI application around a runtime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import __version__
from hub.api.openapi import document_errors, document_webhooks
from hub.api.routes import (
    access_log,
    activities,
    automations,
    chat,
    consent,
    conversations,
    customers,
    dead_letters,
    duplicates,
    events,
    export,
    feedback,
    health,
    interactions,
    messages,
    new_conversations,
    privacy,
    profile,
    reports,
    scheduled,
    search,
    segments,
    service_levels,
    surveys,
    templates,
    unsubscribe,
    webhook_endpoints,
    webhooks,
)
from hub.metrics import Metrics
from hub.runtime import Runtime
from hub.web.errors import error_response, install_error_handlers

#: The routes each role serves (every process also serves the probes and /metrics).
ROUTES_OF = {
    "ingest": (interactions, chat),
    "api": (
        customers,
        conversations,
        new_conversations,
        messages,
        events,
        dead_letters,
        privacy,
        access_log,
        consent,
        export,
        unsubscribe,
        feedback,
        profile,
        duplicates,
        segments,
        search,
        webhook_endpoints,
        automations,
        templates,
        scheduled,
        service_levels,
        surveys,
        reports,
        activities,
    ),
}


def roles_of(runtime: Runtime) -> frozenset[str]:
    """The roles whose routes ``runtime``'s process serves (a distributed runtime names its
    own; any other serves both)."""
    return frozenset(getattr(runtime, "roles", ("ingest", "api")))


class _RequestMetrics:
    """Times every request by route template (not raw path: ids would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


class _BodyLimit:
    """Refuses request bodies over ``max_bytes`` with the API's error model.

    Starlette's own limit (FastAPI ``max_body_size``) answers a too-large Content-Length with
    a plain-text 413 that no error handler can reshape, so the hub enforces the limit here.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body exceeds {self.max_bytes} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, "payload_too_large", message)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            got = await receive()
            if got["type"] == "http.request":
                received += len(got.get("body", b""))
                if received > self.max_bytes:
                    # Raised while a route reads its body: the HTTPException handler answers.
                    raise HTTPException(413, message)
            return got

        await self.app(scope, limited_receive, send)


def request_shutdown(app: FastAPI) -> None:
    """Tell long-lived responses (the event stream) to finish because the server is stopping,
    so a graceful shutdown does not wait for subscribers. Safe from a signal handler."""
    stopping: asyncio.Event | None = getattr(app.state, "stopping", None)
    if stopping is not None:
        app.state.loop.call_soon_threadsafe(stopping.set)


class HubAPI(FastAPI):
    """The hub's FastAPI application, which hands provider webhooks to their own ASGI app
    (``hub.api.routes.webhooks``) ahead of FastAPI's stack, for speed; every other request
    goes through FastAPI as usual."""

    provider_webhooks: ASGIApp | None = None
    """The webhook path with the request metrics and body limit; None where no ingest role."""

    _errors_documented: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document (cached, rebuilt when routes change), with every operation's
        error responses and the outbound webhooks (hub.api.openapi)."""
        schema = super().openapi()
        if schema is not self._errors_documented:
            document_errors(schema, self.routes)
            document_webhooks(schema)
            self._errors_documented = schema
        return schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.provider_webhooks is not None
            and scope["type"] == "http"
            and scope["path"].startswith(webhooks.PREFIX)
        ):
            scope["app"] = self
            await self.provider_webhooks(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime) -> HubAPI:
    """The API around ``runtime``, which the application starts and stops with itself. The
    caller (the CLI, a test) chooses and builds the runtime: this is not a second bootstrap;
    ``hub.server.build_app`` adds the console."""
    hub_runtime = runtime
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(hub_runtime.start)
        app.state.runtime = hub_runtime
        app.state.stopping = asyncio.Event()
        app.state.loop = asyncio.get_running_loop()
        try:
            await hub_runtime.start_async()
            try:
                yield
            finally:
                await hub_runtime.stop_async()
        finally:
            await run_in_threadpool(hub_runtime.stop)

    app = HubAPI(
        title="Interaction Hub",
        version=__version__,
        description="Every customer interaction as an immutable event; one unified timeline "
        "per customer. Published event schemas: docs/events.md.",
        lifespan=lifespan,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    roles = roles_of(hub_runtime)
    for role, modules in ROUTES_OF.items():
        for module in modules if role in roles else ():
            app.include_router(module.router)
    app.include_router(health.router)
    if "ingest" in roles:
        app.provider_webhooks = _RequestMetrics(
            _BodyLimit(webhooks.serve, max_bytes=settings.max_body_bytes), hub_runtime.metrics
        )
    app.add_middleware(_BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(_RequestMetrics, metrics=hub_runtime.metrics)
    return app
