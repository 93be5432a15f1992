"""The console's search page (``/search``): customers and what was said, together.

Customers come from the directory's search (any part of a name, an email or a phone number);
messages, notes and conversation subjects from the full-text search (whole words, with or
without diacritics, ``hub.runtime.search``), newest first, with filters and older pages. The
top search box of every page comes here. Matched words are marked with ``<mark>`` around
text the template escapes: nothing a customer wrote becomes markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from hub.console.shared import CHANNELS, Agent, AgentDep, invalid_cursor, page, runtime_of
from hub.projections.directory import CustomerRecord
from hub.projections.search_queries import SearchFilter, SearchHit
from hub.runtime import Runtime
from hub.runtime.search import InvalidSearch, SearchRequest, search

router = APIRouter(include_in_schema=False)
#: The access log's name of what this page reads (one entry per customer shown).
ACTION = "console:search"
CUSTOMERS_SHOWN = 10
HITS_PER_PAGE = 25
#: What the kind filter offers: value -> (label, kinds searched).
#: By default messages and notes: a conversation's subject is its first message's too.
KINDS = {
    "": ("Messages and notes", ("message", "note")),
    "message": ("Messages", ("message",)),
    "note": ("Notes", ("note",)),
    "conversation": ("Conversation subjects", ("conversation",)),
}
DIRECTIONS = {"": "Both directions", "inbound": "From customers", "outbound": "To customers"}


@dataclass(frozen=True, slots=True)
class Found:
    """What the page shows: customers, hits, the next page's cursor, why nothing was
    searched (a message for the agent)."""

    customers: list[CustomerRecord]
    hits: list[SearchHit]
    cursor: str | None = None
    problem: str | None = None


@router.get("/search", response_class=HTMLResponse)
async def search_page(
    request: Request,
    agent: AgentDep,
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query()] = "",
    channel: Annotated[str, Query()] = "",
    direction: Annotated[str, Query()] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Search customers and messages; the filters apply to the messages."""
    runtime = runtime_of(request)
    filters = {
        "kind": kind if kind in KINDS else "",
        "channel": channel if channel in CHANNELS else "",
        "direction": direction if direction in DIRECTIONS else "",
        "since": since,
        "until": until,
    }
    text = q.strip()
    found = Found([], [])
    if text:
        found = await run_in_threadpool(_find, runtime, agent, text, filters, before)
    return page(
        request,
        "search_page.html",
        agent=agent,
        q=text,
        found=found,
        filters=filters,
        kinds=KINDS,
        channels=CHANNELS,
        directions=DIRECTIONS,
        more=_more_link(text, filters, found.cursor),
    )


def _find(
    runtime: Runtime, agent: Agent, text: str, filters: dict[str, str], before: str | None
) -> Found:
    customers = customers_matching(runtime, agent, text) if before is None else []
    try:
        wanted = SearchFilter(
            kinds=KINDS[filters["kind"]][1],
            channel=filters["channel"] or None,
            direction=filters["direction"] or None,
            since=_day(filters["since"]),
            until=_day(filters["until"], next_day=True),
        )
    except (ValueError, OverflowError):
        return Found(customers, [], problem="Dates are written as YYYY-MM-DD.")
    request = SearchRequest(q=text, wanted=wanted, limit=HITS_PER_PAGE, cursor=before)
    try:
        hits, cursor = search(runtime, agent.principal, request, ACTION)
    except InvalidSearch as exc:
        if exc.code == "invalid_cursor":
            raise invalid_cursor() from None
        problem = {
            "invalid_query": "Type a word (letters or digits) to search messages for.",
            "invalid_range": "The first day must not be after the last.",
        }.get(exc.code, exc.message)
        return Found(customers, [], problem=problem)
    return Found(customers, hits, cursor)


def customers_matching(runtime: Runtime, agent: Agent, text: str) -> list[CustomerRecord]:
    """The directory's search: any part of a name or an address (two characters at least)."""
    if len(text) < 2:
        return []
    with runtime.read() as conn:
        records, _ = runtime.views.directory.search(conn, text, CUSTOMERS_SHOWN, None)
    for r in records:  # one entry per customer shown (never the query: it is personal)
        runtime.access_log.record(agent.principal, [r.customer_id, *r.merged_customer_ids], ACTION)
    return records


def _day(value: str, next_day: bool = False) -> datetime | None:
    """The start of a day (UTC) the date filter names, or of the next for an "until" (the
    last day is included); ValueError for what is not a date."""
    if not value:
        return None
    day = date.fromisoformat(value) + timedelta(days=1 if next_day else 0)
    return datetime.combine(day, time(), UTC)


def _more_link(text: str, filters: dict[str, str], cursor: str | None) -> dict[str, Any] | None:
    """The query string of the next (older) page, or None."""
    if cursor is None:
        return None
    return {"q": text, **{k: v for k, v in filters.items() if v}, "before": cursor}
