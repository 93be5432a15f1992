"""A full-text search on behalf of someone (the API's ``GET /v1/search`` and the console's
search page): the query parsed, a customer filter widened to its merge group, one page of
hits from the search view, and one access-log entry per customer shown.

Refusals are domain errors, so both callers answer them alike: a query without a word
(422 ``invalid_query``), since not before until (422 ``invalid_range``), a cursor no search
gave (400 ``invalid_cursor``), a customer to search within that is unknown (404) or erased
(410).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from uuid import UUID

from hub.domain.errors import CustomerErased, DomainError, NotFound
from hub.projections.search_queries import SearchFilter, SearchHit, find
from hub.projections.search_text import QueryError, parse
from hub.runtime.core import Runtime
from hub.store.tokens import Principal

__all__ = ["InvalidSearch", "SearchRequest", "search"]


class InvalidSearch(DomainError):
    """The search cannot run as asked; the code says why."""

    status = 422

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.status = code, status


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What to look for (``q``, docs/search.md), where, and which page."""

    q: str
    wanted: SearchFilter = field(default_factory=SearchFilter)
    customer_id: UUID | None = None  # within this customer's merge group
    limit: int = 50
    cursor: str | None = None


def search(
    runtime: Runtime, who: Principal, request: SearchRequest, action: str
) -> tuple[list[SearchHit], str | None]:
    """One page of hits, newest first, and the cursor of the next; the reads are logged as
    ``action``. Blocking (the views' database)."""
    try:
        query = parse(request.q)
    except QueryError as exc:
        raise InvalidSearch("invalid_query", str(exc)) from None
    wanted = request.wanted
    if wanted.since is not None and wanted.until is not None and wanted.since >= wanted.until:
        raise InvalidSearch("invalid_range", "since must be before until")
    views = runtime.views
    with runtime.read() as conn:
        if request.customer_id is not None:
            group = views.directory.group(conn, request.customer_id)
            if views.directory.get(conn, group[0]) is None:
                if views.erased_among(conn, [request.customer_id]):
                    raise CustomerErased(
                        f"customer {request.customer_id}'s personal data was erased"
                    )
                raise NotFound(f"no customer {request.customer_id}")
            wanted = replace(wanted, customer_ids=tuple(group))
        try:
            hits, cursor = find(conn, query, wanted, request.limit, request.cursor)
        except ValueError:
            raise InvalidSearch(
                "invalid_cursor", "the cursor is not one a search gave", status=400
            ) from None
    log_reads(runtime, who, hits, action)
    return hits, cursor


def log_reads(runtime: Runtime, who: Principal, hits: list[SearchHit], action: str) -> None:
    """One access-log entry per customer shown: its root and the members whose documents
    were shown, with the number of hits (never the query: it is personal)."""
    read: dict[UUID, dict[UUID, None]] = {}
    counts: dict[UUID, int] = {}
    for hit in hits:
        root = hit.shown_customer_id
        read.setdefault(root, {root: None})[hit.customer_id] = None
        counts[root] = counts.get(root, 0) + 1
    for root, customers in read.items():
        runtime.access_log.record(who, list(customers), action, counts[root])
