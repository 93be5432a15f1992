"""The console's "view as of": a customer's timeline and conversations as the hub knew them at
a moment (``hub.runtime.history``, docs/history.md), e.g. what an agent saw when they
answered: each outbound message links here as of its sending.

- ``/customers/{id}/as-of?at=...&tz=...``: the form on the customer page (a local time in the
  agent's time zone, which ``static/history.js`` fills in; UTC without script) or any
  RFC 3339 time; ``?position=N``: as of the moment store position N was recorded (the
  outbound messages' links); ``&before=``: an older page (a fragment to console.js);
- ``/customers/{id}/as-of/{position}/items?before=``: older items, for endless scrolling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console.shared import Agent, AgentDep, invalid_cursor, page, runtime_of
from hub.projections.directory import CustomerRecord
from hub.projections.queries import TIMELINE_PAGE
from hub.runtime import Runtime
from hub.runtime.history import NotKnownThen, TimelineAsOf, moment_of, timeline_as_of

router = APIRouter(include_in_schema=False)
#: The access log's name of a read here (``hub.store.access_log``).
ACTION = "console:as_of"
#: A store position (PostgreSQL's bigint).
Position = Annotated[int, Query(ge=1, le=2**63 - 1)]


@dataclass(frozen=True, slots=True)
class Then:
    """What the as-of page shows: the timeline of the moment, and the customer as known now."""

    found: TimelineAsOf
    profile: CustomerRecord | None  # the group's root today (its name)


@router.get("/customers/{customer_id}/as-of", response_class=HTMLResponse)
async def as_of_page(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    at: Annotated[str, Query(max_length=100)] = "",
    tz: Annotated[str, Query(max_length=100)] = "UTC",
    position: Position | None = None,
    before: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    runtime = runtime_of(request)
    back = f"/customers/{customer_id}"
    if position is not None:
        moment = await run_in_threadpool(moment_of, runtime.views, position)
        if moment is None:
            return _refused(back, f"nothing was recorded at store position {position}")
    elif at.strip():
        try:
            moment = moment_from(at, tz)
        except ValueError as exc:
            return _refused(back, str(exc))
    else:
        return RedirectResponse(back, 303)
    fragment = request.headers.get("X-Requested-With") == "fetch"
    return await _answer(request, agent, customer_id, moment, before, fragment)


@router.get("/customers/{customer_id}/as-of/{position}/items", response_class=HTMLResponse)
async def as_of_items(
    request: Request,
    customer_id: UUID,
    position: Annotated[int, Path(ge=1, le=2**63 - 1)],
    agent: AgentDep,
    before: Annotated[str, Query(max_length=500)],
) -> Response:
    """Older items of a timeline as of a moment, as list items (console.js scrolling back)."""
    runtime = runtime_of(request)
    moment = await run_in_threadpool(moment_of, runtime.views, position)
    if moment is None:
        return page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)
    return await _answer(request, agent, customer_id, moment, before, fragment=True)


def moment_from(at: str, tz: str) -> datetime:
    """The moment a form or link gives, in UTC: an RFC 3339 time with its offset, or a local
    time without one (a datetime-local input's) in the IANA time zone ``tz``. ValueError,
    saying why, for anything else."""
    try:
        value = datetime.fromisoformat(at.strip())
    except ValueError:
        raise ValueError(f"{at!r} is not a date and time") from None
    if value.tzinfo is None:
        try:
            value = value.replace(tzinfo=ZoneInfo(tz.strip() or "UTC"))
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"{tz!r} is not a time zone") from None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{at!r} is outside the times the hub can hold") from None


def _refused(back: str, reason: str) -> Response:
    return RedirectResponse(f"{back}?error={quote(reason)}#timeline-title", 303)


async def _answer(
    request: Request,
    agent: Agent,
    customer_id: UUID,
    moment: datetime,
    before: str | None,
    fragment: bool,
) -> Response:
    runtime = runtime_of(request)
    try:
        then = await run_in_threadpool(_load, runtime, customer_id, moment, before)
    except ValueError:  # a cursor this console did not make
        raise invalid_cursor() from None
    if then is None:
        return await _absent(request, agent, customer_id, moment)
    found = then.found
    runtime.access_log.record(agent.principal, found.group, ACTION, len(found.items))
    if fragment:
        response = page(request, "_items.html", agent=agent, items=found.items)
        if found.next_cursor:
            response.headers["X-Older"] = found.next_cursor
        return response
    return page(
        request, "history.html", agent=agent, then=then, found=found, moment=moment, older=before
    )


def _load(runtime: Runtime, customer_id: UUID, moment: datetime, before: str | None) -> Then | None:
    """The page's data; None when the customer is erased or was not known then."""
    with runtime.read() as conn:
        if runtime.views.erased_among(conn, [customer_id]):
            return None
    try:
        found = timeline_as_of(
            runtime.store, runtime.views, customer_id, moment, TIMELINE_PAGE, before
        )
    except NotKnownThen:
        return None
    with runtime.read() as conn:
        profile = runtime.views.directory.profile(conn, found.customer_id)
    return Then(found, profile)


async def _absent(request: Request, agent: Agent, customer_id: UUID, moment: datetime) -> Response:
    """Erased (410), unknown (404), or not known yet at that moment (404, saying so)."""
    runtime = runtime_of(request)

    def today() -> tuple[bool, CustomerRecord | None]:
        with runtime.read() as conn:
            if runtime.views.erased_among(conn, [customer_id]):
                return True, None
            return False, runtime.views.directory.profile(conn, customer_id)

    erased, profile = await run_in_threadpool(today)
    if erased:
        return page(request, "erased.html", status=410, agent=agent, customer_id=customer_id)
    if profile is None:
        return page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)
    return page(
        request,
        "history.html",
        status=404,
        agent=agent,
        then=None,
        found=None,
        moment=moment,
        customer_id=customer_id,
        profile=profile,
        older=None,
    )
