"""The published event feed for downstream services in the embedded mode: pull and SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from hub.api.auth import RuntimeDep, require
from hub.api.models import EventPage
from hub.store.tokens import Principal

router = APIRouter(prefix="/v1/events", tags=["events"])
Subscriber = Annotated[Principal, require("events")]

_KEEPALIVE_SECONDS = 15.0


@router.get("", response_model=EventPage)
async def list_events(
    runtime: RuntimeDep,
    _: Subscriber,
    after: Annotated[
        int, Query(ge=0, description="Position already seen (0: from the start).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Published events after a position, oldest first. Dedupe on ``id``: delivery is
    at-least-once across reconnects."""
    events, last = await run_in_threadpool(runtime.events_after, after, limit)
    return EventPage(events=[e.model_dump(mode="json") for e in events], next_after=last)


@router.get("/stream", response_class=EventSourceResponse)
async def stream_events(
    request: Request,
    runtime: RuntimeDep,
    _: Subscriber,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: each event's ``id:`` is its position, so a reconnecting client
    (``Last-Event-ID``) resumes where it stopped. Starts at ``after``, or at the end."""
    if last_event_id and last_event_id.isdigit():
        position = int(last_event_id)
    elif after is not None:
        position = after
    else:
        position = await run_in_threadpool(runtime.store_position)
    stopping: asyncio.Event = request.app.state.stopping
    yield ServerSentEvent(comment="connected", retry=2000)
    while not stopping.is_set():
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
        await runtime.wait_for_change_or(stopping, _KEEPALIVE_SECONDS)
        if not stopping.is_set():
            yield ServerSentEvent(comment="keepalive")
