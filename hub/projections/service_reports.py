"""Service reports over the service projection (``hub.projections.service``): response
times, resolution and conversation volumes per day, week, month, channel, agent, tag or SLA
policy, with median and 90th percentile in business and wall-clock time and SLA breach rates
(docs/analytics.md says what counts).

Every figure is computed from the projection's rows at read time and rounded the same way,
so the same rows give byte-identical reports. Periods are local dates in the report's time
zone; a period with nothing in it is a row of zeros (charts keep their time axis).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, String, cast, select

from hub.projections.base import as_utc
from hub.projections.merges import merges, roots_of
from hub.projections.service import customer_tags, responses, service_conversations

__all__ = [
    "ATTRIBUTION",
    "COHORTS",
    "GROUPS",
    "NO_VALUE",
    "PERIODS",
    "REPORTS",
    "Report",
    "ReportQuery",
    "ReportRangeError",
    "check_query",
    "default_group",
    "grouped_report",
    "percentile",
    "rate",
    "run_report",
]

PERIODS = ("day", "week", "month")
#: What the business reports group customers by: their acquisition source's parts.
ATTRIBUTION = ("source", "medium", "campaign")
GROUPS = (*PERIODS, "channel", "agent", "tag", "policy", *ATTRIBUTION)
#: When a customer's cohort starts: its first contact, or its first order.
COHORTS = ("first_contact", "first_order")
#: The longest range a report covers (a year and a bit: a year's weeks, last year's months).
MAX_DAYS = 400
NO_VALUE = "(none)"


class ReportRangeError(ValueError):
    """The date range or grouping cannot be reported (the API answers 422)."""


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report covers: local dates ``start``..``end`` (both included) in ``zone``,
    grouped by ``group``, narrowed by the filters that are set."""

    start: date
    end: date
    group: str = "week"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    channel: str | None = None
    agent: str | None = None
    tag: str | None = None
    policy: str | None = None
    #: The business reports' cohorts, and the currency and rates their value is in.
    cohort: str = "first_contact"
    currency: str = "EUR"
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ReportRangeError(f"group is one of {', '.join(GROUPS)}")
        if self.cohort not in COHORTS:
            raise ReportRangeError(f"cohort is one of {', '.join(COHORTS)}")
        if self.end < self.start:
            raise ReportRangeError("the range ends before it starts")
        if (self.end - self.start).days >= MAX_DAYS:
            raise ReportRangeError(f"a report covers at most {MAX_DAYS} days")

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def period_of(self, at: datetime) -> str:
        return _period(self.group, as_utc(at).astimezone(self.zone).date())

    def period_finder(self) -> Callable[[datetime], str]:
        """:meth:`period_of` for many instants: each local day's start in UTC is worked out
        once, and an instant's day found among them by bisection (no zone conversion per
        row, the cost of a year's report). Instants outside the range go the slow way."""
        days = [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 2)]
        starts = [datetime.combine(day, time(), self.zone).astimezone(UTC) for day in days]
        naive = [start.replace(tzinfo=None) for start in starts]  # as SQLite returns them
        labels = [_period(self.group, day) for day in days[:-1]]

        def find(at: datetime) -> str:
            index = bisect_right(naive if at.tzinfo is None else starts, at) - 1
            if 0 <= index < len(labels):
                return labels[index]
            return self.period_of(at)

        return find

    def periods(self) -> list[str]:
        """Every period of the range, in order (the rows a time series always has)."""
        found: dict[str, None] = {}
        day = self.start
        while day <= self.end:
            found[_period(self.group, day)] = None
            day += timedelta(days=1)
        return list(found)


def _period(group: str, day: date) -> str:
    if group == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # the week's Monday
    if group == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


@dataclass(frozen=True, slots=True)
class Report:
    """Rows of figures, one per group, and the total over all of them."""

    name: str
    query: ReportQuery
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    #: What else the report was computed with (the business reports' cohort, currency).
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        q = self.query
        filters = {"channel": q.channel, "agent": q.agent, "tag": q.tag, "policy": q.policy}
        return {
            "report": self.name,
            "from": q.start.isoformat(),
            "to": q.end.isoformat(),
            "group": q.group,
            "time_zone": q.zone.key,
            "filters": {k: v for k, v in filters.items() if v is not None},
            **self.parameters,
            "columns": list(self.columns),
            "rows": self.rows,
            "total": self.total,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation between closest ranks
    (the common spreadsheet definition); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to four places; None for nothing."""
    return None if whole == 0 else round(part / whole, 4)


def _times(prefix: str, wall: Sequence[float], business: Sequence[float]) -> dict[str, Any]:
    """Median and p90, business and wall-clock, of one measure."""
    return {
        f"{prefix}_median": _seconds(percentile(business, 0.5)),
        f"{prefix}_p90": _seconds(percentile(business, 0.9)),
        f"{prefix}_median_wall": _seconds(percentile(wall, 0.5)),
        f"{prefix}_p90_wall": _seconds(percentile(wall, 0.9)),
    }


def _time_columns(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{s}" for s in ("median", "p90", "median_wall", "p90_wall"))


#: The columns :func:`_breaches` fills.
BREACH_COLUMNS = ("with_target", "breached", "breach_rate")


def _breaches(members: Sequence[Mapping[str, Any]], flag: str) -> dict[str, Any]:
    """How many had a target (``flag`` is not null), how many missed it, the share."""
    targeted = [m for m in members if m[flag] is not None]
    missed = sum(1 for m in targeted if m[flag])
    return {
        "with_target": len(targeted),
        "breached": missed,
        "breach_rate": rate(missed, len(targeted)),
    }


#: What every report groups and filters by (``customer_id`` only when tags are asked for:
#: building ids is a good part of a large report's time).
_GROUPING = ("channel", "policy")


def _rows(
    conn: Connection,
    query: ReportQuery,
    table: Any,
    names: Sequence[str],
    *where: Any,
    order: Sequence[Any],
) -> Sequence[Any]:
    """The columns ``names`` (and those the query groups and filters by) of the rows
    ``where`` says, in ``order``."""
    columns: list[Any] = [table.c[name] for name in dict.fromkeys([*names, *_GROUPING])]
    if query.group == "tag" or query.tag is not None:  # as text: no UUID per row (see _tags)
        columns.append(cast(table.c.customer_id, String).label("customer_id"))
    return conn.execute(select(*columns).where(*where).order_by(*order)).mappings().all()


# -- grouping ------------------------------------------------------------------------------


#: Above this many customers, ``_tags`` reads the merges and tags tables whole.
_WHOLE_TABLES = 2_000


def _tags(conn: Connection, customer_ids: Iterable[UUID | str | None]) -> dict[Any, list[str]]:
    """The tags of each customer's group (those of the customer it is shown as), by the ids
    as given: UUIDs, or the text the keys read as in SQL (``_rows``). For many customers
    given as text, the merges and tags tables are read whole with text keys (a year's report
    by tag: one query each instead of hundreds, and no UUID per row)."""
    given = {c for c in customer_ids if c is not None}
    if len(given) > _WHOLE_TABLES and all(isinstance(c, str) for c in given):
        m, t = merges.c, customer_tags.c
        parents = select(cast(m.customer_id, String), cast(m.root_id, String))
        text_roots: dict[Any, Any] = dict(conn.execute(parents).tuples().all())
        text_tags: dict[Any, list[str]] = defaultdict(list)
        tagged = select(cast(t.customer_id, String), t.tag).order_by(t.customer_id, t.tag)
        for customer_id, tag in conn.execute(tagged):
            text_tags[customer_id].append(tag)
        return {c: text_tags.get(text_roots.get(c, c), []) for c in given}
    as_given = {c if isinstance(c, UUID) else UUID(c): c for c in given}
    members = list(as_given)
    roots: dict[UUID, UUID] = {}
    for start in range(0, len(members), 500):
        roots |= roots_of(conn, members[start : start + 500])
    of_root = _root_tags(conn, {roots.get(c, c) for c in members})
    return {as_given[c]: of_root.get(roots.get(c, c), []) for c in members}


def _root_tags(conn: Connection, customer_ids: Iterable[UUID]) -> dict[UUID, list[str]]:
    wanted = list(customer_ids)
    found: dict[UUID, list[str]] = defaultdict(list)
    t = customer_tags.c
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(t.customer_id, t.tag)
            .where(t.customer_id.in_(wanted[start : start + 500]))
            .order_by(t.customer_id, t.tag)
        )
        for customer_id, tag in rows:
            found[customer_id].append(tag)
    return found


def _grouped(
    conn: Connection,
    query: ReportQuery,
    rows: Sequence[Any],
    at: str,
    agent: str,
) -> dict[str, list[Mapping[str, Any]]]:
    """``rows`` filtered and split by the query's group (a row under each of its customer's
    tags when grouped by tag). ``at`` names the time column, ``agent`` the agent's."""
    needs_tags = query.group == "tag" or query.tag is not None
    tags = _tags(conn, (r["customer_id"] for r in rows)) if needs_tags else {}
    groups: dict[str, list[Mapping[str, Any]]] = (
        {p: [] for p in query.periods()} if query.group in PERIODS else {}
    )
    period_of = query.period_finder()
    for row in rows:
        if query.channel is not None and row["channel"] != query.channel:
            continue
        if query.agent is not None and row[agent] != query.agent:
            continue
        if query.policy is not None and row["policy"] != query.policy:
            continue
        row_tags = tags.get(row["customer_id"], []) if needs_tags else []
        if query.tag is not None and query.tag not in row_tags:
            continue
        if query.group in PERIODS:
            keys = [period_of(row[at])]
        elif query.group == "tag":
            keys = row_tags or [NO_VALUE]
        else:
            column = agent if query.group == "agent" else query.group
            keys = [row[column] or NO_VALUE]
        for key in keys:
            groups.setdefault(key, []).append(row)
    if query.group in PERIODS:
        return groups
    return {k: groups[k] for k in sorted(groups, key=lambda k: (k == NO_VALUE, k.casefold(), k))}


def _report(
    name: str,
    query: ReportQuery,
    columns: tuple[str, ...],
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    figures: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]],
) -> Report:
    rows = [{"group": key, **figures(members)} for key, members in groups.items()]
    everyone = list({id(r): r for members in groups.values() for r in members}.values())
    return Report(name, query, ("group", *columns), rows, figures(everyone))


def grouped_report(
    conn: Connection,
    name: str,
    query: ReportQuery,
    columns: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    at: str,
    agent: str,
    figures: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]],
) -> Report:
    """Report ``name``: ``rows`` split by the query's group as the service reports split
    theirs (``at`` the time column, ``agent`` the agent's; a row carrying ``source``,
    ``medium`` and ``campaign`` can be grouped by them too), ``figures`` of each group."""
    return _report(name, query, columns, _grouped(conn, query, rows, at, agent), figures)


# -- the reports ---------------------------------------------------------------------------


def response_times(conn: Connection, query: ReportQuery) -> Report:
    """Agents' responses by when they were made: first responses and later ones, their
    times, and how many of those with a target missed it."""
    r = responses.c
    rows = _rows(
        conn,
        query,
        responses,
        ("responded_at", "kind", "seconds", "business_seconds", "breached", "agent"),
        r.responded_at >= query.since,
        r.responded_at < query.until,
        order=(r.responded_at, r.message_id),
    )

    def figures(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        first = [m for m in members if m["kind"] == "first_response"]
        later = [m for m in members if m["kind"] != "first_response"]
        return {
            "responses": len(members),
            "first_responses": len(first),
            **_times(
                "first_response",
                [m["seconds"] for m in first],
                [m["business_seconds"] for m in first],
            ),
            "next_responses": len(later),
            **_times(
                "next_response",
                [m["seconds"] for m in later],
                [m["business_seconds"] for m in later],
            ),
            **_breaches(members, "breached"),
        }

    columns = (
        "responses",
        "first_responses",
        *_time_columns("first_response"),
        "next_responses",
        *_time_columns("next_response"),
        *BREACH_COLUMNS,
    )
    groups = _grouped(conn, query, rows, "responded_at", "agent")
    return _report("response-times", query, columns, groups, figures)


def resolution(conn: Connection, query: ReportQuery) -> Report:
    """Conversations resolved in the range (and not open again): how long from the first
    customer message, replies and reopenings, how many missed a resolution target."""
    c = service_conversations.c
    rows = _rows(
        conn,
        query,
        service_conversations,
        (
            "resolved_at",
            "resolution_seconds",
            "resolution_business",
            "resolution_breached",
            "replies",
            "reopened",
            "assignee",
        ),
        c.status == "resolved",
        c.resolved_at >= query.since,
        c.resolved_at < query.until,
        order=(c.resolved_at, c.conversation_id),
    )

    def figures(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        replies = sum(m["replies"] for m in members)
        return {
            "resolved": len(members),
            **_times(
                "resolution",
                [m["resolution_seconds"] for m in members],
                [m["resolution_business"] for m in members],
            ),
            "replies_per_conversation": round(replies / len(members), 2) if members else None,
            "reopened": sum(m["reopened"] for m in members),
            **_breaches(members, "resolution_breached"),
        }

    columns = (
        "resolved",
        *_time_columns("resolution"),
        "replies_per_conversation",
        "reopened",
        *BREACH_COLUMNS,
    )
    groups = _grouped(conn, query, rows, "resolved_at", "assignee")
    return _report("resolution", query, columns, groups, figures)


def conversations(conn: Connection, query: ReportQuery) -> Report:
    """Conversations opened in the range: how many, how many are resolved by now, still
    open, answered at all, reopened."""
    c = service_conversations.c
    rows = _rows(
        conn,
        query,
        service_conversations,
        ("opened_at", "status", "first_response_at", "reopened", "assignee"),
        c.opened_at >= query.since,
        c.opened_at < query.until,
        order=(c.opened_at, c.conversation_id),
    )

    def figures(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        resolved = sum(1 for m in members if m["status"] == "resolved")
        return {
            "opened": len(members),
            "resolved": resolved,
            "open": len(members) - resolved,
            "answered": sum(1 for m in members if m["first_response_at"] is not None),
            "reopened": sum(1 for m in members if m["reopened"]),
        }

    columns = ("opened", "resolved", "open", "answered", "reopened")
    groups = _grouped(conn, query, rows, "opened_at", "assignee")
    return _report("conversations", query, columns, groups, figures)


def _business(
    name: str, module_name: str = "hub.projections.business_reports"
) -> Callable[[Connection, ReportQuery], Report]:
    """The report ``name`` of ``module_name`` (the business reports, the satisfaction
    report), imported when first run (those modules build on this one's query and report)."""

    def run(conn: Connection, query: ReportQuery) -> Report:
        module = import_module(module_name)
        report: Callable[[Connection, ReportQuery], Report] = getattr(module, name)
        return report(conn, query)

    return run


REPORTS: dict[str, Callable[[Connection, ReportQuery], Report]] = {
    "response-times": response_times,
    "resolution": resolution,
    "conversations": conversations,
    "retention": _business("retention"),
    "value": _business("value"),
    "sources": _business("sources"),
    "satisfaction": _business("satisfaction", "hub.projections.survey_reports"),
}
SERVICE_GROUPS = tuple(g for g in GROUPS if g not in ATTRIBUTION)
SERVICE_FILTERS = ("channel", "agent", "tag", "policy")
#: What each report may be grouped by (first: what it is grouped by unless told), and the
#: filters it takes; the service reports take every service group and filter.
GROUPS_OF: dict[str, tuple[str, ...]] = {
    "retention": ("month",),
    "value": ("month", *ATTRIBUTION),
    "sources": ATTRIBUTION,
    "satisfaction": ("week", "day", "month", "channel", "agent", "tag", *ATTRIBUTION),
}
FILTERS_OF: dict[str, tuple[str, ...]] = {
    "retention": (),
    "value": (),
    "sources": (),
    "satisfaction": ("channel", "agent", "tag"),
}


def default_group(name: str) -> str:
    """What report ``name`` is grouped by unless told."""
    return GROUPS_OF[name][0] if name in GROUPS_OF else "week"


def check_query(name: str, query: ReportQuery) -> None:
    """:class:`ReportRangeError` if report ``name`` cannot be grouped or filtered so."""
    groups = GROUPS_OF.get(name, SERVICE_GROUPS)
    if query.group not in groups:
        raise ReportRangeError(f"{name} is grouped by {', '.join(groups)}")
    allowed = FILTERS_OF.get(name, SERVICE_FILTERS)
    for given in SERVICE_FILTERS:
        if getattr(query, given) is not None and given not in allowed:
            raise ReportRangeError(f"{name} takes no {given} filter")


def run_report(conn: Connection, name: str, query: ReportQuery) -> Report:
    """The report called ``name`` (a key of :data:`REPORTS`); :class:`ReportRangeError` if it
    cannot be grouped or filtered as ``query`` asks."""
    check_query(name, query)
    return REPORTS[name](conn, query)
