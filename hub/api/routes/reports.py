"""Reports: service figures as JSON or CSV over a date range, grouped and filtered
(``hub.projections.service_reports``; what counts is docs/analytics.md). Reading a report
reads no one's personal data: figures, channels, agents' names, tags and policies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.events.common import Channel
from hub.web.access import Principal
from hub.web.reports import DAY_PATTERN, ReportName, as_csv, compute, parse_day, report_query

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, require("read")]
Group = Literal[
    "day", "week", "month", "channel", "agent", "tag", "policy", "source", "medium", "campaign"
]
Cohort = Literal["first_contact", "first_order"]
_INVALID = (
    422,
    "`invalid_report`: the range ends before it starts or spans more than 400 days, the "
    "time zone is unknown, or the report is not grouped or filtered so (the service reports "
    "by period, channel, agent, tag or policy; `retention` by month; `value` by month, "
    "source, medium or campaign; `sources` by source, medium or campaign; the business "
    "reports take no filter; `satisfaction` by period, channel, agent, tag, source, medium "
    "or campaign, filtered by channel, agent or tag).",
)
Filter = Annotated[str | None, Query(max_length=200)]


@router.get(
    "/{name}",
    responses={
        200: {"content": {"text/csv": {}}, "description": "The report (JSON, or CSV)."},
        **errors(_INVALID),
    },
)
async def get_report(
    name: ReportName,
    runtime: RuntimeDep,
    _: Reader,
    start: Annotated[
        str | None, Query(alias="from", pattern=DAY_PATTERN, description="First day (local).")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", pattern=DAY_PATTERN, description="Last day, included.")
    ] = None,
    group: Annotated[
        Group | None,
        Query(description="Unless told: week; `retention` and `value` month; `sources` source."),
    ] = None,
    tz: Annotated[str | None, Query(max_length=64, description="IANA zone of the days.")] = None,
    channel: Channel | None = None,
    agent: Filter = None,
    tag: Filter = None,
    policy: Filter = None,
    cohort: Annotated[
        Cohort | None,
        Query(description="`retention`, `value`: cohorts by first contact (default) or order."),
    ] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """A service report: `response-times` (first and next responses), `resolution`,
    `conversations` (opened), per day, week (its Monday), month, channel, agent, tag or SLA
    policy, with the total. Times are seconds: `*_median`/`*_p90` in business time (the
    policy's calendar), `*_wall` around the clock.

    A business report, of the customers (merge groups) whose cohort month starts in the range:
    `retention` (per cohort month, the share active 1, 2, 3... months later), `value` (orders
    in the reporting currency, per cohort month, source, medium or campaign; values are
    decimal text), `sources` (customers, conversations, orders, value, retention after 1 and
    3 months per source, medium or campaign).

    `satisfaction` (docs/surveys.md): the CSAT and NPS surveys sent in the range and their
    answers: `csat` (share of 4-5), `csat_average`, `nps` (% promoters - % detractors),
    `promoters`/`passives`/`detractors` and each kind's response rate."""
    first, last = parse_day(start, "from"), parse_day(end, "to")
    query = report_query(
        runtime,
        first,
        last,
        group,
        tz,
        report=name,
        cohort=cohort,
        channel=channel,
        agent=agent,
        tag=tag,
        policy=policy,
    )
    report = await run_in_threadpool(compute, runtime, name, query)
    if format == "csv":
        return Response(
            as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return report.as_json()
