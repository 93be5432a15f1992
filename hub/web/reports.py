"""Reports as the API and the console ask for them: the query from request parameters (the
last four weeks in the hub's time zone unless told), the figures, and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.projections.service_reports import (
    Report,
    ReportQuery,
    ReportRangeError,
    check_query,
    default_group,
    run_report,
)
from hub.runtime import Runtime
from hub.web.errors import ApiError

__all__ = ["DAY_PATTERN", "ReportName", "as_csv", "compute", "parse_day", "report_query"]

#: The reports there are (the keys of ``hub.projections.service_reports.REPORTS``; a test
#: keeps them the same), as the API's path parameter and the console's CSV route take them.
ReportName = Literal[
    "response-times",
    "resolution",
    "conversations",
    "retention",
    "value",
    "sources",
    "satisfaction",
]
#: A local date as the reports take it (the schema says so; the calendar is checked here).
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def parse_day(value: str | None, name: str) -> date | None:
    """``YYYY-MM-DD`` as a date (None: not given); :class:`ApiError` 422 for a day the
    calendar does not have (2026-02-30)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, "invalid_report", f"{name}: no such day {value!r}", field=name
        ) from None


def report_query(
    runtime: Runtime,
    start: date | None,
    end: date | None,
    group: str | None,
    tz: str | None,
    *,
    report: str | None = None,
    cohort: str | None = None,
    **filters: str | None,
) -> ReportQuery:
    """The query of a report request: the last four weeks up to today unless told, in the
    hub's default time zone unless told, grouped as ``report`` is unless told, with the
    reporting currency and rates of the settings (``HUB_REPORTS__...``); :class:`ApiError`
    (422) for what cannot be reported (by ``report``, when named)."""
    try:
        zone = ZoneInfo(tz or runtime.settings.dispatch.default_time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory's name
        raise ApiError(422, "invalid_report", f"unknown time zone {tz!r}", field="tz") from None
    today = datetime.now(zone).date()
    end = end or today
    start = start or end - timedelta(days=27)
    money = runtime.settings.reports
    try:
        query = ReportQuery(
            start=start,
            end=end,
            group=group or (default_group(report) if report else "week"),
            zone=zone,
            cohort=cohort or "first_contact",
            currency=money.currency,
            rates=money.rates,
            **filters,
        )
        if report is not None:
            check_query(report, query)
    except ReportRangeError as exc:
        raise ApiError(422, "invalid_report", str(exc)) from None
    return query


def compute(runtime: Runtime, name: str, query: ReportQuery) -> Report:
    try:
        with runtime.views.engine.connect() as conn:
            return run_report(conn, name, query)
    except ReportRangeError as exc:
        raise ApiError(422, "invalid_report", str(exc)) from None


def as_csv(report: Report) -> str:
    """The report's rows, then its total (group ``total``), as CSV with a header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns)
    for row in [*report.rows, {**report.total, "group": "total"}]:
        writer.writerow(["" if row.get(c) is None else row[c] for c in report.columns])
    return out.getvalue()
