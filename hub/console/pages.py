"""The console's pages: the queue of conversations, customer search, a customer (profile,
conversations with their reply forms, the newest page of the timeline) and older pages of a
timeline (endless scrolling back).

Every page works without JavaScript; the views answer every list, and what they do not hold
(reply options, consent) comes from the runtime for the one customer shown.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from hub.console import customer_actions, duplicates, present, scheduled
from hub.console.shared import (
    CHANNELS,
    STATUSES,
    Agent,
    AgentDep,
    invalid_cursor,
    page,
    runtime_of,
)
from hub.domain.consent import CHANNELS as CONSENT_CHANNELS
from hub.domain.erasure import ERASURE_REASONS
from hub.domain.errors import DomainError
from hub.domain.lawfulness import lawfulness_in
from hub.projections.queries import QueueFilter, assignees, customer_page, queue
from hub.projections.timeline import TimelineItem
from hub.runtime import Runtime
from hub.runtime.consent import confirmation_url, consent_view
from hub.runtime.export import prepare_export
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: How many access-log entries an admin sees on a customer's page (the API pages through all).
ACCESS_LOG_SHOWN = 20
#: The queue's "SLA due" filter: value, label, how far ahead.
DUE_CHOICES = (
    ("breached", "Breached", timedelta(0)),
    ("1h", "Within 1 hour", timedelta(hours=1)),
    ("4h", "Within 4 hours", timedelta(hours=4)),
    ("24h", "Within 24 hours", timedelta(hours=24)),
)
DUE_WITHIN = {value: ahead for value, _, ahead in DUE_CHOICES}


# -- the queue and search -------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    agent: AgentDep,
    status: Annotated[str, Query()] = "active",
    channel: Annotated[str, Query()] = "",
    assignee: Annotated[str, Query()] = "",
    sort: Annotated[str, Query()] = "activity",
    due: Annotated[str, Query()] = "",
    before: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    runtime = runtime_of(request)
    statuses = ("open", "pending") if status == "active" else (status,)
    if not set(statuses) <= set(STATUSES):
        statuses, status = ("open", "pending"), "active"
    who = {"": None, "me": agent.name, "none": ""}.get(assignee, assignee)
    sort = sort if sort in ("activity", "due") else "activity"
    within = DUE_WITHIN.get(due)
    due = due if within is not None else ""
    wanted = QueueFilter(
        statuses, channel if channel in CHANNELS else None, who, sort=sort, due_within=within
    )

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
        filters={
            "status": status,
            "channel": channel,
            "assignee": assignee,
            "sort": sort,
            "due": due,
        },
        due_choices=DUE_CHOICES,
        now=datetime.now(UTC),
    )


# -- a customer -----------------------------------------------------------------------------


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_view(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    runtime = runtime_of(request)
    context = await run_in_threadpool(_customer_context, runtime, customer_id, agent.principal)
    if context is None:
        return await _absent(request, agent, customer_id)
    if context["page"].profile.customer_id != customer_id:  # a merged customer: its group
        return RedirectResponse(f"/customers/{context['page'].profile.customer_id}", 303)
    shown = context["page"]
    runtime.access_log.record(
        agent.principal, shown.group, "console:customer_page", len(shown.items)
    )
    return page(request, "customer.html", agent=agent, error=error, **context)


async def _absent(request: Request, agent: Agent, customer_id: UUID) -> Response:
    """The page of a customer the views do not show: erased (410) or not (yet) known (404)."""
    runtime = runtime_of(request)

    def erased() -> bool:
        with runtime.read() as conn:
            return bool(runtime.views.erased_among(conn, [customer_id]))

    if await run_in_threadpool(erased):
        return page(request, "erased.html", status=410, agent=agent, customer_id=customer_id)
    return page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)


def _customer_context(
    runtime: Runtime, customer_id: UUID, principal: Principal | None = None
) -> dict[str, Any] | None:
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
    try:
        new_options = runtime.new_conversation_options(shown.profile.customer_id, CHANNELS, now)
    except DomainError:  # a customer the views show before the store is read
        new_options = []
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
        "new_conversation": {"options": new_options, "key": uuid4().hex},
        "position": max((i.position for i in shown.items), default=0),
        "scheduling": scheduled.form_context(runtime, profile, now),
        "timeline_actions": True,  # the Cancel of a scheduled message (not on "as of" pages)
        "erasure_reasons": ERASURE_REASONS,
        "consent": _consent_of(runtime, shown.profile.customer_id, profile),
        "duplicates": duplicates.card(runtime, shown.profile.customer_id, principal),
        "members": customer_actions.members(runtime, shown),
        # who read this customer's personal data: admins only (ids and token names)
        "access_log": (
            runtime.access_log.entries(shown.group, ACCESS_LOG_SHOWN)[0]
            if principal is not None and principal.role == "admin"
            else None
        ),
    }


def _consent_of(
    runtime: Runtime, customer_id: UUID, profile: present.ProfileFacts
) -> dict[str, Any] | None:
    """The consent partial's data (``_consent.html``): the state of the channels that reach
    the customer (and any other with a ledger line), the ledger newest first, and the link of
    each double opt-in request still waiting for the customer. None: the store cannot show it."""
    try:
        view = consent_view(runtime, customer_id)
    except DomainError:
        return None
    recorded = {line.channel for line in view.history}
    reached = {row.channel for row in profile.consent}
    channels = [c for c in CONSENT_CHANNELS if c in reached or c in recorded]
    cells = {(c.channel, c.purpose): c for c in view.state}
    links = {
        c.pending.request_id: confirmation_url(
            runtime, c.pending.customer_id, c.pending.request_id, c.pending.expires_at
        )
        for c in view.state
        if c.pending is not None and c.pending.request_id and c.pending.expires_at
    }
    return {
        "purposes": view.purposes,
        "rows": [(ch, [cells[(ch, p)] for p in view.purposes]) for ch in channels],
        "channels": CONSENT_CHANNELS,
        "history": list(reversed(view.history)),
        "links": links,
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
            found = runtime.views.timeline.page(conn, group, 50, before)
        runtime.access_log.record(agent.principal, group, "console:older_items", len(found[0]))
        return found

    try:
        items, older = await run_in_threadpool(load)
    except ValueError:  # a cursor this console did not make
        raise invalid_cursor() from None
    response = page(request, "_items.html", agent=agent, items=items, timeline_actions=True)
    if older:
        response.headers["X-Older"] = older
    return response


# -- why was a message sent? ----------------------------------------------------------------


@router.get("/messages/{message_id}/why", response_class=HTMLResponse)
async def why_sent(request: Request, message_id: UUID, agent: AgentDep) -> Response:
    """Why was this sent? One message of a timeline: the lawfulness answer
    (``hub.domain.lawfulness``) read from the message's own events. A page of its own, or
    (asked with ``X-Requested-With: fetch``) the fragment alone, to show in place."""
    runtime = runtime_of(request)
    answer = await run_in_threadpool(lawfulness_in, runtime.store.app.events, message_id)
    if answer is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    runtime.access_log.record(agent.principal, [answer.customer_id], "console:why_sent")
    fragment = request.headers.get("X-Requested-With") == "fetch"
    return page(request, "_why.html" if fragment else "why.html", agent=agent, answer=answer)


# -- a customer's export (admins) -----------------------------------------------------------


@router.get("/customers/{customer_id}/export")
async def export_download(request: Request, customer_id: UUID, agent: AgentDep) -> Response:
    """Everything the hub holds about the person (the whole merge group) as a JSON download,
    for admins only (``hub.runtime.export``); recorded in the access log as ``console:export``."""
    if agent.principal.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may export a customer's data")
    runtime = runtime_of(request)
    try:
        export = await run_in_threadpool(prepare_export, runtime, customer_id)
    except DomainError:  # unknown or erased: the page says which
        return await _absent(request, agent, customer_id)
    return StreamingResponse(
        export.recorded_chunks(agent.principal, "console:export"),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{export.customer_id}.json"',
            "Cache-Control": "no-store",
        },
    )
