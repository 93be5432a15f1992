"""Full-text search's reads: a page of documents matching a query and filters, newest first,
each named as the customer it is shown as (a merged group's root), its words marked.

The documents and their index are ``hub.projections.search``'s; what a query means is
``hub.projections.search_text``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Connection, DateTime, literal, select, tuple_

from hub.projections import search_backends as backend
from hub.projections.base import as_utc, utc
from hub.projections.directory import customers as directory_customers
from hub.projections.merges import roots_of
from hub.projections.search import KINDS, documents
from hub.projections.search_text import Marker, Part, Query

__all__ = ["SearchFilter", "SearchHit", "decode_cursor", "encode_cursor", "find"]

#: Titles (subjects, names) are short; a long one is cut like a snippet.
_TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which documents a search may return (``None``: any)."""

    kinds: tuple[str, ...] = KINDS
    channel: str | None = None
    direction: str | None = None
    since: datetime | None = None  # occurred at or after
    until: datetime | None = None  # occurred before
    customer_ids: tuple[UUID, ...] | None = None  # a customer's whole group


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A document a search found, with the customer it is shown as and its marked text."""

    kind: str
    id: UUID  # the message, note, conversation or customer
    customer_id: UUID  # whose document it is
    shown_customer_id: UUID  # the root of that customer's group
    display_name: str | None
    conversation_id: UUID | None
    channel: str | None
    direction: str | None
    occurred_at: datetime
    position: int
    title: tuple[Part, ...]
    snippet: tuple[Part, ...]


def find(
    conn: Connection,
    query: Query,
    wanted: SearchFilter,
    limit: int,
    before: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """Documents matching ``query`` and ``wanted``, newest first, a page of ``limit``;
    ``before`` is the cursor a previous page returned (ValueError if it is not one)."""
    d = documents.c
    # The page's keys first, then their rows: sorting thousands of matches of a common
    # word is cheaper without their texts.
    source = backend.page_source(conn, documents, wanted.customer_ids is not None)
    k = source.c
    statement = (
        select(k["position"], k["occurred_at"])
        .select_from(source.table)
        .where(backend.matches(conn, source, query))
        .order_by(k["occurred_at"].desc(), k["position"].desc())
        .limit(limit + 1)
    )
    if set(wanted.kinds) != set(KINDS):
        statement = statement.where(k["kind"].in_(list(wanted.kinds)))
    for column, value in (("channel", wanted.channel), ("direction", wanted.direction)):
        if value is not None:
            statement = statement.where(k[column] == value)
    if wanted.since is not None:
        statement = statement.where(k["occurred_at"] >= utc(wanted.since))
    if wanted.until is not None:
        statement = statement.where(k["occurred_at"] < utc(wanted.until))
    if wanted.customer_ids is not None:
        statement = statement.where(k["customer_id"].in_(list(wanted.customer_ids)))
    if before:
        at, position = decode_cursor(before)
        statement = statement.where(
            tuple_(k["occurred_at"], k["position"])
            < tuple_(literal(at, DateTime(timezone=True)), literal(position, BigInteger))
        )
    keys = conn.execute(statement).all()
    page = [position for position, _ in keys[:limit]]
    found = {
        r["position"]: r
        for r in conn.execute(
            select(*(d[name] for name in _SHOWN)).where(d.position.in_(page))
        ).mappings()
    }
    hits = _hits(conn, [found[p] for p in page if p in found], query)  # unless purged since
    if len(keys) <= limit:
        return hits, None
    last_position, last_at = keys[limit - 1]
    return hits, encode_cursor(as_utc(last_at), last_position)


def _hits(conn: Connection, rows: Sequence[Any], query: Query) -> list[SearchHit]:
    owners = list({r["customer_id"] for r in rows})
    roots = roots_of(conn, owners)
    c = directory_customers.c
    names: dict[UUID, str | None] = dict(
        conn.execute(  # type: ignore[arg-type]
            select(c.customer_id, c.display_name).where(
                c.customer_id.in_(owners + list(set(roots.values())))
            )
        ).all()
    )
    marker = Marker(query)
    hits = []
    for r in rows:
        root = roots.get(r["customer_id"], r["customer_id"])
        hits.append(
            SearchHit(
                kind=r["kind"],
                id=r["doc_id"],
                customer_id=r["customer_id"],
                shown_customer_id=root,
                display_name=names.get(root) or names.get(r["customer_id"]),
                conversation_id=r["conversation_id"],
                channel=r["channel"],
                direction=r["direction"],
                occurred_at=as_utc(r["occurred_at"]),
                position=r["position"],
                title=marker.highlight(r["title"], _TITLE_CHARS),
                snippet=marker.highlight(r["body"]),
            )
        )
    return hits


_SHOWN = (
    "position",
    "doc_id",
    "kind",
    "customer_id",
    "conversation_id",
    "channel",
    "direction",
    "occurred_at",
    "title",
    "body",
)


def encode_cursor(at: datetime, position: int) -> str:
    """The cursor after a hit: its time and position (opaque to clients)."""
    return base64.urlsafe_b64encode(f"{utc(at).isoformat()}|{position}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The time and position of a cursor :func:`encode_cursor` made; ValueError for anything
    else (only a cursor that encodes back to itself is taken)."""
    try:
        at_text, _, position_text = (
            base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition("|")
        )
        at, position = datetime.fromisoformat(at_text), int(position_text)
        if at.tzinfo is None or not 0 <= position < 2**63:
            raise ValueError("not a cursor")
        canonical = encode_cursor(at, position) == cursor
    except (ValueError, OverflowError) as exc:  # UnicodeError and binascii.Error among them
        raise ValueError("malformed cursor") from exc
    if not canonical:
        raise ValueError("malformed cursor")
    return utc(at), position
