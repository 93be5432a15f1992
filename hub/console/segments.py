"""The console's customers page: every customer, filtered by a saved segment
(``?segment=<id>``) or by ad-hoc filters (a form of the common conditions, or the filter
language's JSON for anything else), a page at a time with the total; an ad-hoc filter saved
as a segment, a segment changed or deleted.

``GET /customers?q=...`` was the customer search: it now goes to ``/search`` (customers and
messages together). Membership is the views' SQL (``hub.runtime.segments``); every page
works without JavaScript.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hub.console.shared import AgentDep, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError
from hub.domain.segments import SegmentRecord
from hub.events import CHANNEL_ADDRESS_KINDS
from hub.events.segments import (
    CONSENT_CHANNELS,
    Filter,
    FilterRuleError,
    canonical,
    parse_filter,
)
from hub.runtime import Runtime
from hub.runtime import segments as desk
from hub.runtime.consent import rules_of

router = APIRouter(include_in_schema=False)
PAGE = 50
#: The access log's name of this page's reads.
ACTION = "console:customers"
#: The form's fields (query parameters), each one condition of the filter when given.
FORM_FIELDS = (
    "tag",
    "channel",
    "language",
    "source",
    "consent_channel",
    "consent_purpose",
    "first_within",
    "last_within",
    "open",
)


class FormError(ValueError):
    """A form field the filter cannot take; the message says which and why."""


@dataclass
class Shown:
    """What the page shows: the filter (saved, from the form or from JSON), its customers,
    and why not, if it cannot."""

    tree: Filter | None = None
    segment: SegmentRecord | None = None
    result: desk.SegmentPage | None = None
    error: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    json_text: str = ""


@router.get("/customers", response_class=HTMLResponse)
async def customers_page(
    request: Request,
    agent: AgentDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    segment: Annotated[str, Query(max_length=100)] = "",
    filter: Annotated[str, Query(max_length=20_000)] = "",
    cursor: Annotated[str, Query(max_length=100)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    if q is not None:  # the former customer search: customers and messages together now
        return RedirectResponse(f"/search?q={quote(q)}", status_code=303)
    runtime = runtime_of(request)
    fields = {name: request.query_params.get(name, "").strip()[:200] for name in FORM_FIELDS}
    shown = await run_in_threadpool(_load, runtime, segment, filter, fields, cursor)
    if shown.result is not None:
        for r in shown.result.customers:  # one entry per customer shown
            access = [r.customer_id, *r.merged_customer_ids]
            runtime.access_log.record(agent.principal, access, ACTION)
    segments = await run_in_threadpool(runtime.commands.segments.all)
    status = 200 if shown.error is None else 422
    if shown.segment is None and segment and shown.error:
        status = 404
    return page(
        request,
        "segments.html",
        status=status,
        agent=agent,
        shown=shown,
        segments=segments,
        notice=error,
        channels=sorted(CHANNEL_ADDRESS_KINDS),
        consent_channels=CONSENT_CHANNELS,
        purposes=rules_of(runtime).purposes,
        next_url=_next_url(request, shown),
    )


def _load(
    runtime: Runtime, segment: str, json_text: str, fields: dict[str, str], cursor: str
) -> Shown:
    shown = Shown(fields=fields)
    try:
        if segment:
            shown.segment = runtime.commands.segments.get(_segment_id(segment))
            shown.tree = shown.segment.tree
        elif json_text.strip():
            shown.tree = parse_filter(json.loads(json_text))
        else:
            shown.tree = parse_filter(form_filter(fields))
        desk.check(runtime, shown.tree)
        shown.result = desk.customers(runtime, shown.tree, PAGE, cursor or None)
    except (DomainError, FormError, desk.InvalidCursor) as exc:
        shown.error = exc.message if isinstance(exc, DomainError) else str(exc)
    except FilterRuleError as exc:
        shown.error = f"The filter breaks a rule: {exc}."
    except json.JSONDecodeError as exc:
        shown.error = f"The filter is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    except ValidationError as exc:
        shown.error = "The filter does not fit the language: " + "; ".join(
            _problem(e) for e in exc.errors()[:5]
        )
    shown.json_text = (
        json.dumps(canonical(shown.tree), indent=2, ensure_ascii=False)
        if shown.tree is not None
        else json_text
    )
    return shown


def _segment_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise FormError(f"no segment {value!r}") from None


def _problem(error: Any) -> str:
    parts: list[str] = []
    for part in map(str, error.get("loc", ())):
        # The union's tag repeats the key it names: "consent.consent.channel".
        if not part.startswith(("function", "tagged-union")) and parts[-1:] != [part]:
            parts.append(part)
    where = ".".join(parts)
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def form_filter(fields: dict[str, str]) -> dict[str, Any]:
    """The filter of the form's fields: each field given is one condition, all must hold."""
    leaves: list[dict[str, Any]] = []
    if fields.get("tag"):
        leaves.append({"tag": fields["tag"]})
    if fields.get("channel"):
        leaves.append({"channel": fields["channel"]})
    if fields.get("language"):
        leaves.append({"language": fields["language"]})
    if fields.get("source"):
        leaves.append({"source": fields["source"]})
    if fields.get("consent_channel"):  # the purpose alone (it always has one) is no filter
        purpose = fields.get("consent_purpose") or "marketing"
        leaves.append({"consent": {"channel": fields["consent_channel"], "purpose": purpose}})
    for name, key in (("first_within", "first_contact"), ("last_within", "last_contact")):
        if fields.get(name):
            leaves.append({key: {"within_days": _days(name, fields[name])}})
    if fields.get("open") in ("yes", "no"):
        leaves.append({"open_conversations": fields["open"] == "yes"})
    return {"all": leaves}


def _days(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        what = "first" if name == "first_within" else "last"
        raise FormError(f"{what} contact within: {value!r} is not a number of days") from None


def _next_url(request: Request, shown: Shown) -> str | None:
    if shown.result is None or shown.result.next_cursor is None:
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "error")]
    return "/customers?" + urlencode([*params, ("cursor", shown.result.next_cursor)])


# -- saving, changing and deleting segments -------------------------------------------------


@router.post("/customers/segments")
async def save_segment(
    request: Request,
    agent: PostingAgent,
    name: Annotated[str, Form(max_length=300)] = "",
    filter: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Save the filter shown as a new segment; then show it."""
    runtime = runtime_of(request)

    def save() -> SegmentRecord:
        tree = _posted_tree(filter)
        desk.check(runtime, tree)
        return runtime.commands.segments.define(name, tree, actor=agent.name)

    try:
        record = await run_in_threadpool(save)
    except (DomainError, FormError) as exc:
        return _back({"filter": filter}, exc)
    return RedirectResponse(f"/customers?segment={record.segment_id}", status_code=303)


@router.post("/customers/segments/{segment_id}")
async def change_segment(
    request: Request,
    segment_id: UUID,
    agent: PostingAgent,
    name: Annotated[str, Form(max_length=300)] = "",
    filter: Annotated[str, Form(max_length=20_000)] = "",
    description: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Rename the segment and replace its filter with the one given."""
    runtime = runtime_of(request)

    def change() -> None:
        tree = _posted_tree(filter)
        desk.check(runtime, tree)
        runtime.commands.segments.change(
            segment_id, name, tree, description=description or None, actor=agent.name
        )

    try:
        await run_in_threadpool(change)
    except (DomainError, FormError) as exc:
        return _back({"segment": str(segment_id)}, exc)
    return RedirectResponse(f"/customers?segment={segment_id}", status_code=303)


@router.post("/customers/segments/{segment_id}/delete")
async def delete_segment(request: Request, segment_id: UUID, agent: PostingAgent) -> Response:
    runtime = runtime_of(request)
    try:
        await run_in_threadpool(
            lambda: runtime.commands.segments.delete(segment_id, actor=agent.name)
        )
    except DomainError as exc:
        return _back({}, exc)
    return RedirectResponse("/customers", status_code=303)


def _posted_tree(text: str) -> Filter:
    try:
        return parse_filter(json.loads(text))
    except json.JSONDecodeError as exc:
        raise FormError(f"The filter is not JSON: {exc.msg}.") from None
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors()[:5])
        raise FormError(f"The filter does not fit the language: {problems}") from None
    except FilterRuleError as exc:
        raise FormError(f"The filter breaks a rule: {exc}.") from None


def _back(params: dict[str, str], exc: Exception) -> Response:
    message = exc.message if isinstance(exc, DomainError) else str(exc)
    query = urlencode({**params, "error": message[:500]})
    return RedirectResponse(f"/customers?{query}", status_code=303)
