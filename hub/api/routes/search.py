"""Full-text search over everything that was said: ``GET /v1/search`` (docs/search.md).

Messages (text and subject), conversations' subjects, agents' notes, and customers' names and
addresses, with and without diacritics, newest first, cursor-paged, with no time limit. The
index is ``hub.projections.search``; the query syntax ``hub.projections.search_text``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from hub.api.auth import RuntimeDep, require
from hub.api.models import DateTimeText
from hub.api.openapi import errors
from hub.events import Channel, Direction
from hub.projections.search import KINDS
from hub.projections.search_queries import SearchFilter, SearchHit
from hub.projections.search_text import Part
from hub.runtime.search import SearchRequest
from hub.runtime.search import search as search_as
from hub.web.access import Principal

router = APIRouter(prefix="/v1/search", tags=["search"])
Reader = Annotated[Principal, require("read")]
#: The access log's name of a search (one entry per customer shown; never the query).
ACTION = "GET /v1/search"
Kind = Literal["message", "conversation", "note", "customer"]


class SnippetPartOut(BaseModel):
    """A piece of text; ``match``: a word the query looked for (show it marked)."""

    text: str
    match: bool


class ShownCustomerOut(BaseModel):
    """The customer a hit is shown as: the root of its merge group, with its name."""

    customer_id: UUID
    display_name: str | None


class SearchHitOut(BaseModel):
    kind: Kind = Field(
        description="message (its text and subject), conversation (its subject), note (an "
        "agent's), customer (name and addresses)."
    )
    id: UUID = Field(description="The message, conversation, note or customer id.")
    customer_id: UUID = Field(description="The customer whose document this is.")
    customer: ShownCustomerOut
    conversation_id: UUID | None
    channel: Channel | None = Field(description="A note's is its conversation's channel.")
    direction: Direction | None = Field(description="Messages only.")
    occurred_at: datetime = Field(description="When it happened (a customer: first contact).")
    position: int = Field(description="Store position of the event that made the document.")
    subject: list[SnippetPartOut] = Field(
        description="A message's or conversation's subject, a customer's name; pieces to join, "
        "the matched words marked. Empty when there is none."
    )
    snippet: list[SnippetPartOut] = Field(
        description="The text around the first matched word (a customer: the addresses), cut "
        "at about 180 characters with … at a cut; pieces to join, the matched words marked. "
        "Plain text: escape it before putting it in HTML."
    )


class SearchPage(BaseModel):
    items: list[SearchHitOut]
    next_cursor: str | None = Field(description="Pass as cursor= for the next (older) page.")


@router.get(
    "",
    response_model=SearchPage,
    responses=errors(
        (400, "`invalid_cursor`: cursor= is not a next_cursor this API gave."),
        (404, "`not_found`: no customer has the id in customer_id=."),
        (410, "`customer_erased`: the customer in customer_id= was erased."),
        (
            422,
            "`invalid_query`: q= has no word to search for (letters or digits outside a "
            "-exclusion); `invalid_range`: since= is not before until=.",
        ),
    ),
)
async def search(
    runtime: RuntimeDep,
    who: Reader,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description='Words (all must match), "a phrase", either OR other, -excluded, '
            "prefix*; case and diacritics are ignored.",
        ),
    ],
    kind: Annotated[
        list[Kind] | None, Query(description="Only these kinds (repeat the parameter).")
    ] = None,
    channel: Annotated[Channel | None, Query()] = None,
    direction: Annotated[Direction | None, Query()] = None,
    since: Annotated[DateTimeText | None, Query(description="Happened at or after.")] = None,
    until: Annotated[DateTimeText | None, Query(description="Happened before.")] = None,
    customer_id: Annotated[
        UUID | None, Query(description="Only this customer's merge group.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> SearchPage:
    """Search messages, conversation subjects, notes, and customers' names and addresses,
    newest first. Each hit names the customer it is shown as (the root of a merged group) and
    marks the matched words."""
    request = SearchRequest(
        q=q,
        wanted=SearchFilter(
            kinds=tuple(dict.fromkeys(kind)) if kind else KINDS,
            channel=channel,
            direction=direction,
            since=since,
            until=until,
        ),
        customer_id=customer_id,
        limit=limit,
        cursor=cursor,
    )
    hits, next_cursor = await run_in_threadpool(search_as, runtime, who, request, ACTION)
    return SearchPage(items=[_hit(h) for h in hits], next_cursor=next_cursor)


def _parts(parts: tuple[Part, ...]) -> list[SnippetPartOut]:
    return [SnippetPartOut(text=p.text, match=p.match) for p in parts]


def _hit(hit: SearchHit) -> SearchHitOut:
    return SearchHitOut(
        kind=hit.kind,
        id=hit.id,
        customer_id=hit.customer_id,
        customer=ShownCustomerOut(customer_id=hit.shown_customer_id, display_name=hit.display_name),
        conversation_id=hit.conversation_id,
        channel=hit.channel,
        direction=hit.direction,
        occurred_at=hit.occurred_at,
        position=hit.position,
        subject=_parts(hit.title),
        snippet=_parts(hit.snippet),
    )
