"""Probes and metrics: unauthenticated, as probes and scrapers expect."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import __version__
from hub.api.auth import RuntimeDep
from hub.api.errors import error_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, object] | Response:
    """Ready to serve: store and views reachable, projections following."""
    problems = await run_in_threadpool(runtime.problems)
    if problems:
        return error_response(503, "not_ready", "; ".join(problems), {"problems": problems})
    status = await run_in_threadpool(runtime.status)
    return {"status": "ready", **status}


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    await run_in_threadpool(runtime.status)  # refresh the position gauges
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
