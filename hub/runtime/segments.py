"""Segments on a running hub, for the API and the console: a filter checked against this
hub's configuration (its consent purposes, its defined attributes), and the customers a
filter matches, a page at a time with the total.

Membership is the views' (``hub.projections.segment_filter``: SQL, never customers loaded
into Python). Counting a large segment is one pass over the directory, so a total is reused
while it still holds: as long as the views have not moved (for at most
:data:`TOTAL_HOLDS_SECONDS`, as ``within_days`` windows move with the clock), and for at most
:data:`TOTAL_LAG_SECONDS` after they moved, so a busy hub counts each filter at most that
often. Pages themselves are always read fresh (docs/segments.md).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, func, select

from hub.domain.segments import AttributeType, InvalidFilter, check_attribute_types, check_filter
from hub.events.segments import ConsentCondition, Filter, canonical, leaves
from hub.projections.directory import CustomerRecord, DirectoryProjection
from hub.projections.merges import with_members
from hub.projections.segment_filter import FilterContext, count, page
from hub.projections.views import partition_positions, view_positions
from hub.runtime.consent import rules_of
from hub.runtime.core import Runtime

__all__ = [
    "TOTAL_HOLDS_SECONDS",
    "TOTAL_LAG_SECONDS",
    "InvalidCursor",
    "SegmentPage",
    "Totals",
    "attribute_types",
    "check",
    "context",
    "customers",
]

#: How long a total stands while the views have not moved.
TOTAL_HOLDS_SECONDS = 60.0
#: How long a total stands after the views moved (a busy hub's recount rate per filter).
TOTAL_LAG_SECONDS = 2.0
_CACHED_TOTALS = 256


class InvalidCursor(ValueError):
    """A cursor this hub did not give."""


@dataclass(frozen=True, slots=True)
class SegmentPage:
    """A page of the customers a filter matches (groups as one customer, newest first), how
    many match in all, and the cursor of the next page (None on the last)."""

    customers: list[CustomerRecord]
    total: int
    next_cursor: str | None


def attribute_types(runtime: Runtime) -> dict[str, AttributeType]:
    """The custom attributes defined on this hub, by key."""
    return {
        d.key: AttributeType(d.kind, tuple(d.values)) for d in runtime.commands.profile.attributes()
    }


def check(runtime: Runtime, tree: Filter) -> None:
    """:class:`InvalidFilter` for a rule of the filter language the tree breaks, and for
    what this hub cannot evaluate as meant: a consent purpose it is not configured with, a
    defined attribute compared against a value its type does not hold."""
    check_filter(tree)
    purposes = rules_of(runtime).purposes
    for leaf in leaves(tree):
        if isinstance(leaf, ConsentCondition) and leaf.consent.purpose not in purposes:
            raise InvalidFilter(
                f"unknown consent purpose {leaf.consent.purpose!r}: one of {', '.join(purposes)}"
            )
    check_attribute_types(tree, attribute_types(runtime))


def context(runtime: Runtime, now: datetime | None = None) -> FilterContext:
    """What filters are evaluated against on this hub: now, and its consent rules."""
    return FilterContext(
        now=now or datetime.now(UTC),
        granted_by_contact=rules_of(runtime).granted_by_contact,
    )


def customers(runtime: Runtime, tree: Filter, limit: int, cursor: str | None = None) -> SegmentPage:
    """A page of the customers ``tree`` matches, after ``cursor`` (a ``next_cursor`` given
    before; :class:`InvalidCursor` for anything else)."""
    after = _after(cursor)
    ctx = context(runtime)
    with runtime.read() as conn:
        ids, last = page(conn, tree, ctx, limit, after)
        records = _profiles(conn, runtime.views.directory, ids)
        total = _totals(runtime).total(conn, tree, ctx)
    return SegmentPage(records, total, str(last) if last else None)


def _after(cursor: str | None) -> UUID | None:
    if not cursor:
        return None
    try:
        return UUID(cursor)
    except ValueError:
        raise InvalidCursor("cursor is not one this hub gave") from None


def _profiles(
    conn: Connection, directory: DirectoryProjection, ids: Sequence[UUID]
) -> list[CustomerRecord]:
    """The directory's records of these roots, in order: a group as one customer."""
    grouped = with_members(conn, ids)
    plain = {
        r.customer_id: r for r in directory.get_many(conn, [i for i in ids if i not in grouped])
    }
    records = [directory.profile(conn, i) if i in grouped else plain.get(i) for i in ids]
    return [r for r in records if r is not None]


class Totals:
    """Totals of recent filters, with the views' state and the time they were counted at."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._found: OrderedDict[tuple[str, frozenset[str]], tuple[int, int, float]] = OrderedDict()

    def total(self, conn: Connection, tree: Filter, ctx: FilterContext) -> int:
        key = (json.dumps(canonical(tree), sort_keys=True), ctx.granted_by_contact)
        state = _views_state(conn)
        now = self._clock()
        with self._lock:
            found = self._found.get(key)
        if found is not None:
            views, total, at = found
            age = now - at
            if age < TOTAL_LAG_SECONDS or (views == state and age < TOTAL_HOLDS_SECONDS):
                return total
        total = count(conn, tree, ctx)
        with self._lock:
            self._found[key] = (state, total, now)
            self._found.move_to_end(key)
            while len(self._found) > _CACHED_TOTALS:
                self._found.popitem(last=False)
        return total


def _views_state(conn: Connection) -> int:
    """A number that changes whenever any projection applies anything (either runtime)."""
    applied = conn.scalar(select(func.coalesce(func.sum(view_positions.c.position), 0)))
    streamed = conn.scalar(select(func.coalesce(func.sum(partition_positions.c.position), 0)))
    return int(applied or 0) + int(streamed or 0)


_BY_RUNTIME: weakref.WeakKeyDictionary[Runtime, Totals] = weakref.WeakKeyDictionary()
_BY_RUNTIME_LOCK = threading.Lock()


def _totals(runtime: Runtime) -> Totals:
    with _BY_RUNTIME_LOCK:
        found = _BY_RUNTIME.get(runtime)
        if found is None:
            found = _BY_RUNTIME[runtime] = Totals()
        return found
