"""The console's pages: the queue of conversations, customer search, a customer (profile,
conversations with their reply forms, the newest page of the timeline) and older pages of a
timeline (endless scrolling back).

Every page works without JavaScript; the views answer every list, and what they do not hold
(reply options, consent) comes from the runtime for the one customer shown.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console import present
from hub.console.shared import (
    CHANNELS,
    STATUSES,
    AgentDep,
    invalid_cursor,
    page,
    runtime_of,
)
from hub.domain.errors import DomainError
from hub.projections.queries import QueueFilter, assignees, customer_page, queue
from hub.projections.timeline import TimelineItem
from hub.runtime import Runtime

router = APIRouter(include_in_schema=False)


# -- the queue and search -------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    agent: AgentDep,
    status: Annotated[str, Query()] = "active",
    channel: Annotated[str, Query()] = "",
    assignee: Annotated[str, Query()] = "",
    before: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    runtime = runtime_of(request)
    statuses = ("open", "pending") if status == "active" else (status,)
    if not set(statuses) <= set(STATUSES):
        statuses, status = ("open", "pending"), "active"
    who = {"": None, "me": agent.name, "none": ""}.get(assignee, assignee)
    wanted = QueueFilter(statuses, channel if channel in CHANNELS else None, who)

    def load() -> tuple[Any, Any, list[str]]:
        with runtime.read() as conn:
            rows, cursor = queue(conn, wanted, before)
            return rows, cursor, assignees(conn)

    try:
        rows, cursor, people = await run_in_threadpool(load)
    except ValueError:  # a cursor this console did not make
        raise invalid_cursor() from None
    return page(
        request,
        "queue.html",
        agent=agent,
        rows=rows,
        cursor=cursor,
        people=people,
        channels=CHANNELS,
        filters={"status": status, "channel": channel, "assignee": assignee},
    )


@router.get("/customers", response_class=HTMLResponse)
async def search_page(
    request: Request, agent: AgentDep, q: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    runtime = runtime_of(request)
    text = q.strip()
    results: list[Any] = []
    if len(text) >= 2:

        def load() -> list[Any]:
            with runtime.read() as conn:
                found, _ = runtime.views.directory.search(conn, text, 50, None)
                return found

        results = await run_in_threadpool(load)
    return page(request, "search.html", agent=agent, q=text, results=results)


# -- a customer -----------------------------------------------------------------------------


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_view(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    runtime = runtime_of(request)
    context = await run_in_threadpool(_customer_context, runtime, customer_id)
    if context is None:
        return page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)
    if context["page"].profile.customer_id != customer_id:  # a merged customer: its group
        return RedirectResponse(f"/customers/{context['page'].profile.customer_id}", 303)
    return page(request, "customer.html", agent=agent, error=error, **context)


def _customer_context(runtime: Runtime, customer_id: UUID) -> dict[str, Any] | None:
    with runtime.read() as conn:
        shown = customer_page(conn, runtime.views, customer_id)
    if shown is None:
        return None
    now = datetime.now(UTC)
    options = {}
    for conversation in shown.active:
        try:
            options[conversation.conversation_id] = runtime.reply_options(
                conversation.conversation_id, CHANNELS, now
            )
        except DomainError:  # a conversation the views show before the store is read
            options[conversation.conversation_id] = []
    consent: dict[str, bool] = {}
    for member in shown.group:
        with contextlib.suppress(DomainError):  # a member the store cannot show: skip it
            consent |= runtime.commands.outbound.consent_of(member)
    profile = present.profile_facts(
        shown.profile, consent, runtime.settings.dispatch.default_time_zone, now
    )
    return {
        "page": shown,
        "profile": profile,
        "options": options,
        "keys": {c.conversation_id: uuid4().hex for c in shown.active},
        "position": max((i.position for i in shown.items), default=0),
    }


@router.get("/customers/{customer_id}/items", response_class=HTMLResponse)
async def older_items(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    before: Annotated[str, Query()],
) -> Response:
    """An older page of the timeline, as list items (endless scrolling back)."""
    runtime = runtime_of(request)

    def load() -> tuple[list[TimelineItem], str | None]:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            return runtime.views.timeline.page(conn, group, 50, before)

    try:
        items, older = await run_in_threadpool(load)
    except ValueError:  # a cursor this console did not make
        raise invalid_cursor() from None
    response = page(request, "_items.html", agent=agent, items=items)
    if older:
        response.headers["X-Older"] = older
    return response
