"""Provider webhooks: ``/webhooks/{connector}/{hook}``, answered by the connector that owns them.

Thin on purpose: the connector verifies the signature and parses; the gateway makes what it
found durable before the provider gets its 2xx. A bad signature records nothing.

The endpoint takes only the request (path parameters and the runtime read from it): the
connector reads the raw request, so FastAPI's parameter and dependency resolution would be pure
per-request overhead on the hub's busiest inbound path (a third of its HTTP cost, measured).
For the same reason these are plain Starlette routes, put before every other route of the app
(``install``): FastAPI's request wrapping and the matching of every API route came to a fifth
of the ingest role's CPU per webhook (py-spy, docs/performance.md).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from hub.api.auth import get_runtime
from hub.api.errors import ApiError
from hub.connectors.base import InvalidSignature, MalformedPayload, WebhookRequest

log = logging.getLogger(__name__)


def _signed_url(public: str, request: Request) -> str:
    """The URL the provider called, as it signed it: the public URL, then the path as
    ``request.url.path`` gives it, then the query (without building ``request.url``)."""
    scope = request.scope
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query: bytes = scope.get("query_string", b"")
    return f"{public}{path}?{query.decode(errors='replace')}" if query else f"{public}{path}"


async def webhook(request: Request) -> Response:
    """``/webhooks/{name}`` and ``/webhooks/{name}/{hook}`` (GET or POST)."""
    name: str = request.path_params["name"]
    hook: str = request.path_params.get("hook", "")
    runtime = await get_runtime(request)
    connector = runtime.gateway.by_name.get(name)
    if connector is None or hook not in type(connector).webhooks:
        raise ApiError(404, "not_found", f"no webhook {request.url.path} (connector off?)")
    public = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    incoming = WebhookRequest(
        method=request.method,
        hook=hook,
        url=_signed_url(public, request),
        # Lower-case names, as WebhookRequest promises (ASGI servers send them so already).
        headers={
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]
        },
        query=dict(request.query_params) if request.scope.get("query_string") else {},
        body=await request.body(),
    )
    try:
        outcome = connector.handle_webhook(incoming)
    except InvalidSignature as exc:
        runtime.metrics.webhooks.labels(name, "invalid_signature").inc()
        raise ApiError(exc.status, "invalid_signature", exc.reason) from None
    except MalformedPayload as exc:
        runtime.metrics.webhooks.labels(name, "malformed").inc()
        log.info("%s webhook refused as malformed: %s", name, exc.reason)
        raise ApiError(400, "malformed_payload", exc.reason) from None
    await runtime.gateway.take(name, outcome)
    runtime.metrics.webhooks.labels(name, "ok").inc()
    return Response(outcome.body, outcome.status, media_type=outcome.media_type)


class _Route(Route):
    """A Starlette route that names itself in the scope, as FastAPI's do (the request
    metrics label requests by ``scope["route"].path``)."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


routes = [
    _Route(path, webhook, methods=["GET", "POST"], include_in_schema=False)
    for path in ("/webhooks/{name}", "/webhooks/{name}/{hook}")
]


def install(app: FastAPI) -> None:
    """The webhook routes, first among the app's routes (the busiest inbound path)."""
    app.router.routes[:0] = routes
