"""The admins' page of outbound webhook endpoints (``/webhook-endpoints``: ``/webhooks/`` is
where providers post to the hub): the endpoints with their state and counts, a form to add one,
and one endpoint's page with its recent deliveries and its buttons (test ping, rotate the
secret, disable or enable, redeliver what failed, delete).

Plain forms, no JavaScript needed: an action posts, then redirects back to the endpoint's page
(with what happened in the query), except creating an endpoint and rotating its secret, whose
answer is the page itself with the secret, shown that once and never cached or put in a URL.
The engine is ``runtime.webhooks`` (``hub.runtime.webhooks``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hub.console.shared import Agent, AgentDep, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError, NotFound
from hub.events import EVENT_TYPES
from hub.events.common import check_text
from hub.runtime import Runtime
from hub.runtime.webhooks.service import Attempt, Endpoint
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: The attempts an endpoint's page shows (the API pages through all of them).
RECENT_ATTEMPTS = 20
#: The limits of the API's bodies (``hub.api.webhook_models``), for the forms.
MAX_URL = 2048
MAX_DESCRIPTION = 500
MAX_PATTERNS = 50
#: Never kept by a browser or a proxy: a page that shows a secret.
_NO_STORE = {"Cache-Control": "no-store"}


def _admin(agent: Agent) -> None:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may manage webhook endpoints")


class _Refused(Exception):
    """A form the console refuses before the engine sees it."""


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    if len(text) > limit:
        raise _Refused(f"{name.replace('_', ' ')}: at most {limit} characters")
    try:
        return check_text(text)
    except ValueError as exc:
        raise _Refused(f"{name.replace('_', ' ')}: {exc}") from None


def _fields(form: FormData) -> tuple[str, list[str], str]:
    """The url, the event-type patterns (separated by spaces, commas or lines) and the
    description of the endpoint form."""
    url = _text(form, "url", MAX_URL).strip()
    patterns = [p for p in re.split(r"[\s,]+", _text(form, "event_types", 5000)) if p]
    if not patterns:
        raise _Refused("name at least one event type, or * for all of them")
    if len(patterns) > MAX_PATTERNS:
        raise _Refused(f"at most {MAX_PATTERNS} event types")
    return url, patterns, _text(form, "description", MAX_DESCRIPTION)


def _list_context(runtime: Runtime) -> dict[str, Any]:
    return {
        "endpoints": runtime.webhooks.list(),
        "event_types": sorted(EVENT_TYPES),
        "status_of": status_of,
    }


def _endpoint_context(runtime: Runtime, webhook_id: UUID) -> dict[str, Any]:
    endpoint = runtime.webhooks.get(webhook_id)
    attempts = runtime.webhooks.attempts(webhook_id, limit=RECENT_ATTEMPTS)
    return {
        "endpoint": endpoint,
        "attempts": attempts,
        "event_types": sorted(EVENT_TYPES),
        "status_of": status_of,
    }


def _missing(request: Request, agent: Agent, webhook_id: UUID) -> Response:
    return page(request, "webhook.html", status=404, agent=agent, endpoint=None, id=webhook_id)


def _back(webhook_id: UUID | None = None, **query: object) -> RedirectResponse:
    path = f"/webhook-endpoints/{webhook_id}" if webhook_id else "/webhook-endpoints"
    shown = {k: v for k, v in query.items() if v is not None}
    return RedirectResponse(f"{path}?{urlencode(shown)}" if shown else path, 303)


@router.get("/webhook-endpoints", response_class=HTMLResponse)
async def webhooks_page(
    request: Request, agent: AgentDep, error: str | None = None, deleted: str | None = None
) -> Response:
    """Every endpoint with its state, and the form to add one."""
    _admin(agent)
    context = await run_in_threadpool(_list_context, runtime_of(request))
    return page(
        request, "webhooks.html", agent=agent, error=error, deleted=deleted is not None, **context
    )


@router.post("/webhook-endpoints")
async def create_webhook(request: Request, agent: PostingAgent) -> Response:
    """Add an endpoint: its page, with its secret shown this once."""
    _admin(agent)
    runtime = runtime_of(request)
    form = await request.form()
    try:
        url, patterns, description = _fields(form)
        created = await run_in_threadpool(runtime.webhooks.create, url, patterns, description)
    except (_Refused, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        context = await run_in_threadpool(_list_context, runtime)
        return page(
            request,
            "webhooks.html",
            status=422,
            agent=agent,
            error=message,
            submitted=form,
            **context,
        )
    context = await run_in_threadpool(_endpoint_context, runtime, created.endpoint.id)
    response = page(request, "webhook.html", agent=agent, secret=created.secret, **context)
    response.headers.update(_NO_STORE)
    return response


@router.get("/webhook-endpoints/{webhook_id}", response_class=HTMLResponse)
async def webhook_page(
    request: Request,
    webhook_id: UUID,
    agent: AgentDep,
    error: str | None = None,
    ping: int | None = None,
    done: str | None = None,
    count: int | None = None,
) -> Response:
    """One endpoint: its state, its recent deliveries and its buttons."""
    _admin(agent)
    try:
        context = await run_in_threadpool(_endpoint_context, runtime_of(request), webhook_id)
    except NotFound:
        return _missing(request, agent, webhook_id)
    pinged = next((a for a in context["attempts"] if a.id == ping), None)
    return page(
        request,
        "webhook.html",
        agent=agent,
        error=error,
        pinged=pinged,
        done=done,
        count=count,
        **context,
    )


async def _act(webhook_id: UUID, run: Callable[[], object], **shown: object) -> Response:
    """Run an action on the endpoint and go back to its page; a refusal comes back there
    with the reason (an endpoint gone meanwhile: to the list)."""
    try:
        await run_in_threadpool(run)
    except NotFound as exc:
        return _back(error=exc.message)
    except DomainError as exc:
        return _back(webhook_id, error=exc.message)
    return _back(webhook_id, **shown)


@router.post("/webhook-endpoints/{webhook_id}")
async def change_webhook(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """Save the endpoint's URL, event types and description."""
    _admin(agent)
    runtime = runtime_of(request)
    try:
        url, patterns, description = _fields(await request.form())
    except _Refused as exc:
        return _back(webhook_id, error=str(exc))
    return await _act(
        webhook_id,
        lambda: runtime.webhooks.update(
            webhook_id, url=url, event_types=patterns, description=description
        ),
        done="saved",
    )


@router.post("/webhook-endpoints/{webhook_id}/enabled")
async def enable_webhook(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """Disable (``enabled=false``) or enable it again (``enabled=true``)."""
    _admin(agent)
    runtime = runtime_of(request)
    enabled = (await request.form()).get("enabled") == "true"
    return await _act(
        webhook_id,
        lambda: runtime.webhooks.update(webhook_id, enabled=enabled),
        done="enabled" if enabled else "disabled",
    )


@router.post("/webhook-endpoints/{webhook_id}/test")
async def ping_webhook(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """Send a test ping; its attempt is shown at the top of the page."""
    _admin(agent)
    try:
        attempt: Attempt = await runtime_of(request).webhooks.ping(webhook_id)
    except NotFound as exc:
        return _back(error=exc.message)
    except DomainError as exc:
        return _back(webhook_id, error=exc.message)
    return _back(webhook_id, ping=attempt.id)


@router.post("/webhook-endpoints/{webhook_id}/rotate-secret")
async def rotate_secret(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """A new secret, shown this once on the endpoint's page."""
    _admin(agent)
    runtime = runtime_of(request)
    try:
        secret, until = await run_in_threadpool(runtime.webhooks.rotate_secret, webhook_id)
        context = await run_in_threadpool(_endpoint_context, runtime, webhook_id)
    except NotFound:
        return _missing(request, agent, webhook_id)
    response = page(
        request, "webhook.html", agent=agent, secret=secret, rotated_until=until, **context
    )
    response.headers.update(_NO_STORE)
    return response


@router.post("/webhook-endpoints/{webhook_id}/redeliver")
async def redeliver(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """Queue every given-up event again, due now."""
    _admin(agent)
    runtime = runtime_of(request)
    try:
        count = await run_in_threadpool(runtime.webhooks.redeliver, webhook_id, None)
    except NotFound as exc:
        return _back(error=exc.message)
    return _back(webhook_id, done="redelivered", count=count)


@router.post("/webhook-endpoints/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: UUID, agent: PostingAgent) -> Response:
    """Delete it with its queue and delivery log, once the box saying so is ticked."""
    _admin(agent)
    if (await request.form()).get("confirm") != "yes":
        return _back(webhook_id, error="tick the box to confirm the deletion")
    runtime = runtime_of(request)
    try:
        await run_in_threadpool(runtime.webhooks.delete, webhook_id)
    except NotFound as exc:
        return _back(error=exc.message)
    return _back(deleted=1)


def status_of(endpoint: Endpoint) -> str:
    """Whether it is sent to, and if not why, in words."""
    if endpoint.enabled:
        return "Enabled"
    return {
        "gone": "Disabled: it answered 410 Gone",
        "failing": "Disabled: no delivery succeeded for the whole retry period",
        "admin": "Disabled by an admin",
    }.get(endpoint.disabled_reason or "", "Disabled")
