"""Duplicate suggestions in the console: the "possible duplicates" card of a customer's page
(:func:`card`, in ``_customer_context``), the review page (``/duplicates``), the merge preview
of a pair with its two buttons (merge, or "not the same person"), and the undo of a dismissal.

Every form works without JavaScript (a post, then a redirect); the card's forms are also
posted in the background by ``console.js``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console.shared import (
    VISIBLE_WAIT_SECONDS,
    Agent,
    AgentDep,
    PostingAgent,
    page,
    runtime_of,
)
from hub.domain.errors import DomainError
from hub.projections.directory import CustomerRecord
from hub.projections.duplicate_evidence import shown
from hub.projections.duplicate_queries import FieldChoice, MergePreview, Suggestion
from hub.runtime import Runtime
from hub.runtime import duplicates as desk
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: Suggestions on a customer's page (the review page lists them all).
CARD_SHOWN = 5
QUEUE_PAGE = 25
_BANDS = ("high", "medium", "low")


@dataclass(frozen=True, slots=True)
class Card:
    """The "possible duplicates" card of a customer's page: its suggestions and the customers
    an agent said are someone else (each with an undo)."""

    customer_id: UUID
    suggestions: list[Suggestion]
    more: int
    dismissed: list[CustomerRecord]


def card(runtime: Runtime, customer_id: UUID, principal: Principal | None = None) -> Card | None:
    """The card's data for the customer page of ``customer_id`` (a root); None when the
    views or the store cannot tell (the page shows the rest). Reading it is access-logged
    for the other customers it names."""
    try:
        found = desk.suggestions(runtime, customer_id)
        dismissed_ids = runtime.commands.duplicates.dismissed(customer_id)
    except DomainError:
        return None
    with runtime.read() as conn:
        dismissed = [
            r for r in (runtime.views.directory.profile(conn, c) for c in dismissed_ids) if r
        ]
    if principal is not None:
        named = [c for s in found[:CARD_SHOWN] for c in _ids(s.other_than(customer_id))]
        named += [c for r in dismissed for c in _ids(r)]
        if named:
            runtime.access_log.record(principal, named, "console:duplicates_card")
    return Card(customer_id, found[:CARD_SHOWN], max(0, len(found) - CARD_SHOWN), dismissed)


def _ids(record: CustomerRecord) -> list[UUID]:
    return [record.customer_id, *record.merged_customer_ids]


def name_of(record: CustomerRecord) -> str:
    """How the console names a customer: its name, else its first address."""
    if record.display_name:
        return record.display_name
    return shown(record.identities[0].address) if record.identities else "Unknown customer"


# -- the review page -------------------------------------------------------------------------


@router.get("/duplicates", response_class=HTMLResponse)
async def review_page(
    request: Request,
    agent: AgentDep,
    band: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
    undo: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """Every suggested pair, highest score first, a page at a time."""
    runtime = runtime_of(request)
    wanted: Any = band if band in _BANDS else None

    def load() -> tuple[list[Suggestion], str | None]:
        found, following = desk.queue(runtime, QUEUE_PAGE, cursor, wanted)
        for s in found:
            runtime.access_log.record(
                agent.principal, [*_ids(s.first), *_ids(s.second)], "console:duplicates"
            )
        return found, following

    try:
        found, following = await run_in_threadpool(load)
    except ValueError:
        raise ApiError(400, "invalid_cursor", "cursor= is not one this console gave") from None
    return page(
        request,
        "duplicates.html",
        agent=agent,
        pairs=found,
        band=wanted or "",
        bands=_BANDS,
        next_url=f"/duplicates?{urlencode({'band': wanted or '', 'cursor': following})}"
        if following
        else None,
        error=error,
        undo=_undo_pair(undo),
        name_of=name_of,
        shown=shown,
    )


def _undo_pair(value: str | None) -> tuple[UUID, UUID] | None:
    """The pair a dismissal just recorded (``?undo=a.b``), to offer its undo."""
    if not value:
        return None
    first, _, second = value.partition(".")
    try:
        return UUID(first), UUID(second)
    except ValueError:
        return None


# -- the merge preview -----------------------------------------------------------------------


@router.get("/duplicates/{survivor_id}/{merged_id}", response_class=HTMLResponse)
async def preview_page(
    request: Request,
    survivor_id: UUID,
    merged_id: UUID,
    agent: AgentDep,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """What merging ``merged_id`` into ``survivor_id`` would show, the evidence, and the two
    buttons."""
    return await show_preview(
        request, agent, survivor_id, merged_id, "duplicate_preview.html", error
    )


async def show_preview(
    request: Request,
    agent: Agent,
    survivor_id: UUID,
    merged_id: UUID,
    template: str,
    error: str | None,
    **context: Any,
) -> Response:
    """The merge preview of the pair in ``template`` (``duplicate_preview.html`` or a page
    extending it): 404 when either is unknown, the customer's page when they are one already.
    Reading it is access-logged for both groups."""
    runtime = runtime_of(request)

    def load() -> tuple[MergePreview | None, list[Suggestion]]:
        found = desk.preview(runtime, survivor_id, merged_id)
        if found is None or found.survivor.customer_id == found.merged.customer_id:
            return found, []
        runtime.access_log.record(
            agent.principal,
            [*_ids(found.survivor), *_ids(found.merged)],
            "console:merge_preview",
        )
        pairs = desk.suggestions(runtime, survivor_id)
        other = found.merged.customer_id
        return found, [
            s for s in pairs if s.other_than(found.survivor.customer_id).customer_id == other
        ]

    preview, suggestion = await run_in_threadpool(load)
    if preview is None:
        raise ApiError(404, "not_found", "one of these customers is not known (or was erased)")
    if preview.survivor.customer_id == preview.merged.customer_id:
        return RedirectResponse(f"/customers/{preview.survivor.customer_id}", 303)
    return page(
        request,
        template,
        agent=agent,
        preview=preview,
        suggestion=suggestion[0] if suggestion else None,
        rows=[_field_row(f) for f in preview.fields],
        error=error,
        name_of=name_of,
        shown=shown,
        **context,
    )


@dataclass(frozen=True, slots=True)
class FieldRow:
    label: str
    survivor: str
    merged: str
    result: str
    source: str | None
    conflict: bool


def _field_row(choice: FieldChoice) -> FieldRow:
    return FieldRow(
        label=choice.name.removeprefix("attributes.").replace("_", " "),
        survivor=_text(choice.survivor),
        merged=_text(choice.merged),
        result=_text(choice.result),
        source=choice.source,
        conflict=choice.conflict,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items() if v not in (None, ""))
    return str(value)


# -- the commands ----------------------------------------------------------------------------


def with_query(url: str, **params: str) -> str:
    """``url`` (a path, perhaps with a query and an anchor) with ``params`` added."""
    path, _, anchor = url.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{urlencode(params)}" + (f"#{anchor}" if anchor else "")


def _back(value: str, default: str) -> str:
    """Where a form goes back to: one of the console's own pages."""
    return value if value.startswith("/") and not value.startswith("//") else default


async def _decide(
    request: Request,
    back: str,
    run: Callable[[], Any],
    visible: Callable[[], bool] | None = None,
) -> Response:
    """Run a command, wait (briefly) until the views show it (``visible``; by default, until
    the duplicates view has applied everything recorded), and go ``back``; a refusal comes
    back as that page with the reason (to console.js, as JSON)."""
    fetched = request.headers.get("x-requested-with") == "fetch"
    runtime = runtime_of(request)
    try:
        await run_in_threadpool(run)
        position = await run_in_threadpool(runtime.store_position)
    except DomainError as exc:
        if fetched:
            body = json.dumps({"code": exc.code, "message": exc.message})
            return Response(body, status_code=exc.status, media_type="application/json")
        return RedirectResponse(with_query(back, error=exc.message), 303)
    shows = visible or (lambda: runtime.views.low_water_mark(["duplicates"]) >= position)
    deadline = asyncio.get_running_loop().time() + VISIBLE_WAIT_SECONDS
    while not await run_in_threadpool(shows):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    return Response(status_code=204) if fetched else RedirectResponse(back, 303)


@router.post("/duplicates/{customer_id}/{other_id}/dismiss")
async def dismiss(
    request: Request,
    customer_id: UUID,
    other_id: UUID,
    agent: PostingAgent,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Not the same person: recorded on both; back where the agent was, with an undo."""
    runtime = runtime_of(request)
    return await _decide(
        request,
        with_query(_back(back, "/duplicates"), undo=f"{customer_id}.{other_id}"),
        lambda: runtime.commands.duplicates.dismiss(customer_id, other_id, actor=agent.name),
    )


@router.post("/duplicates/{customer_id}/{other_id}/restore")
async def restore(
    request: Request,
    customer_id: UUID,
    other_id: UUID,
    agent: PostingAgent,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Undo a "not the same person"."""
    runtime = runtime_of(request)
    return await _decide(
        request,
        _back(back, "/duplicates"),
        lambda: runtime.commands.duplicates.restore(customer_id, other_id, actor=agent.name),
    )


@router.post("/duplicates/{survivor_id}/{merged_id}/merge")
async def merge(
    request: Request,
    survivor_id: UUID,
    merged_id: UUID,
    agent: PostingAgent,
) -> Response:
    """Merge ``merged_id`` into ``survivor_id`` (the identity commands' merge), then show the
    merged customer; refused (too large a group, merged elsewhere): the preview says why."""
    return await merge_then_show(
        request,
        agent,
        survivor_id,
        merged_id,
        "duplicate suggestion",
        f"/duplicates/{survivor_id}/{merged_id}",
    )


async def merge_then_show(
    request: Request,
    agent: Agent,
    survivor_id: UUID,
    merged_id: UUID,
    reason: str,
    preview_path: str,
) -> Response:
    """Merge ``merged_id`` into ``survivor_id`` recorded with the agent and ``reason``, wait
    until the views show them as one, and go to the customer; a refusal goes back to
    ``preview_path`` with the reason."""
    runtime = runtime_of(request)

    def merged() -> bool:
        with runtime.read() as conn:
            directory = runtime.views.directory
            return directory.root(conn, merged_id) == directory.root(conn, survivor_id)

    response = await _decide(
        request,
        preview_path,
        lambda: runtime.commands.identity.merge(
            survivor_id, merged_id, actor=agent.name, reason=reason
        ),
        merged,
    )
    if response.status_code == 303 and "error=" not in response.headers.get("location", ""):
        return RedirectResponse(f"/customers/{survivor_id}", 303)
    return response
