"""Provider webhooks: ``/webhooks/{connector}/{hook}``, answered by the connector that owns them.

Thin on purpose: the connector verifies the signature and parses; the gateway makes what it
found durable before the provider gets its 2xx. A bad signature records nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from hub.api.auth import RuntimeDep
from hub.api.errors import ApiError
from hub.connectors.base import InvalidSignature, MalformedPayload, WebhookRequest

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _handle(name: str, hook: str, request: Request, runtime: RuntimeDep) -> Response:
    connector = runtime.gateway.by_name.get(name)
    if connector is None or hook not in type(connector).webhooks:
        raise ApiError(404, "not_found", f"no webhook {request.url.path} (connector off?)")
    public = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    query = f"?{request.url.query}" if request.url.query else ""
    incoming = WebhookRequest(
        method=request.method,
        hook=hook,
        url=f"{public}{request.url.path}{query}",
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
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


@router.api_route("/{name}", methods=["GET", "POST"], include_in_schema=False)
async def webhook_root(name: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _handle(name, "", request, runtime)


@router.api_route("/{name}/{hook}", methods=["GET", "POST"], include_in_schema=False)
async def webhook(name: str, hook: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _handle(name, hook, request, runtime)
