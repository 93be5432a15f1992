"""Business reports over the business projection (``hub.projections.business``): retention
of monthly cohorts, lifetime value, and what each acquisition source brings
(docs/analytics.md, "Sources, retention and value", says what counts).

A customer here is a merge group (the directory's merges, as now): its first contact is
its members' earliest, its source the one of the member created first, its activity and
orders all of its members'. The customers a report covers are those whose cohort month
(first contact, or first order with ``cohort=first_order``) starts within the range; what
they did is counted up to the range's end. Months are local months in the report's zone.

Amounts are summed exactly and converted to the reporting currency with the configured
rates; an amount in a currency without a rate is left out and counted as ``unconverted``.
Values are decimal text with two places. Everything is computed from the rows at read time
and ordered by group names, never by keys, so the same rows give the same bytes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Connection, String, cast, extract, func, literal, select

from hub.projections.business import (
    UNITS,
    business_customers,
    business_days,
    business_orders,
)
from hub.projections.merges import merges
from hub.projections.service import service_conversations
from hub.projections.service_reports import NO_VALUE, Report, ReportQuery
from hub.sql import driver_rows

__all__ = ["ERASED", "Customer", "customers", "retention", "sources", "value"]

#: The source of a customer whose data was erased (its source was personal).
ERASED = "(erased)"
_CENT = Decimal("0.01")
_NO_OFFSET = timedelta(0)


@dataclass(slots=True)
class Customer:
    """One merge group as the reports see it."""

    #: Times are naive UTC (``_naive``).
    first_contact: datetime
    created: datetime | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    erased: bool = False
    #: Local months (year * 12 + month - 1) it was active in, before the range's end.
    months: set[int] = field(default_factory=set)
    first_order: datetime | None = None
    orders: int = 0
    cancellations: int = 0
    #: Ten-thousandths per currency, of orders before the range's end.
    amounts: dict[str, int] = field(default_factory=dict)
    #: Orders with an amount in each currency (to count those left unconverted).
    priced: dict[str, int] = field(default_factory=dict)
    conversations: int = 0
    #: The local months of its first contact and first order (set once loaded).
    cohort: int = 0
    order_cohort: int | None = None

    def cohort_of(self, query: ReportQuery) -> int | None:
        return self.order_cohort if query.cohort == "first_order" else self.cohort

    def attribution(self, part: str) -> str:
        if self.erased:
            return ERASED
        found: str | None = getattr(self, part)
        return found or NO_VALUE


def month_index(at: datetime, query: ReportQuery) -> int:
    """The local month of ``at`` in the query's zone, as year * 12 + month - 1."""
    if at.tzinfo is None or at.utcoffset() == _NO_OFFSET:  # UTC, as the views keep it
        if 2 <= at.day <= 27:  # no zone is 14 hours away from another month
            return at.year * 12 + at.month - 1
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(query.zone)
    return local.year * 12 + local.month - 1


def _naive(at: datetime) -> datetime:
    """An instant as naive UTC, as SQLite returns the views' times (PostgreSQL's are made
    so): the reports compare many of them, and this costs nothing for SQLite's."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def _month_of_day(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _key(column: Any) -> Any:
    """A key as text: grouping needs equality only, and text costs no UUID per row."""
    return cast(column, String)


def customers(
    conn: Connection,
    query: ReportQuery,
    *,
    activity: bool = True,
    conversations: bool = False,
) -> list[Customer]:
    """Every customer (merge group) first contacted before the range's end, with what it
    did before then: its orders, the months it was active in (unless ``activity`` is
    false) and its conversations (if asked). Times are naive UTC (``_naive``)."""
    until = _naive(query.until)
    m = merges.c
    roots: dict[str, str] = dict(
        conn.execute(select(_key(m.customer_id), _key(m.root_id))).tuples().all()
    )
    c, s = business_customers.c, service_conversations.c
    # each customer's conversations (its own, not its group's): a subquery per row on the
    # conversations' customer index, cheaper than reading them as rows of their own
    opened = (
        select(func.count())
        .where(s.customer_id == c.key, s.opened_at < query.until)
        .scalar_subquery()
        if conversations
        else literal(0)
    )
    groups: dict[str, Customer] = {}
    for key, anonymous, first, created, source, medium, campaign, count in conn.execute(
        select(
            _key(c.key),
            c.customer_id.is_(None),
            c.first_contact_at,
            c.created_at,
            c.source,
            c.medium,
            c.campaign,
            opened,
        )
    ).all():
        group = roots.get(key, key)
        first, created = _naive(first), None if created is None else _naive(created)
        found = groups.get(group)
        if found is None:
            found = groups[group] = Customer(first_contact=first, erased=bool(anonymous))
        elif first < found.first_contact:
            found.first_contact = first
        found.conversations += count
        # the source of the member created first (one without a creation comes last)
        if created is not None and (found.created is None or created < found.created):
            found.created = created
            found.source, found.medium, found.campaign = source, medium, campaign
    if activity:
        _add_months(conn, query, groups, roots)
    o = business_orders.c
    for key, kind, at, amount, currency in conn.execute(
        select(_key(o.key), o.kind, o.at, o.amount, o.currency).where(o.at < query.until)
    ).all():
        member = groups.get(roots.get(key, key))
        if member is None:
            continue
        if kind == "placed":
            member.orders += 1
            at = _naive(at)
            if member.first_order is None or at < member.first_order:
                member.first_order = at
        else:
            member.cancellations += 1
        if amount is not None and currency is not None:
            member.amounts[currency] = member.amounts.get(currency, 0) + amount
            member.priced[currency] = member.priced.get(currency, 0) + 1
    known = [g for g in groups.values() if g.first_contact < until]
    for member in known:
        member.cohort = month_index(member.first_contact, query)
        if member.first_order is not None:
            member.order_cohort = month_index(member.first_order, query)
    return known


def _add_months(
    conn: Connection, query: ReportQuery, groups: Mapping[str, Customer], roots: Mapping[str, str]
) -> None:
    """The local months each group was active in before the range's end. A UTC day away
    from a month's ends lies in one local month in every zone (see ``month_index``): those
    days are read as text straight from the driver (``driver_rows``), the most rows of any
    report; a day near a month's end needs its first and last instants."""
    d = business_days.c
    near_an_end = ~extract("day", d.day).between(2, 27)
    months: dict[str, int] = {}
    days = select(_key(d.key), cast(d.day, String)).where(d.first_at < query.until)
    for key, day in driver_rows(conn, days):
        if not "02" <= day[8:10] <= "27":
            continue
        member = groups.get(roots.get(key, key))
        if member is not None:
            month = months.get(day[:7])
            if month is None:
                month = months[day[:7]] = int(day[:4]) * 12 + int(day[5:7]) - 1
            member.months.add(month)
    for key, first_at, last_at, ended in conn.execute(
        select(_key(d.key), d.first_at, d.last_at, d.last_at < query.until).where(
            d.first_at < query.until, near_an_end
        )
    ).all():
        member = groups.get(roots.get(key, key))
        if member is not None:
            member.months.add(month_index(first_at, query))
            if ended:
                member.months.add(month_index(last_at, query))


def _or(value: int | None, otherwise: int) -> int:
    return otherwise if value is None else value


def _cohort_start(customer: Customer, query: ReportQuery) -> datetime | None:
    return customer.first_order if query.cohort == "first_order" else customer.first_contact


def _in_range(members: Iterable[Customer], query: ReportQuery) -> list[Customer]:
    """The customers whose cohort starts within the range."""
    since, until = _naive(query.since), _naive(query.until)
    found = []
    for m in members:
        start = _cohort_start(m, query)
        if start is not None and since <= start < until:
            found.append(m)
    return found


def _months(query: ReportQuery) -> list[int]:
    return list(range(_month_of_day(query.start), _month_of_day(query.end) + 1))


# -- money ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Money:
    """A sum in the reporting currency and what could not be converted into it."""

    total: Decimal = Decimal(0)
    unconverted: int = 0


def _money(members: Iterable[Customer], query: ReportQuery) -> Money:
    """The members' value in the reporting currency: their units summed per currency as
    integers, then converted (exact either way; one conversion per currency)."""
    units: Counter[str] = Counter()
    priced: Counter[str] = Counter()
    for m in members:
        if m.amounts:
            units.update(m.amounts)
            priced.update(m.priced)
    money = Money()
    for currency in sorted(units):
        rate = Decimal(1) if currency == query.currency else query.rates.get(currency)
        if rate is None:
            money.unconverted += priced[currency]
        else:
            money.total += Decimal(units[currency]) / UNITS * rate
    return money


def _text(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _value_figures(members: Sequence[Customer], query: ReportQuery) -> dict[str, Any]:
    money = _money(members, query)
    buyers = sum(1 for m in members if m.orders)
    return {
        "customers": len(members),
        "buyers": buyers,
        "orders": sum(m.orders for m in members),
        "cancellations": sum(m.cancellations for m in members),
        "value": _text(money.total),
        "value_per_customer": _text(money.total / len(members)) if members else None,
        "value_per_buyer": _text(money.total / buyers) if buyers else None,
        "unconverted": money.unconverted,
    }


VALUE_COLUMNS = (
    "customers",
    "buyers",
    "orders",
    "cancellations",
    "value",
    "value_per_customer",
    "value_per_buyer",
    "unconverted",
)


# -- grouping ------------------------------------------------------------------------------


def _by_attribution(members: Iterable[Customer], part: str) -> dict[str, list[Customer]]:
    groups: dict[str, list[Customer]] = defaultdict(list)
    for m in members:
        groups[m.attribution(part)].append(m)
    last = (NO_VALUE, ERASED)
    return {
        k: groups[k]
        for k in sorted(
            groups, key=lambda k: (k in last, last.index(k) if k in last else 0, k.casefold(), k)
        )
    }


def _by_cohort(members: Iterable[Customer], query: ReportQuery) -> dict[int, list[Customer]]:
    groups: dict[int, list[Customer]] = {month: [] for month in _months(query)}
    for m in members:
        cohort = m.cohort_of(query)
        if cohort is not None:
            groups.setdefault(cohort, []).append(m)
    return groups


def _report(
    name: str,
    query: ReportQuery,
    columns: tuple[str, ...],
    groups: Mapping[str, Sequence[Customer]],
    figures: Callable[[Sequence[Customer]], dict[str, Any]],
    everyone: Sequence[Customer],
    **parameters: Any,
) -> Report:
    rows = [{"group": key, **figures(members)} for key, members in groups.items()]
    return Report(name, query, ("group", *columns), rows, figures(everyone), parameters)


def _money_parameters(query: ReportQuery) -> dict[str, Any]:
    return {
        "currency": query.currency,
        "rates": {code: str(rate) for code, rate in sorted(query.rates.items())},
    }


# -- the reports ---------------------------------------------------------------------------


def retention(conn: Connection, query: ReportQuery) -> Report:
    """Monthly cohorts (by first contact, or first order): how many, and the share of them
    active 1, 2, 3... months later, for every month up to the range's end."""
    query = replace(query, group="month")
    cohorts = _by_cohort(_in_range(customers(conn, query), query), query)
    last = _month_of_day(query.end)
    span = max(0, last - _month_of_day(query.start))
    columns = ("customers", *(f"month_{k}" for k in range(1, span + 1)))

    def figures(members: Sequence[Customer]) -> dict[str, Any]:
        # Month k of a member counts when it has begun by the range's end (start + k <=
        # last); it is active when the member was active in it. One pass over the members'
        # months, not one per k.
        counted, active = [0] * (span + 1), [0] * (span + 1)
        starts: Counter[int] = Counter()
        for m in members:
            start = _or(m.cohort_of(query), m.cohort)
            starts[start] += 1
            for month in m.months:
                if 1 <= month - start <= span and month <= last:
                    active[month - start] += 1
        for start, members_then in starts.items():
            for k in range(1, min(span, last - start) + 1):
                counted[k] += members_then
        found: dict[str, Any] = {"customers": len(members)}
        for k in range(1, span + 1):
            found[f"month_{k}"] = _share(active[k], counted[k])
        return found

    groups = {month_label(month): members for month, members in cohorts.items()}
    everyone = [m for members in cohorts.values() for m in members]
    return _report("retention", query, columns, groups, figures, everyone, cohort=query.cohort)


def value(conn: Connection, query: ReportQuery) -> Report:
    """Lifetime value of the customers the range brought: per cohort month or per source,
    medium or campaign, their orders up to the range's end in the reporting currency."""
    members = _in_range(customers(conn, query, activity=False), query)
    if query.group == "month":
        groups: Mapping[str, Sequence[Customer]] = {
            month_label(k): v for k, v in _by_cohort(members, query).items()
        }
    else:
        groups = _by_attribution(members, query.group)
    return _report(
        "value",
        query,
        VALUE_COLUMNS,
        groups,
        lambda g: _value_figures(g, query),
        members,
        cohort=query.cohort,
        **_money_parameters(query),
    )


def sources(conn: Connection, query: ReportQuery) -> Report:
    """Per source, medium or campaign, the customers first contacted in the range: how many,
    their conversations, orders and value up to the range's end, and the share of them still
    active 1 and 3 months after their first contact's month."""
    query = replace(query, cohort="first_contact")
    members = _in_range(customers(conn, query, conversations=True), query)
    last = _month_of_day(query.end)

    def retained(group: Sequence[Customer], k: int) -> float | None:
        counted = [m for m in group if m.cohort + k <= last]
        active = sum(1 for m in counted if m.cohort + k in m.months)
        return _share(active, len(counted))

    def figures(group: Sequence[Customer]) -> dict[str, Any]:
        money = _value_figures(group, query)
        return {
            "customers": len(group),
            "conversations": sum(m.conversations for m in group),
            "buyers": money["buyers"],
            "orders": money["orders"],
            "value": money["value"],
            "value_per_customer": money["value_per_customer"],
            "unconverted": money["unconverted"],
            "retained_month_1": retained(group, 1),
            "retained_month_3": retained(group, 3),
        }

    columns = (
        "customers",
        "conversations",
        "buyers",
        "orders",
        "value",
        "value_per_customer",
        "unconverted",
        "retained_month_1",
        "retained_month_3",
    )
    return _report(
        "sources",
        query,
        columns,
        _by_attribution(members, query.group),
        figures,
        members,
        **_money_parameters(query),
    )
