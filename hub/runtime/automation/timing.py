"""When a date rule's messages are due: pure functions of dates, local times and zones (no
I/O), computed with ``zoneinfo`` so that "10:00 in the customer's zone" is 10:00 there on
the days the clocks change too.

A date rule sends on the local day ``d`` when the customer's date (a birthday, a first
contact, a date attribute) falls on ``d - offset_days``: every year (birthdays and
anniversaries: the month and day), or once (a date attribute: that exact date). A 29
February falls on 28 February in the years without one.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from hub.domain.policy import local_due, zone_for

__all__ = [
    "GRACE",
    "HORIZON",
    "candidate_days",
    "local_due",
    "month_days",
    "occurs_on",
    "within",
    "zone_for",
]

#: How far back a planner still schedules what it missed (a hub that was down).
GRACE = timedelta(days=1)
#: How far ahead date rules are planned.
HORIZON = timedelta(hours=36)
#: The widest offsets from UTC of any zone (local dates span these around a UTC instant).
_EAST, _WEST = timedelta(hours=14), timedelta(hours=12)


def candidate_days(
    now: datetime, grace: timedelta = GRACE, horizon: timedelta = HORIZON
) -> list[date]:
    """Every local day (in any zone) on which a time in ``[now - grace, now + horizon]``
    can fall."""
    first = (now - grace - _WEST).astimezone(UTC).date()
    last = (now + horizon + _EAST).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def within(
    due: datetime, now: datetime, grace: timedelta = GRACE, horizon: timedelta = HORIZON
) -> bool:
    return now - grace <= due <= now + horizon


def month_days(days: Iterable[date], offset_days: int) -> set[str]:
    """The ``MM-DD`` a yearly date must have to fall on one of ``days`` (``02-29`` too when
    a day is 28 February of a year without a 29th)."""
    found: set[str] = set()
    for day in days:
        target = day - timedelta(days=offset_days)
        found.add(target.strftime("%m-%d"))
        if _is_feb_28_of_common_year(target):
            found.add("02-29")
    return found


def exact_days(days: Iterable[date], offset_days: int) -> set[str]:
    """The ``YYYY-MM-DD`` a once-only date must be to fall on one of ``days``."""
    return {(day - timedelta(days=offset_days)).isoformat() for day in days}


def occurs_on(value: str | date, day: date, offset_days: int, yearly: bool) -> bool:
    """Whether a rule on this customer's date (``YYYY-MM-DD``, ``--MM-DD`` when the year is
    not known, or a date) sends on local ``day``. Yearly dates send from the year after
    theirs on (a birthday, not the day of birth; an anniversary, not the first day)."""
    text = value.isoformat() if isinstance(value, date) else value
    target = day - timedelta(days=offset_days)
    if not yearly:
        return text == target.isoformat()
    if len(text) < 5:
        return False
    month_day = text[-5:]
    year = text[:4]
    if year.isdigit() and int(year) >= target.year:
        return False
    if month_day == target.strftime("%m-%d"):
        return True
    return month_day == "02-29" and _is_feb_28_of_common_year(target)


def _is_feb_28_of_common_year(day: date) -> bool:
    return day.month == 2 and day.day == 28 and not calendar.isleap(day.year)
