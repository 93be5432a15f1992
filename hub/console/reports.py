"""The Reports page (``/reports``): a support lead's dashboard of first response time, SLA
breach rates, resolution time and conversation volumes over a date range, then retention
cohorts and customers and value per acquisition source, each chart with its numbers as a
table, and each report as CSV (``/reports/<name>.csv``). The figures are
``hub.web.reports``'; the charts ``hub.console.charts``'."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from hub.console.charts import (
    Series,
    bar_chart,
    data_table,
    heat_map,
    line_chart,
    number,
    percent,
)
from hub.console.present import channel_name
from hub.console.shared import Agent, AgentDep, page, runtime_of
from hub.events.common import Channel
from hub.projections.service_reports import FILTERS_OF, GROUPS_OF, PERIODS, Report, ReportQuery
from hub.runtime import Runtime
from hub.web.access import may
from hub.web.errors import ApiError
from hub.web.reports import ReportName, as_csv, compute, report_query

router = APIRouter(include_in_schema=False)

CHANNEL_CHOICES: tuple[str, ...] = get_args(Channel)
#: How a CSV download may be grouped: the page's periods, by channel, agent or source (each
#: report then says whether it can be; docs/analytics.md).
CSV_GROUPS = (*PERIODS, "channel", "agent", "source")
_PERIOD_HEADERS = {"day": "Day", "week": "Week from", "month": "Month"}
_NONE = "\u2013"  # an en dash: no figure for that period
_MAX_FIELD = 40  # a date or a channel is shorter; longer is refused, not echoed at length
#: Duration units of the time charts: (seconds in one, label), chosen by the largest value.
_UNITS = ((60.0, "min"), (3600.0, "h"), (86400.0, "d"))


def _reader(agent: Agent) -> None:
    # The API's /v1/reports needs "read"; the console lets in those who may "act".
    if not may(agent.principal, "read"):
        raise ApiError(403, "forbidden", "only those who may read reports see them")


@dataclass(frozen=True, slots=True)
class Filters:
    """The form as given (shown back as typed), and what it asks for once checked."""

    start: str = ""
    end: str = ""
    period: str = "week"
    channel: str = ""

    def link(self, **changes: str) -> str:
        """The query string of these filters (empty ones left out), with ``changes``."""
        given = {"from": self.start, "to": self.end, "channel": self.channel} | changes
        return urlencode({k: v for k, v in given.items() if v})


def _field(value: str | None, name: str) -> str:
    text = (value or "").strip()
    if len(text) > _MAX_FIELD:
        raise ApiError(422, "invalid_report", f"{name}: at most {_MAX_FIELD} characters")
    return text


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422, "invalid_report", f"{name}: {text!r} is not a date (YYYY-MM-DD)"
        ) from None


#: The fewest months of cohorts the business panels show (a range of weeks shows no trend).
COHORT_MONTHS = 6


def _business_query(runtime: Runtime, filters: Filters, name: str, group: str) -> ReportQuery:
    """The query of business report ``name``: the filters' range, widened back to the
    start of the month :data:`COHORT_MONTHS` - 1 months before its end's (no channel: the
    business reports count customers, not conversations)."""
    start, end = _day(filters.start, "from"), _day(filters.end, "to")
    query = report_query(runtime, start, end, group, None, report=name)
    month = query.end.year * 12 + query.end.month - 1 - (COHORT_MONTHS - 1)
    earliest = date(month // 12, month % 12 + 1, 1)
    if query.start <= earliest:
        return query
    return report_query(runtime, earliest, query.end, group, None, report=name)


def _query(runtime: Runtime, filters: Filters, group: str) -> ReportQuery:
    """The report query of the filters; :class:`ApiError` (422) for what cannot be asked."""
    if group not in CSV_GROUPS:
        raise ApiError(
            422, "invalid_report", f"group: {group!r} is not one of {', '.join(CSV_GROUPS)}"
        )
    if filters.channel and filters.channel not in CHANNEL_CHOICES:
        raise ApiError(422, "invalid_report", f"channel: {filters.channel!r} is no channel")
    start, end = _day(filters.start, "from"), _day(filters.end, "to")
    return report_query(runtime, start, end, group, None, channel=filters.channel or None)


# -- figures as shown -----------------------------------------------------------------------


def _duration_unit(values: Sequence[float | None]) -> tuple[float, str]:
    """Minutes, hours or days, whichever shows the largest of ``values`` (seconds) best."""
    largest = max((v for v in values if v is not None), default=0.0)
    if largest < 2 * 3600:
        return _UNITS[0]
    if largest < 2 * 86400:
        return _UNITS[1]
    return _UNITS[2]


def duration(seconds: float | None) -> str:
    """Seconds as a table shows them: ``45 s``, ``12.5 min``, ``3.2 h``, ``2.1 d``."""
    if seconds is None:
        return _NONE
    if seconds < 60:
        return f"{number(round(seconds))} s"
    size, unit = _duration_unit([seconds])
    return f"{number(round(seconds / size, 1))} {unit}"


def _rate(row: Mapping[str, Any]) -> str:
    rate = row.get("breach_rate")
    if rate is None:
        return _NONE
    return f"{percent(rate)} ({row['breached']} of {row['with_target']})"


def _label(period: str, group: str) -> str:
    """A period as a chart's axis shows it: ``30 Nov`` (a day, a week's Monday), ``Nov 2026``."""
    if group == "month":
        return date.fromisoformat(f"{period}-01").strftime("%b %Y")
    day = date.fromisoformat(period)
    return f"{day.day} {day:%b}"


def _times_chart(
    title: str, labels: Sequence[str], rows: Sequence[Mapping[str, Any]], prefix: str
) -> Markup:
    """Median and p90 (business time) of ``prefix`` over the periods, in one unit."""
    medians = [row[f"{prefix}_median"] for row in rows]
    p90s = [row[f"{prefix}_p90"] for row in rows]
    size, unit = _duration_unit([*medians, *p90s])

    def scaled(values: Sequence[float | None]) -> list[float | None]:
        return [None if v is None else v / size for v in values]

    series = [Series("median", scaled(medians)), Series("p90", scaled(p90s))]
    return line_chart(title, labels, series, unit=unit)


@dataclass(frozen=True, slots=True)
class Panel:
    """One chart of the dashboard, with its numbers and what it means."""

    key: str
    title: str
    about: str
    chart: Markup
    table: Markup
    downloads: tuple[tuple[str, str], ...]  # (what, link) of its reports as CSV


def _csv(name: str, filters: Filters, group: str) -> tuple[str, str]:
    return f"{name} by {group}", f"/reports/{name}.csv?{filters.link(group=group)}"


def _business_csv(name: str, query: ReportQuery) -> tuple[str, str]:
    """The CSV of a business panel: its own (widened) range, its group, no channel."""
    given = {"from": query.start.isoformat(), "to": query.end.isoformat(), "group": query.group}
    return f"{name} by {query.group}", f"/reports/{name}.csv?{urlencode(given)}"


def _months_after(k: int) -> str:
    return f"+{k} mo"


def _share(value: float | None) -> str:
    return _NONE if value is None else percent(value)


def _money(value: str | None, currency: str) -> str:
    return _NONE if value is None else f"{number(float(value))} {currency}"


def _business_panels(runtime: Runtime, filters: Filters) -> list[Panel]:
    """Retention cohorts, customers per source and value per source."""
    cohorts_query = _business_query(runtime, filters, "retention", "month")
    cohorts = compute(runtime, "retention", cohorts_query)
    sources_query = _business_query(runtime, filters, "sources", "source")
    sources = compute(runtime, "sources", sources_query)
    currency = sources_query.currency
    months = [c for c in cohorts.columns if c.startswith("month_")]
    after = [_months_after(int(c.removeprefix("month_"))) for c in months]
    cohort_labels = [
        f"{_label(r['group'], 'month')} ({number(r['customers'])})" for r in cohorts.rows
    ]
    first, last = cohorts_query.start, cohorts_query.end
    span = f"customers first contacted {first.day} {first:%b %Y} to {last.day} {last:%b %Y}"

    def cohort_row(name: str, row: Mapping[str, Any]) -> list[str]:
        return [name, number(row["customers"]), *(_share(row[c]) for c in months)]

    cohort_table = [cohort_row(_label(r["group"], "month"), r) for r in cohorts.rows] + [
        cohort_row("All cohorts", cohorts.total)
    ]
    names = [r["group"] for r in sources.rows]

    def source_row(name: str, row: Mapping[str, Any]) -> list[str]:
        return [
            name,
            number(row["customers"]),
            number(row["conversations"]),
            number(row["orders"]),
            _share(row["retained_month_1"]),
            _share(row["retained_month_3"]),
        ]

    def value_row(name: str, row: Mapping[str, Any]) -> list[str]:
        return [
            name,
            _money(row["value"], currency),
            _money(row["value_per_customer"], currency),
            number(row["buyers"]),
            number(row["unconverted"]),
        ]

    with_total = [*zip(names, sources.rows, strict=True), ("Total", sources.total)]
    return [
        Panel(
            "retention",
            "Retention by cohort",
            f"Monthly cohorts by first contact ({span}): the share of each still in touch "
            "(wrote, was written to by an agent, or ordered) 1, 2, 3... months later.",
            heat_map(
                "Retention by monthly cohort",
                cohort_labels,
                after,
                [[r[c] for c in months] for r in cohorts.rows],
            ),
            data_table(
                "Retention by monthly cohort",
                ["Cohort", "Customers", *after],
                cohort_table,
            ),
            (_business_csv("retention", cohorts_query),),
        ),
        Panel(
            "sources",
            "Customers per source",
            f"Where the {span} came from (the acquisition source of their first contact); "
            "their conversations and orders since, and the share still in touch 1 and 3 "
            "months after.",
            bar_chart(
                "Customers per source",
                names,
                [r["customers"] for r in sources.rows],
                value_format=number,
            ),
            data_table(
                "Customers per source",
                ["Source", "Customers", "Conversations", "Orders", "+1 mo", "+3 mo"],
                [source_row(n, r) for n, r in with_total],
            ),
            (_business_csv("sources", sources_query),),
        ),
        Panel(
            "value",
            "Value per source",
            f"What the {span} ordered, per source, in {currency} (cancellations "
            "subtracted; orders in a currency without a rate are left out and counted).",
            bar_chart(
                f"Order value per source ({currency})",
                names,
                [float(r["value"]) for r in sources.rows],
                unit=currency,
            ),
            data_table(
                f"Order value per source ({currency})",
                ["Source", "Value", "Per customer", "Buyers", "Unconverted orders"],
                [value_row(n, r) for n, r in with_total],
            ),
            (
                _business_csv("value", replace(sources_query, group="source")),
                _business_csv("value", replace(cohorts_query, group="month")),
            ),
        ),
    ]


def _panels(runtime: Runtime, filters: Filters) -> list[Panel]:
    group = filters.period
    if group not in PERIODS:
        raise ApiError(
            422, "invalid_report", f"period: {group!r} is not one of {', '.join(PERIODS)}"
        )
    query = _query(runtime, filters, group)
    responses = compute(runtime, "response-times", query)
    resolved = compute(runtime, "resolution", query)
    opened = compute(runtime, "conversations", query)
    by_channel = compute(runtime, "conversations", _query(runtime, filters, "channel"))
    satisfied = compute(runtime, "satisfaction", query)
    periods = [row["group"] for row in responses.rows]
    labels = [_label(p, group) for p in periods]
    header = _PERIOD_HEADERS[group]

    def rows_with_total(
        report: Report,
        cells: Callable[[Mapping[str, Any]], list[str]],
        name: Callable[[str], str] = str,
    ) -> list[list[str]]:
        found = [[name(row["group"]), *cells(row)] for row in report.rows]
        return [*found, ["Total", *cells(report.total)]] if report.rows else found

    def first_response(row: Mapping[str, Any]) -> list[str]:
        return [
            duration(row["first_response_median"]),
            duration(row["first_response_p90"]),
            number(row["first_responses"]),
        ]

    def resolution(row: Mapping[str, Any]) -> list[str]:
        return [
            duration(row["resolution_median"]),
            duration(row["resolution_p90"]),
            number(row["resolved"]),
        ]

    breaches = [
        [p, _rate(r), _rate(s)]
        for p, r, s in zip(periods, responses.rows, resolved.rows, strict=True)
    ]
    breaches.append(["Total", _rate(responses.total), _rate(resolved.total)])
    return [
        Panel(
            "first-response",
            "First response time",
            "From a customer's first message to an agent's first answer, in business hours "
            "(the calendar of the conversation's SLA policy).",
            _times_chart(
                "First response time (business hours)", labels, responses.rows, "first_response"
            ),
            data_table(
                "First response time per period",
                [header, "Median", "p90", "First responses"],
                rows_with_total(responses, first_response),
            ),
            (_csv("response-times", filters, group),),
        ),
        Panel(
            "breaches",
            "SLA breach rate",
            "The share of responses (by when they were made) and of resolutions that missed "
            "their target; only conversations under an SLA policy with a target count.",
            line_chart(
                "SLA breach rate",
                labels,
                [
                    Series("responses", [r["breach_rate"] for r in responses.rows]),
                    Series("resolution", [r["breach_rate"] for r in resolved.rows]),
                ],
                y_format=percent,
            ),
            data_table(
                "SLA breach rate per period",
                [header, "Responses", "Resolutions"],
                breaches,
            ),
            (_csv("response-times", filters, group), _csv("resolution", filters, group)),
        ),
        Panel(
            "resolution",
            "Resolution time",
            "From a conversation's first customer message to its resolution, in business "
            "hours, by when it was resolved.",
            _times_chart("Resolution time (business hours)", labels, resolved.rows, "resolution"),
            data_table(
                "Resolution time per period",
                [header, "Median", "p90", "Resolved"],
                rows_with_total(resolved, resolution),
            ),
            (_csv("resolution", filters, group),),
        ),
        Panel(
            "channels",
            "Conversations per channel",
            "Conversations opened in the range, by channel.",
            bar_chart(
                "Conversations per channel",
                [channel_name(r["group"]) for r in by_channel.rows],
                [r["opened"] for r in by_channel.rows],
                value_format=number,
            ),
            data_table(
                "Conversations per channel",
                ["Channel", "Opened", "Resolved", "Open"],
                rows_with_total(
                    by_channel,
                    lambda r: [number(r["opened"]), number(r["resolved"]), number(r["open"])],
                    channel_name,
                ),
            ),
            (_csv("conversations", filters, "channel"),),
        ),
        Panel(
            "opened",
            "Conversations opened",
            "Conversations opened per period; how many of them are resolved by now.",
            bar_chart(
                "Conversations opened per period",
                labels,
                [r["opened"] for r in opened.rows],
                horizontal=False,
                value_format=number,
            ),
            data_table(
                "Conversations opened per period",
                [header, "Opened", "Answered", "Resolved"],
                rows_with_total(
                    opened,
                    lambda r: [number(r["opened"]), number(r["answered"]), number(r["resolved"])],
                ),
            ),
            (_csv("conversations", filters, group),),
        ),
        *_satisfaction_panels(satisfied, labels, header, rows_with_total, filters),
        *_business_panels(runtime, filters),
    ]


def _score(value: float | None) -> str:
    return _NONE if value is None else number(value)


def _satisfaction_panels(
    report: Report,
    labels: Sequence[str],
    header: str,
    rows_with_total: Callable[..., list[list[str]]],
    filters: Filters,
) -> list[Panel]:
    """CSAT and NPS over the periods, by when the survey was sent (docs/surveys.md)."""

    def csat(row: Mapping[str, Any]) -> list[str]:
        return [
            _share(row["csat"]),
            _score(row["csat_average"]),
            f"{number(row['csat_answered'])} / {number(row['csat_sent'])}",
        ]

    def nps(row: Mapping[str, Any]) -> list[str]:
        return [
            _score(row["nps"]),
            number(row["promoters"]),
            number(row["passives"]),
            number(row["detractors"]),
            f"{number(row['nps_answered'])} / {number(row['nps_sent'])}",
        ]

    group = report.query.group
    return [
        Panel(
            "csat",
            "Customer satisfaction (CSAT)",
            "The share of answers that were 4 or 5 out of 5, and how many surveys were "
            "answered, by when the survey was sent after a resolved conversation.",
            line_chart(
                "CSAT",
                labels,
                [
                    Series("satisfied (4-5)", [r["csat"] for r in report.rows]),
                    Series("answered", [r["csat_response_rate"] for r in report.rows]),
                ],
                y_format=percent,
            ),
            data_table(
                "CSAT per period",
                [header, "Satisfied", "Average", "Answered / sent"],
                rows_with_total(report, csat),
            ),
            (_csv("satisfaction", filters, group), _csv("satisfaction", filters, "agent")),
        ),
        Panel(
            "nps",
            "Net Promoter Score",
            "% promoters (9-10) minus % detractors (0-6), from -100 to 100, by when the "
            "survey was sent.",
            line_chart("NPS", labels, [Series("NPS", [r["nps"] for r in report.rows])]),
            data_table(
                "NPS per period",
                [header, "NPS", "Promoters", "Passives", "Detractors", "Answered / sent"],
                rows_with_total(report, nps),
            ),
            (_csv("satisfaction", filters, group), _csv("satisfaction", filters, "source")),
        ),
    ]


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    agent: AgentDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    period: str | None = None,
    channel: str | None = None,
) -> Response:
    """The dashboard over the filters (the last four weeks by week unless told); the form
    with the reason, answered 422, when they cannot be reported."""
    _reader(agent)
    runtime = runtime_of(request)
    shown = Filters(
        (start or "")[:_MAX_FIELD],
        (end or "")[:_MAX_FIELD],
        (period or "week")[:_MAX_FIELD],
        (channel or "")[:_MAX_FIELD],
    )
    context: dict[str, Any] = {
        "agent": agent,
        "filters": shown,
        "periods": PERIODS,
        "channels": [(c, channel_name(c)) for c in CHANNEL_CHOICES],
        "zone": runtime.settings.dispatch.default_time_zone or "UTC",
    }
    try:
        filters = Filters(
            _field(start, "from"),
            _field(end, "to"),
            _field(period, "period") or "week",
            _field(channel, "channel"),
        )
        panels = await run_in_threadpool(_panels, runtime, filters)
    except ApiError as exc:
        return page(request, "reports.html", status=exc.status, error=exc.message, **context)
    levels = runtime.commands.service_levels
    context["policies"] = await run_in_threadpool(levels.policies)
    context["calendars"] = await run_in_threadpool(levels.calendars)
    return page(request, "reports.html", panels=panels, **context)


@router.get("/reports/{name}.csv")
async def report_csv(
    request: Request,
    name: ReportName,
    agent: AgentDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    group: str | None = None,
    channel: str | None = None,
) -> Response:
    """One report as CSV over the same filters (the API's CSV needs a bearer token; the
    console's session is a cookie)."""
    _reader(agent)
    runtime = runtime_of(request)
    filters = Filters(_field(start, "from"), _field(end, "to"), "", _field(channel, "channel"))
    if "channel" not in FILTERS_OF.get(name, ("channel",)):  # a business report: no channel
        chosen = _field(group, "group") or GROUPS_OF[name][0]
        query = report_query(
            runtime, _day(filters.start, "from"), _day(filters.end, "to"), chosen, None, report=name
        )
    else:
        query = _query(runtime, filters, _field(group, "group") or "week")
    report = await run_in_threadpool(compute, runtime, name, query)
    filename = f"{name}_{query.start}_{query.end}_{query.group}.csv"
    return Response(
        as_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
