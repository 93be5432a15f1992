"""Builds the FastAPI application around a runtime."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import __version__
from hub.api.errors import install_error_handlers
from hub.api.routes import conversations, customers, events, health, interactions
from hub.config import Settings
from hub.metrics import Metrics
from hub.runtime import Runtime


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


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The API around ``runtime`` (default: an embedded runtime on ``settings``), started and
    stopped with the application."""
    if runtime is None:
        from hub.embedded.runtime import EmbeddedRuntime

        runtime = EmbeddedRuntime(settings)
    hub_runtime = runtime

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(hub_runtime.start)
        app.state.runtime = hub_runtime
        try:
            yield
        finally:
            await run_in_threadpool(hub_runtime.stop)

    app = FastAPI(
        title="Interaction Hub",
        version=__version__,
        description="Every customer interaction as an immutable event; one unified timeline "
        "per customer. Published event schemas: docs/events.md.",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    install_error_handlers(app)
    for module in (interactions, customers, conversations, events, health):
        app.include_router(module.router)
    app.add_middleware(_RequestMetrics, metrics=hub_runtime.metrics)
    return app
