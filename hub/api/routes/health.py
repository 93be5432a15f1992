"""Probes and metrics: unauthenticated, as probes and scrapers expect."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hub import __version__
from hub.api.auth import RuntimeDep
from hub.api.openapi import errors
from hub.metrics import exposition
from hub.runtime import Runtime
from hub.web.errors import error_response

router = APIRouter(tags=["operations"])

#: Probes and scrapers give up after a few seconds; a store that does not answer in this time
#: is reported as such instead of holding the request while its driver retries.
PROBE_SECONDS = 2.0


async def _bounded(runtime: Runtime) -> tuple[list[str], dict[str, Any]] | None:
    """Problems and status, or None when the store did not answer within PROBE_SECONDS
    (the abandoned check finishes in its worker thread)."""

    def check() -> tuple[list[str], dict[str, Any]]:
        problems = runtime.problems()
        if problems:
            return problems, {}
        try:
            return [], runtime.status()
        except Exception as exc:  # a probe reports, it does not raise (a busy broker probe)
            return [f"status unavailable: {type(exc).__name__}: {exc}".rstrip(": ")], {}

    with anyio.move_on_after(PROBE_SECONDS):
        return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    return None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    response_model=None,
    responses=errors((503, "`not_ready`: `details.problems` says what is not ready.")),
)
async def readyz(runtime: RuntimeDep) -> dict[str, object] | Response:
    """Ready to serve: store and views reachable, projections following; which channel
    connectors are on."""
    checked = await _bounded(runtime)
    problems = checked[0] if checked else [f"no answer within {PROBE_SECONDS}s (store, broker)"]
    if checked is None or problems:
        return error_response(503, "not_ready", "; ".join(problems), {"problems": problems})
    ready: dict[str, object] = {"status": "ready", **checked[1]}
    if runtime.settings.sandbox:  # simulated customers: say so wherever anyone looks
        ready["sandbox"] = True
    return {**ready, "channels": runtime.channel_states}


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format (position gauges keep their last values when the store is
    unreachable)."""
    if await _bounded(runtime) is not None:  # refreshes the position gauges
        with anyio.move_on_after(PROBE_SECONDS):
            await anyio.to_thread.run_sync(runtime.refresh_service_gauges, abandon_on_cancel=True)
    families = await anyio.to_thread.run_sync(runtime.metric_families)
    return Response(exposition(families), media_type=CONTENT_TYPE_LATEST)
