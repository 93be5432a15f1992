"""Provider webhooks: ``/webhooks/{connector}/{hook}``, answered by the connector that owns them.

Thin on purpose: the connector verifies the signature and parses; the gateway makes what it
found durable before the provider gets its 2xx. A bad signature records nothing. When the
connector sets anything aside, the request itself is kept (encrypted) as a dead letter, so an
operator can hand it to the connector again after a fix.

This is the hub's busiest inbound path, so it is a plain ASGI app (:func:`serve`) that the hub's
application hands ``/webhooks/...`` requests to before FastAPI's own stack (``HubAPI`` in
hub.api.app), behind the same request metrics and body limit as every route. Its errors are
rendered by the application's exception handlers, so they have the API's one error shape. A
webhook needs none of what that stack adds (dependencies, OpenAPI, the matching of every API
route, the request wrapping and the exception middlewares); what skipping it saves is
measured by ``bench`` (docs/performance.md).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from hub.connectors.base import InvalidSignature, MalformedPayload, WebhookRequest
from hub.runtime import Runtime
from hub.web.errors import ApiError

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"


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
    runtime: Runtime = request.app.state.runtime
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
    await runtime.gateway.receive(name, outcome, incoming)
    runtime.metrics.webhooks.labels(name, "ok").inc()
    return Response(outcome.body, outcome.status, media_type=outcome.media_type)


# Starlette routes for their path matching and parameters only: serve() calls webhook() itself.
routes = [
    Route(path, webhook, methods=["GET", "POST"], include_in_schema=False)
    for path in ("/webhooks/{name}", "/webhooks/{name}/{hook}")
]


def _matched(scope: Scope) -> None:
    """Put the matching route (the request metrics label by its ``path``) and its path
    parameters in ``scope``, or raise the 404 / 405."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is not Match.NONE:
            scope.update(child_scope, route=route)
        if match is Match.FULL:
            return
        if match is Match.PARTIAL:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(route.methods or ()))})
    raise ApiError(404, "not_found", f"no webhook {scope['path']}")


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app of every ``/webhooks/...`` request (``scope["app"]`` is the hub's app)."""
    request = Request(scope, receive)
    try:
        _matched(scope)
        response = await webhook(request)
    except Exception as exc:
        handler = _handler_for(request.app.exception_handlers, exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The application's handler for ``exc``, as Starlette looks one up (most derived first)."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
