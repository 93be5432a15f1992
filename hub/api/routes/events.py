"""The published event feed for downstream services in the embedded mode: pull and SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from hub.api.auth import RuntimeDep, require
from hub.api.models import EventPage
from hub.api.openapi import errors
from hub.web.access import Principal
from hub.web.streams import CREDENTIAL_ENDED, MAX_POSITION, LastEventId, StreamCredential

router = APIRouter(prefix="/v1/events", tags=["events"])
Subscriber = Annotated[Principal, require("events")]

_KEEPALIVE_SECONDS = 15.0


@router.get("", response_model=EventPage)
async def list_events(
    runtime: RuntimeDep,
    _: Subscriber,
    after: Annotated[
        int,
        Query(ge=0, le=MAX_POSITION, description="Position already seen (0: from the start)."),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Published events after a position, oldest first. Dedupe on ``id``: delivery is
    at-least-once across reconnects."""
    events, last = await run_in_threadpool(runtime.events_after, after, limit)
    return EventPage(events=[e.model_dump(mode="json") for e in events], next_after=last)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses=errors((400, "`invalid_cursor`: Last-Event-ID is not an id: of this stream.")),
)
async def stream_events(
    request: Request,
    runtime: RuntimeDep,
    principal: Subscriber,
    resume_after: LastEventId,
    after: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: each event's ``id:`` is its position, so a reconnecting client
    (``Last-Event-ID``) resumes where it stopped. Starts at ``after``, or at the end.

    The token is checked again before each batch and every few seconds: once it is revoked
    the stream sends one ``error`` event (the error model as JSON) and ends."""
    if resume_after is not None:
        position = resume_after
    elif after is not None:
        position = after
    else:
        position = await run_in_threadpool(runtime.store_position)
    credential = StreamCredential(
        lambda: runtime.tokens.is_active(principal),
        lambda: runtime.tokens.revocations,
        runtime.settings.stream_recheck_seconds,
    )
    stopping: asyncio.Event = request.app.state.stopping
    loop = asyncio.get_running_loop()
    yield ServerSentEvent(comment="connected", retry=2000)
    keepalive_at = loop.time() + _KEEPALIVE_SECONDS
    while not stopping.is_set():
        if not await credential.holds():
            yield ServerSentEvent(raw_data=json.dumps(CREDENTIAL_ENDED), event="error")
            return
        events, last = await run_in_threadpool(runtime.events_after, position, 500)
        for event in events:
            yield ServerSentEvent(
                raw_data=json.dumps(event.model_dump(mode="json"), separators=(",", ":")),
                event=event.type,
                id=str(event.position),
            )
        if last != position:
            position = last
            continue
        # Wake for a change, for the credential's next check, or for the keepalive.
        wait = min(credential.interval, max(keepalive_at - loop.time(), 0.0))
        await runtime.wait_for_change_or(stopping, wait)
        if not stopping.is_set() and loop.time() >= keepalive_at:
            yield ServerSentEvent(comment="keepalive")
            keepalive_at = loop.time() + _KEEPALIVE_SECONDS
