"""Provider webhooks: ``/webhooks/{connector}/{hook}``, answered by the connector that owns them.

Thin on purpose: the connector verifies the signature and parses; the gateway makes what it
found durable before the provider gets its 2xx. A bad signature records nothing.

This is the hub's busiest inbound path, so it is a plain ASGI app (:func:`serve`) that the hub's
application hands ``/webhooks/...`` requests to before FastAPI's own stack (``HubAPI`` in
hub.api.app), behind the same request metrics and body limit as every route. Its errors are
rendered by the application's exception handlers, so they have the API's one error shape. A
webhook needs none of what that stack adds (dependencies, OpenAPI, the matching of every API
route, the request wrapping and the exception middlewares). Skipping it is most of what took
an ingest-role webhook from 335-370 to ~300 µs of CPU (docs/performance.md, 2026-12-01).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from hub.api.errors import ApiError
from hub.connectors.base import InvalidSignature, MalformedPayload, WebhookRequest
from hub.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"


def _signed_url(public: str, scope: Scope) -> str:
    """The URL the provider called, as it signed it: the public URL, then the path as
    ``request.url.path`` gives it, then the query."""
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query: bytes = scope.get("query_string", b"")
    return f"{public}{path}?{query.decode(errors='replace')}" if query else f"{public}{path}"


def _base_url(scope: Scope) -> str:
    """Where this server was reached, for a hub without ``HUB_PUBLIC_URL`` (tests, a demo)."""
    return str(Request(scope).base_url)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "the client disconnected before sending the whole body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def webhook(scope: Scope, receive: Receive) -> Response:
    """``/webhooks/{name}`` and ``/webhooks/{name}/{hook}`` (GET or POST)."""
    name: str = scope["path_params"]["name"]
    hook: str = scope["path_params"].get("hook", "")
    runtime: Runtime = scope["app"].state.runtime
    connector = runtime.gateway.by_name.get(name)
    if connector is None or hook not in type(connector).webhooks:
        raise ApiError(404, "not_found", f"no webhook {scope['path']} (connector off?)")
    public = (runtime.settings.public_url or _base_url(scope)).rstrip("/")
    query: bytes = scope.get("query_string", b"")
    incoming = WebhookRequest(
        method=scope["method"],
        hook=hook,
        url=_signed_url(public, scope),
        # Lower-case names, as WebhookRequest promises (ASGI servers send them so already).
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        query=dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {},
        body=await _body(receive),
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


async def _never_called(request: Request) -> Response:  # pragma: no cover
    raise NotImplementedError  # the routes only match; serve() answers


routes = [
    _Route(path, _never_called, methods=["GET", "POST"], include_in_schema=False)
    for path in ("/webhooks/{name}", "/webhooks/{name}/{hook}")
]


def _matched(scope: Scope) -> None:
    """Put the matching route and its path parameters in ``scope``, or raise the 404 / 405."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            scope.update(child_scope)
            return
        if match is Match.PARTIAL:
            scope.update(child_scope)
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(route.methods or ()))})
    raise ApiError(404, "not_found", f"no webhook {scope['path']}")


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app of every ``/webhooks/...`` request (``scope["app"]`` is the hub's app)."""
    try:
        _matched(scope)
        response = await webhook(scope, receive)
    except Exception as exc:
        handler = _handler_for(scope["app"].exception_handlers, exc)
        if handler is None:
            raise
        response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The application's handler for ``exc``, as Starlette looks one up (most derived first)."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
