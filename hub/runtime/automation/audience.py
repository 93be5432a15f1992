"""Who a rule or campaign is for, read from the views in SQL: the customers whose date falls
on some days (by month and day, never every customer loaded into Python), a segment's
members a page at a time with their zones, and which customers are in a segment now.

Only roots are read (a customer merged into another is its group's root's): one person gets
one greeting. The zone of each is its profile's, else its phone number's, else the hub's
default (``hub.runtime.automation.timing.zone_for``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, and_, exists, extract, func, or_, select

from hub.events.segments import Filter
from hub.projections.base import as_utc
from hub.projections.directory import attributes, customers, identities, profiles
from hub.projections.merges import merges, roots_of
from hub.projections.segment_filter import FilterContext, matches, page
from hub.runtime.automation.timing import exact_days, month_days, zone_for

__all__ = ["Candidate", "date_candidates", "in_segment", "segment_page", "zones_of"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer whose date may fall on one of the days asked about: the date as the views
    hold it (``YYYY-MM-DD``, ``--MM-DD``; a first contact as its local date) and its zone."""

    customer_id: UUID
    value: str
    zone: ZoneInfo


def _phone(customer_id: Any) -> Any:
    i = identities.c
    return (
        select(func.min(i.address))
        .where(i.customer_id == customer_id, i.kind == "phone")
        .scalar_subquery()
    )


def _not_merged() -> Any:
    return ~exists().where(merges.c.customer_id == customers.c.customer_id)


def _month_day(column: Any) -> Any:
    """The ``MM-DD`` of a ``YYYY-MM-DD`` or ``--MM-DD`` text."""
    return func.substr(column, func.length(column) - 4, 5)


def date_candidates(
    conn: Connection,
    date_field: str,
    days: Collection[date],
    offset_days: int,
    yearly: bool,
    default_zone: str | None,
) -> list[Candidate]:
    """The customers whose ``date_field`` (``birthday``, ``first_contact``,
    ``attributes.<key>``) may fall on one of ``days`` with the offset (the caller decides
    exactly, per zone, with ``timing.occurs_on``)."""
    c, p = customers.c, profiles.c
    base = select(c.customer_id, p.time_zone, _phone(c.customer_id).label("phone")).select_from(
        customers.outerjoin(profiles, p.customer_id == c.customer_id)
    )
    query: Select[Any]
    if date_field == "birthday":
        query = base.add_columns(p.birthday.label("value")).where(
            p.birthday.is_not(None),
            _month_day(p.birthday).in_(sorted(month_days(days, offset_days))),
        )
    elif date_field == "first_contact":
        # A first contact's local date may be a day off its UTC date: select the UTC days
        # around the wanted ones, then each row's local date decides.
        wide = {d + timedelta(days=n) for d in days for n in (-1, 0, 1)}
        pairs = {(int(md[:2]), int(md[3:])) for md in month_days(wide, offset_days)}
        query = base.add_columns(c.created_at.label("value")).where(
            or_(
                *(
                    and_(extract("month", c.created_at) == m, extract("day", c.created_at) == d)
                    for m, d in sorted(pairs)
                )
            )
        )
    else:
        a = attributes.c
        key = date_field.removeprefix("attributes.")
        wanted = (
            _month_day(a.text_value).in_(sorted(month_days(days, offset_days)))
            if yearly
            else a.text_value.in_(sorted(exact_days(days, offset_days)))
        )
        query = (
            base.add_columns(a.text_value.label("value"))
            .join(attributes, a.customer_id == c.customer_id)
            .where(a.key == key, a.kind == "date", a.text_value.is_not(None), wanted)
        )
    found = []
    for row in conn.execute(query.where(_not_merged()).order_by(c.customer_id)).mappings():
        zone = zone_for(row["time_zone"], row["phone"], default_zone)
        value = row["value"]
        if date_field == "first_contact":
            value = as_utc(value).astimezone(zone).date().isoformat()
        found.append(Candidate(row["customer_id"], str(value), zone))
    return found


def zones_of(
    conn: Connection, customer_ids: Sequence[UUID], default_zone: str | None
) -> dict[UUID, ZoneInfo]:
    """The zone of each of these customers."""
    if not customer_ids:
        return {}
    c, p = customers.c, profiles.c
    rows = conn.execute(
        select(c.customer_id, p.time_zone, _phone(c.customer_id).label("phone"))
        .select_from(customers.outerjoin(profiles, p.customer_id == c.customer_id))
        .where(c.customer_id.in_(list(customer_ids)))
    ).mappings()
    zones = {r["customer_id"]: zone_for(r["time_zone"], r["phone"], default_zone) for r in rows}
    return {cid: zones.get(cid) or zone_for(None, None, default_zone) for cid in customer_ids}


def segment_page(
    conn: Connection, tree: Filter, ctx: FilterContext, limit: int, after: UUID | None
) -> tuple[list[UUID], UUID | None]:
    """A page of the segment's members (roots, newest first) and the next cursor."""
    return page(conn, tree, ctx, limit, after)


def in_segment(
    conn: Connection, tree: Filter, ctx: FilterContext, customer_ids: Collection[UUID]
) -> set[UUID]:
    """Those of ``customer_ids`` whose group is in the segment now."""
    if not customer_ids:
        return set()
    roots = roots_of(conn, list(customer_ids))
    root_of = {cid: roots.get(cid, cid) for cid in customer_ids}
    c = customers.c
    members = set(
        conn.scalars(
            select(c.customer_id).where(
                c.customer_id.in_(sorted(set(root_of.values()))), matches(tree, ctx)
            )
        )
    )
    return {cid for cid, root in root_of.items() if root in members}
