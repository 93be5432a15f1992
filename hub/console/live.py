"""Live updates of the console's pages (server-sent events): the queue hears that something
changed, a customer's page gets its new timeline items, changed delivery ticks and scheduled
messages' new status.

A live feed ends (an ``error`` event, then the end of the stream) once the agent's session no
longer holds: signed out, expired, or its token revoked (``hub.web.streams``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from hub.console.shared import (
    SESSION_COOKIE,
    VISIBLE_WAIT_SECONDS,
    AgentDep,
    runtime_of,
    templates,
)
from hub.projections.queries import timeline_after
from hub.projections.timeline import TimelineItem
from hub.web.access import may
from hub.web.streams import CREDENTIAL_ENDED, MAX_POSITION, StreamCredential

router = APIRouter(include_in_schema=False)

_LIVE_POLL_SECONDS = 2.0  # how often a live feed looks for what other processes wrote


def _live_credential(request: Request) -> StreamCredential:
    """The re-check of a live feed's session: it ends when the agent signs out, the session
    expires or its token is revoked."""
    runtime = runtime_of(request)
    session_id = request.cookies.get(SESSION_COOKIE) or ""

    def check() -> bool:
        return may(runtime.sessions.current(session_id), "act")

    return StreamCredential(
        check, lambda: runtime.sessions.revocations, runtime.settings.stream_recheck_seconds
    )


def _ended() -> ServerSentEvent:
    """A live feed's last event: console.js stops listening and says the session ended."""
    return ServerSentEvent(raw_data=json.dumps(CREDENTIAL_ENDED), event="error")


@router.get("/queue/live", response_class=EventSourceResponse)
async def queue_live(request: Request, agent: AgentDep) -> AsyncIterator[ServerSentEvent]:
    """``changed`` once the read models moved (the queue page then reloads its list; at most
    one event a second)."""
    runtime = runtime_of(request)
    stopping: asyncio.Event = request.app.state.stopping

    moved = runtime.shared_positions  # one read for all of this process's feeds
    credential = _live_credential(request)
    seen = await run_in_threadpool(moved)
    yield ServerSentEvent(comment="connected", retry=2000)
    while not stopping.is_set():
        await runtime.wait_for_change_or(stopping, min(_LIVE_POLL_SECONDS, credential.interval))
        if not await credential.holds():
            yield _ended()
            return
        now = await run_in_threadpool(moved)
        if now["store"] == seen["store"]:
            continue
        # Something was recorded: wait (briefly) for the views to show it, then say so.
        deadline = asyncio.get_running_loop().time() + VISIBLE_WAIT_SECONDS
        while now == seen or min(v for k, v in now.items() if k != "store") < now["store"]:
            if asyncio.get_running_loop().time() > deadline or stopping.is_set():
                break
            await asyncio.sleep(0.05)
            now = await run_in_threadpool(moved)
        seen = now
        yield ServerSentEvent(data=str(now["store"]), event="changed")
        await asyncio.sleep(1.0)


@router.get("/customers/{customer_id}/live", response_class=EventSourceResponse)
async def live(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
) -> AsyncIterator[ServerSentEvent]:
    """New timeline items of this customer as HTML (``item``), and changed delivery ticks
    of the outbound messages on the page (``update``), as they happen; ``error`` and the end
    once the session no longer holds (checked before each batch and every few seconds)."""
    runtime = runtime_of(request)
    stopping: asyncio.Event = request.app.state.stopping
    credential = _live_credential(request)

    def group_and_outbound() -> tuple[list[UUID], dict[UUID, str | None]]:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            items, _ = runtime.views.timeline.page(conn, group, 50, None)
        return group, {i.item_id: i.delivery_status for i in items if _watched(i)}

    group, watched = await run_in_threadpool(group_and_outbound)
    # one entry per feed opened, not per item it pushes
    runtime.access_log.record(agent.principal, group, "console:live_feed", 0)
    position = after
    yield ServerSentEvent(comment="connected", retry=2000)
    while not stopping.is_set():
        if not await credential.holds():
            yield _ended()
            return

        def changes(after: int) -> tuple[list[TimelineItem], list[TimelineItem]]:
            with runtime.read() as conn:
                new = timeline_after(conn, group, after)
                current = runtime.views.timeline.items(conn, list(watched))
            changed = [i for i in current.values() if i.delivery_status != watched[i.item_id]]
            return new, changed

        new, changed = await run_in_threadpool(changes, position)
        for item in new:
            position = max(position, item.position)
            if _watched(item):
                watched[item.item_id] = item.delivery_status
            yield ServerSentEvent(raw_data=_item_html(item), event="item", id=str(position))
        for item in changed:
            watched[item.item_id] = item.delivery_status
            yield ServerSentEvent(raw_data=_item_html(item), event="update")
        if new or changed:
            continue
        await runtime.wait_for_change_or(stopping, min(_LIVE_POLL_SECONDS, credential.interval))
        await asyncio.sleep(0.05)  # the views follow the store: give them a moment


def _watched(item: TimelineItem) -> bool:
    """Items whose status changes after they appear: the hub's outbound messages (delivery
    ticks) and scheduled messages (sent, skipped, cancelled)."""
    return item.direction == "outbound" or item.kind == "scheduled"


def _item_html(item: TimelineItem) -> str:
    html = templates.env.get_template("_item.html").render(item=item)
    return " ".join(html.split("\n"))  # one SSE data line
