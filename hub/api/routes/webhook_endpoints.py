"""Outbound webhook endpoints, for admins: register, change and remove them, rotate a secret,
send a test ping, read each one's delivery attempts and given-up events, redeliver those and
replay from a position. The engine is ``runtime.webhooks`` (docs/webhooks.md).

(The provider webhooks the hub *receives* are ``hub.api.routes.webhooks``, under /webhooks/.)
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.api.webhook_models import (
    AttemptOut,
    AttemptPage,
    Outcome,
    ParkedEventOut,
    ParkedPage,
    RedeliverIn,
    RedeliverOut,
    ReplayOut,
    SecretOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from hub.web.access import Principal

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, require("admin")]

#: The largest position or attempt id (64-bit columns).
_MAX_ID = 2**63 - 1
_INVALID = (
    422,
    "`invalid_command`: the URL is not http(s), carries credentials or reaches an address "
    "that is not allowed, or a pattern matches no published event type.",
)
Limit = Annotated[int, Query(ge=1, le=200)]
#: An answer carrying a secret is kept by no cache.
_NO_STORE = {"Cache-Control": "no-store"}


@router.post("", status_code=201, response_model=WebhookCreatedOut, responses=errors(_INVALID))
async def create_webhook(
    body: WebhookIn, runtime: RuntimeDep, _: Admin, response: Response
) -> WebhookCreatedOut:
    """Register an endpoint: the events published from now on whose type matches are POSTed
    to it, signed (Standard Webhooks). The answer carries its secret, this once."""
    created = await run_in_threadpool(
        runtime.webhooks.create, body.url, body.event_types, body.description
    )
    response.headers.update(_NO_STORE)
    return WebhookCreatedOut(**WebhookOut.of(created.endpoint).model_dump(), secret=created.secret)


@router.get("", response_model=WebhookList)
async def list_webhooks(runtime: RuntimeDep, _: Admin) -> WebhookList:
    """Every endpoint, with its state and counts."""
    found = await run_in_threadpool(runtime.webhooks.list)
    return WebhookList(items=[WebhookOut.of(e) for e in found])


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: UUID, runtime: RuntimeDep, _: Admin) -> WebhookOut:
    """One endpoint (without its secret)."""
    return WebhookOut.of(await run_in_threadpool(runtime.webhooks.get, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=errors(_INVALID))
async def change_webhook(
    webhook_id: UUID, body: WebhookPatch, runtime: RuntimeDep, _: Admin
) -> WebhookOut:
    """Change what is given; `enabled: false` stops sending (and queueing), `true` resumes
    it, pending events first."""
    changed = await run_in_threadpool(
        lambda: runtime.webhooks.update(
            webhook_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
        )
    )
    return WebhookOut.of(changed)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: UUID, runtime: RuntimeDep, _: Admin) -> Response:
    """Remove the endpoint, its queue and its attempt log."""
    await run_in_threadpool(runtime.webhooks.delete, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", response_model=SecretOut)
async def rotate_secret(
    webhook_id: UUID, runtime: RuntimeDep, _: Admin, response: Response
) -> SecretOut:
    """A new secret, shown this once; the previous one keeps signing too for a grace period."""
    secret, until = await run_in_threadpool(runtime.webhooks.rotate_secret, webhook_id)
    response.headers.update(_NO_STORE)
    return SecretOut(secret=secret, previous_secret_valid_until=until)


@router.post("/{webhook_id}/test", response_model=AttemptOut)
async def send_test_ping(webhook_id: UUID, runtime: RuntimeDep, _: Admin) -> AttemptOut:
    """Send a signed `webhook.ping` now (also to a disabled endpoint) and answer how it
    went: the status, the latency, the error. Logged among the deliveries."""
    return AttemptOut.of(await runtime.webhooks.ping(webhook_id))


@router.get("/{webhook_id}/deliveries", response_model=AttemptPage)
async def list_deliveries(
    webhook_id: UUID,
    runtime: RuntimeDep,
    _: Admin,
    outcome: Outcome | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=_MAX_ID, description="next_before of the previous page")
    ] = None,
    limit: Limit = 50,
) -> AttemptPage:
    """The attempts to deliver to this endpoint, newest first (kept
    HUB_WEBHOOKS__ATTEMPT_LOG_DAYS days)."""
    found = await run_in_threadpool(
        lambda: runtime.webhooks.attempts(webhook_id, before=before, limit=limit, outcome=outcome)
    )
    return AttemptPage(
        items=[AttemptOut.of(a) for a in found],
        next_before=found[-1].id if len(found) == limit else None,
    )


@router.get("/{webhook_id}/failed", response_model=ParkedPage)
async def list_failed(
    webhook_id: UUID,
    runtime: RuntimeDep,
    _: Admin,
    after: Annotated[
        int, Query(ge=0, le=_MAX_ID, description="next_after of the previous page")
    ] = 0,
    limit: Limit = 50,
) -> ParkedPage:
    """The events given up after the retry period, in log order: redeliverable."""
    found = await run_in_threadpool(
        lambda: runtime.webhooks.parked(webhook_id, after_position=after, limit=limit)
    )
    return ParkedPage(
        items=[ParkedEventOut.of(p) for p in found],
        next_after=found[-1].position if len(found) == limit else None,
    )


@router.post(
    "/{webhook_id}/redeliver",
    status_code=202,
    response_model=RedeliverOut,
    responses=errors((404, "`not_found`: no such endpoint, or the event is not given up for it.")),
)
async def redeliver(
    webhook_id: UUID, runtime: RuntimeDep, _: Admin, body: RedeliverIn | None = None
) -> RedeliverOut:
    """Queue given-up events again, due now: the one named, or all of them (no body)."""
    event_id = body.event_id if body is not None else None
    count = await run_in_threadpool(runtime.webhooks.redeliver, webhook_id, event_id)
    return RedeliverOut(endpoint_id=webhook_id, redelivered=count)


@router.post("/{webhook_id}/replay", status_code=202, response_model=ReplayOut)
async def replay(
    webhook_id: UUID,
    runtime: RuntimeDep,
    _: Admin,
    from_position: Annotated[
        int, Query(ge=0, le=_MAX_ID, description="The first store position to send again.")
    ],
) -> ReplayOut:
    """Queue again every matching published event from `from_position` up to the log's head
    (also those before the endpoint was created): sent in order per customer, each with its
    own `webhook-id` (the event id), so a receiver deduping on it sees no harm."""
    done = await run_in_threadpool(runtime.webhooks.replay, webhook_id, from_position)
    return ReplayOut.of(done)
