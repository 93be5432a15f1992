"""The reports' periods (``hub.projections.service_reports``): the bisection a report uses
for its rows puts every instant in the same local day, week or month as a zone conversion,
across daylight-saving changes and in zones whose offsets are not whole hours."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.projections.service_reports import ReportQuery

ZONES = (
    "UTC",
    "Europe/Vilnius",
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "Australia/Lord_Howe",  # a 30-minute daylight-saving change
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # clocks move at midnight
)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("group", ["day", "week", "month"])
def test_the_period_finder_agrees_with_a_zone_conversion(zone: str, group: str) -> None:
    query = ReportQuery(date(2025, 1, 1), date(2025, 12, 31), group=group, zone=ZoneInfo(zone))
    find = query.period_finder()
    at = query.since - timedelta(days=2)  # a little outside the range on both sides
    checked = 0
    while at < query.until + timedelta(days=2):
        expected = query.period_of(at)
        assert find(at) == expected, at
        assert find(at.replace(tzinfo=None)) == expected, at  # SQLite's naive UTC
        at += timedelta(minutes=53, seconds=7)
        checked += 1
    assert checked > 10_000
