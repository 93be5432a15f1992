"""Business calendars (hub.domain.calendars): checking untrusted definitions, and business
time measured over weekends, holidays, lunch breaks and DST changes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.calendars import ALWAYS, WEEKDAYS, BusinessCalendar, check_calendar
from hub.domain.errors import InvalidCommand

VILNIUS = ZoneInfo("Europe/Vilnius")
HOUR = 3600.0
WHOLE_DAY = {"start": "00:00", "end": "24:00"}


def office(**extra: Any) -> dict[str, Any]:
    """Mon-Fri 09:00-17:00 in Vilnius, with Lithuanian public holidays."""
    return {
        "time_zone": "Europe/Vilnius",
        "hours": {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS[:5]},
        "holidays": {"country": "LT", "subdivision": None},
        **extra,
    }


OFFICE = BusinessCalendar.of("vilnius", office())


def vilnius(*args: int) -> datetime:
    return datetime(*args, tzinfo=VILNIUS)  # type: ignore[misc]


# -- worked examples ---------------------------------------------------------------------------


def test_friday_evening_to_monday_morning_is_one_business_hour() -> None:
    asked, answered = vilnius(2026, 3, 13, 16, 30), vilnius(2026, 3, 16, 9, 30)
    assert OFFICE.business_seconds(asked, answered) == HOUR
    assert OFFICE.add_business_seconds(asked, HOUR) == answered
    assert OFFICE.add_business_seconds(asked, HOUR).tzinfo is UTC


def test_a_lithuanian_public_holiday_is_closed_all_day() -> None:
    # 2026-02-16, a Monday: Day of Restoration of the State of Lithuania.
    assert not OFFICE.is_open(vilnius(2026, 2, 16, 10))
    assert OFFICE.business_seconds(vilnius(2026, 2, 16, 9), vilnius(2026, 2, 16, 17)) == 0
    # Friday 16:00 to Tuesday 10:00: one hour on Friday, one on Tuesday.
    assert OFFICE.business_seconds(vilnius(2026, 2, 13, 16), vilnius(2026, 2, 17, 10)) == 2 * HOUR
    assert OFFICE.is_open(vilnius(2026, 2, 17, 10))


def test_opening_hours_are_local_and_end_exclusive() -> None:
    assert OFFICE.is_open(vilnius(2026, 3, 16, 9))
    assert not OFFICE.is_open(vilnius(2026, 3, 16, 17))
    assert not OFFICE.is_open(vilnius(2026, 3, 16, 8, 59))
    assert OFFICE.is_open(datetime(2026, 3, 16, 7, 0, tzinfo=UTC))  # 09:00 EET
    assert OFFICE.business_seconds(vilnius(2026, 3, 16, 17), vilnius(2026, 3, 16, 9)) == 0


def test_a_whole_day_is_23_hours_on_the_spring_dst_change_and_25_in_autumn() -> None:
    always_vilnius = BusinessCalendar.of(
        "24/7",
        {
            "time_zone": "Europe/Vilnius",
            "hours": {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS},
        },
    )
    spring = always_vilnius.business_seconds(vilnius(2026, 3, 29), vilnius(2026, 3, 30))
    autumn = always_vilnius.business_seconds(vilnius(2026, 10, 25), vilnius(2026, 10, 26))
    assert spring == 23 * HOUR
    assert autumn == 25 * HOUR


@pytest.mark.parametrize(
    ("zone", "first", "last", "hours"),
    [
        ("America/Santiago", date(2026, 9, 6), date(2026, 9, 7), 23),  # 00:00 -> 01:00
        ("Pacific/Apia", date(2011, 12, 29), date(2012, 1, 1), 48),  # no 2011-12-30
    ],
)
def test_dst_changes_at_midnight_and_skipped_days_count_real_time(
    zone: str, first: date, last: date, hours: int
) -> None:
    around_the_clock = BusinessCalendar.of(
        "24/7",
        {"time_zone": zone, "hours": {day: [WHOLE_DAY] for day in WEEKDAYS}},
    )
    start = datetime.combine(first, datetime.min.time(), tzinfo=ZoneInfo(zone))
    end = datetime.combine(last, datetime.min.time(), tzinfo=ZoneInfo(zone))
    assert around_the_clock.business_seconds(start, end) == hours * HOUR


def test_a_nine_to_five_day_is_eight_hours_on_dst_change_days() -> None:
    sundays = BusinessCalendar.of(
        "sundays",
        {"time_zone": "Europe/Vilnius", "hours": {"sunday": [{"start": "09:00", "end": "17:00"}]}},
    )
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        start, end = (
            vilnius(day.year, day.month, day.day),
            vilnius(day.year, day.month, day.day, 23),
        )
        assert sundays.business_seconds(start, end) == 8 * HOUR


def test_a_lunch_break_is_not_business_time() -> None:
    lunch = BusinessCalendar.of(
        "lunch",
        {
            "time_zone": "Europe/Vilnius",
            "hours": {
                "monday": [{"start": "13:00", "end": "17:00"}, {"start": "09:00", "end": "12:00"}]
            },
        },
    )
    assert lunch.business_seconds(vilnius(2026, 3, 16, 11, 30), vilnius(2026, 3, 16, 13, 30)) == (
        HOUR
    )
    assert lunch.add_business_seconds(vilnius(2026, 3, 16, 11, 30), HOUR) == vilnius(
        2026, 3, 16, 13, 30
    )
    assert not lunch.is_open(vilnius(2026, 3, 16, 12, 15))
    # Monday 16:00 plus two hours: one on this Monday, one the next Monday at 10:00.
    assert lunch.add_business_seconds(vilnius(2026, 3, 16, 16), 2 * HOUR) == vilnius(
        2026, 3, 23, 10
    )


def test_closed_dates_are_closed_all_day() -> None:
    calendar = BusinessCalendar.of(
        "no holidays",
        {**office(closed_dates=["2026-12-24"]), "holidays": None},
    )
    assert not calendar.is_open(vilnius(2026, 12, 24, 10))
    assert calendar.is_open(vilnius(2026, 12, 23, 10))
    # Wednesday 16:00 to Friday 10:00 across the closed Thursday: 1 h + 1 h.
    assert calendar.business_seconds(vilnius(2026, 12, 23, 16), vilnius(2026, 12, 25, 10)) == (
        2 * HOUR
    )


def test_adding_nothing_returns_the_start_and_bad_amounts_are_refused() -> None:
    start = vilnius(2026, 3, 14, 12)
    assert OFFICE.add_business_seconds(start, 0) == start
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="business seconds"):
            OFFICE.add_business_seconds(start, bad)


def test_a_calendar_that_never_opens_cannot_be_added_to() -> None:
    never = BusinessCalendar("never", "UTC", ((),) * 7)
    with pytest.raises(ValueError, match="no opening hours"):
        never.add_business_seconds(datetime(2026, 1, 1, tzinfo=UTC), 1)


def test_a_calendar_closed_for_more_than_the_search_horizon_is_refused() -> None:
    closed = BusinessCalendar("closed", "UTC", ((),) * 6 + (((0, 60),),), closed_dates=frozenset())
    assert closed.add_business_seconds(datetime(2026, 1, 1, tzinfo=UTC), 3600) == datetime(
        2026, 1, 4, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="not open"):
        closed.add_business_seconds(datetime(2026, 1, 1, tzinfo=UTC), 3600 * 600)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        OFFICE.is_open(datetime(2026, 3, 16, 10))


def test_a_years_span_counts_every_working_day() -> None:
    start, end = vilnius(2026, 1, 1), vilnius(2027, 1, 1)
    lt = {d for d, _ in __import__("holidays").country_holidays("LT", years=2026).items()}
    working = sum(
        1
        for n in range(365)
        if (d := date(2026, 1, 1) + timedelta(days=n)).weekday() < 5 and d not in lt
    )
    assert OFFICE.business_seconds(start, end) == working * 8 * HOUR


def test_always_is_open_around_the_clock_in_utc() -> None:
    a = datetime(2026, 3, 29, 0, tzinfo=VILNIUS)
    assert ALWAYS.is_open(a)
    # Real instants: Vilnius's spring-forward day does not shorten a UTC day.
    assert ALWAYS.business_seconds(a, a.astimezone(UTC) + timedelta(days=1)) == 24 * HOUR
    assert ALWAYS.time_zone == "UTC"


# -- checking definitions ----------------------------------------------------------------------


def test_the_canonical_form_has_every_weekday_sorted_intervals_and_dates() -> None:
    raw = {
        "time_zone": "Europe/Vilnius",
        "hours": {
            "monday": [{"end": "17:00", "start": "13:00"}, {"start": "09:00", "end": "12:00"}],
            "friday": [],
            "sunday": None,
        },
        "holidays": {"country": "lt"},
        "closed_dates": ["2026-12-31", "2026-12-24", "2026-12-31"],
    }
    canonical = check_calendar(raw)
    assert canonical == {
        "time_zone": "Europe/Vilnius",
        "hours": {
            "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
            **{day: [] for day in WEEKDAYS[1:]},
        },
        "holidays": {"country": "LT", "subdivision": None},
        "closed_dates": ["2026-12-24", "2026-12-31"],
    }
    assert list(canonical["hours"]) == list(WEEKDAYS)
    assert check_calendar(canonical) == canonical
    assert BusinessCalendar.of("x", raw).definition == canonical
    assert BusinessCalendar.of("x", raw) == BusinessCalendar.of("x", canonical)


def test_a_subdivision_is_matched_to_the_packages_code() -> None:
    checked = check_calendar(office(holidays={"country": "US", "subdivision": "ca"}))
    assert checked["holidays"] == {"country": "US", "subdivision": "CA"}


def _with_monday(*intervals: dict[str, Any]) -> dict[str, Any]:
    return {"time_zone": "UTC", "hours": {"monday": list(intervals)}}


NINE_TO_FIVE = {"start": "09:00", "end": "17:00"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], ""),
        ({"hours": {"monday": [NINE_TO_FIVE]}}, "time_zone"),
        ({**_with_monday(NINE_TO_FIVE), "time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({**_with_monday(NINE_TO_FIVE), "time_zone": "Europe"}, "time_zone"),
        ({**_with_monday(NINE_TO_FIVE), "time_zone": "../../etc/passwd"}, "time_zone"),
        ({**_with_monday(NINE_TO_FIVE), "time_zone": 3}, "time_zone"),
        ({**_with_monday(NINE_TO_FIVE), "open_dates": ["2026-12-27"]}, "open_dates"),
        (_with_monday({"start": "9:00", "end": "17:00"}), "hours.monday[0].start"),
        (_with_monday({"start": "\uff10\uff19:00", "end": "17:00"}), "hours.monday[0].start"),
        (_with_monday({"start": "24:00", "end": "24:00"}), "hours.monday[0].start"),
        (_with_monday({"start": "09:00", "end": "24:01"}), "hours.monday[0].end"),
        (_with_monday({"start": "09:00", "end": "17:00\n"}), "hours.monday[0].end"),
        (_with_monday({"start": "09:00"}), "hours.monday[0]"),
        (_with_monday({"start": "09:00", "end": "17:00", "tz": "UTC"}), "hours.monday[0]"),
        (_with_monday({"start": "17:00", "end": "09:00"}), "hours.monday[0]"),
        (_with_monday({"start": "09:00", "end": "09:00"}), "hours.monday[0]"),
        (_with_monday(NINE_TO_FIVE, {"start": "12:00", "end": "13:00"}), "hours.monday[1]"),
        (
            _with_monday(*[{"start": f"0{h}:00", "end": f"0{h}:30"} for h in range(5)]),
            "hours.monday",
        ),
        ({"time_zone": "UTC", "hours": {"monday": "09:00-17:00"}}, "hours.monday"),
        ({"time_zone": "UTC", "hours": {"funday": [NINE_TO_FIVE]}}, "hours.funday"),
        ({"time_zone": "UTC", "hours": {"monday": []}}, "hours"),
        ({"time_zone": "UTC"}, "hours"),
        ({"time_zone": "UTC", "hours": [NINE_TO_FIVE]}, "hours"),
        ({**_with_monday(NINE_TO_FIVE), "holidays": "LT"}, "holidays"),
        ({**_with_monday(NINE_TO_FIVE), "holidays": {"country": "XX"}}, "holidays.country"),
        ({**_with_monday(NINE_TO_FIVE), "holidays": {"country": "LTU"}}, "holidays.country"),
        ({**_with_monday(NINE_TO_FIVE), "holidays": {}}, "holidays.country"),
        (
            {**_with_monday(NINE_TO_FIVE), "holidays": {"country": "LT", "subdivision": "ZZ"}},
            "holidays.subdivision",
        ),
        (
            {**_with_monday(NINE_TO_FIVE), "holidays": {"country": "LT", "region": "x"}},
            "holidays.region",
        ),
        ({**_with_monday(NINE_TO_FIVE), "closed_dates": ["2026-02-30"]}, "closed_dates[0]"),
        ({**_with_monday(NINE_TO_FIVE), "closed_dates": ["x", "20261224"]}, "closed_dates[0]"),
        ({**_with_monday(NINE_TO_FIVE), "closed_dates": ["2026-12-24", 5]}, "closed_dates[1]"),
        ({**_with_monday(NINE_TO_FIVE), "closed_dates": "2026-12-24"}, "closed_dates"),
        (
            {**_with_monday(NINE_TO_FIVE), "closed_dates": ["2026-01-01"] * 367},
            "closed_dates",
        ),
    ],
)
def test_invalid_definitions_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        check_calendar(raw)
    assert caught.value.details["field"] == field
    assert caught.value.message


def test_24_00_ends_a_day_and_touching_intervals_are_allowed() -> None:
    checked = check_calendar(
        _with_monday({"start": "12:00", "end": "24:00"}, {"start": "00:00", "end": "12:00"})
    )
    assert checked["hours"]["monday"] == [
        {"start": "00:00", "end": "12:00"},
        {"start": "12:00", "end": "24:00"},
    ]


# -- properties ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
TIMES = st.sampled_from(["00:00", "09:00", "12:00", "17:00", "23:59", "24:00"]) | st.text(
    max_size=6
)
INTERVAL = st.fixed_dictionaries({"start": TIMES | JSON, "end": TIMES | JSON}) | JSON
NEAR_VALID = st.fixed_dictionaries(
    {
        "time_zone": st.sampled_from(["UTC", "Europe/Vilnius", "Etc/GMT+5"]) | st.text() | JSON,
        "hours": st.dictionaries(
            st.sampled_from(WEEKDAYS) | st.text(), st.lists(INTERVAL, max_size=5) | JSON
        )
        | JSON,
    },
    optional={
        "holidays": st.fixed_dictionaries(
            {"country": st.sampled_from(["LT", "us", "DE"]) | st.text(max_size=3)},
            optional={"subdivision": st.sampled_from(["CA", "by", None]) | st.text(max_size=3)},
        )
        | JSON,
        "closed_dates": st.lists(
            st.dates().map(date.isoformat) | st.text(max_size=10) | JSON, max_size=4
        )
        | JSON,
        "open_dates": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(NEAR_VALID, JSON, st.dictionaries(st.text(), JSON)))
def test_any_json_is_either_a_definition_or_an_invalid_command(raw: Any) -> None:
    try:
        checked = check_calendar(raw)
    except InvalidCommand as exc:
        refused: InvalidCommand | None = exc
    else:
        refused = None
    if refused is not None:
        assert isinstance(refused.details["field"], str)
        assert refused.message
        return
    assert json.loads(json.dumps(checked)) == checked
    assert check_calendar(checked) == checked
    assert BusinessCalendar.of("fuzz", checked).definition == checked


ZONES = [
    "UTC",
    "Europe/Vilnius",
    "America/New_York",
    "America/Santiago",  # DST changes at midnight
    "America/Havana",
    "Australia/Lord_Howe",  # half-hour DST
    "Asia/Kolkata",
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours: dict[str, list[dict[str, str]]] = {}
    for day in WEEKDAYS:
        bounds = sorted(draw(st.lists(st.integers(0, 1440), unique=True, max_size=8)))
        pairs = zip(bounds[::2], bounds[1::2], strict=False)
        hours[day] = [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in pairs]
    if not any(hours.values()):
        hours["monday"] = [{"start": "00:00", "end": "00:01"}]
    return BusinessCalendar.of(
        "random",
        {
            "time_zone": draw(st.sampled_from(ZONES)),
            "hours": hours,
            "holidays": draw(st.sampled_from([None, {"country": "LT"}, {"country": "US"}])),
            "closed_dates": [
                d.isoformat()
                for d in draw(st.lists(st.dates(date(2009, 1, 1), date(2041, 1, 1)), max_size=10))
            ],
        },
    )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


LOCAL_INSTANTS = st.datetimes(
    min_value=datetime(2010, 1, 1),
    max_value=datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, *map(ZoneInfo, ZONES)]),
)
# In UTC, so that the tests' own arithmetic and ordering is on instants (Python subtracts and
# compares two datetimes of one zone by wall clock).
INSTANTS = LOCAL_INSTANTS.map(lambda at: at.astimezone(UTC))
SPANS = st.floats(0, 40 * 86400, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(calendars(), INSTANTS, SPANS)
def test_adding_business_seconds_inverts_counting_them(
    calendar: BusinessCalendar, start: datetime, seconds: float
) -> None:
    # Within reach of the ten-year search even for a calendar open a minute a week.
    weekly = sum(end - start for day in calendar.hours for start, end in day) * 60
    seconds = min(seconds, weekly * 50.0)
    end = calendar.add_business_seconds(start, seconds)
    assert end >= start
    assert end.tzinfo is UTC
    assert calendar.business_seconds(start, end) == pytest.approx(seconds, abs=1e-6)
    if end > start:  # the earliest such instant
        before = end - timedelta(microseconds=1)
        assert calendar.business_seconds(start, before) < calendar.business_seconds(start, end)


@settings(max_examples=200, deadline=None)
@given(calendars(), INSTANTS, st.lists(st.integers(0, 400 * 86400 * 10**6), min_size=2, max_size=2))
def test_business_time_is_additive_and_bounded_by_wall_time(
    calendar: BusinessCalendar, start: datetime, offsets: list[int]
) -> None:
    a, b, c = start, *sorted(start + timedelta(microseconds=us) for us in offsets)
    ab, bc, ac = (
        calendar.business_seconds(a, b),
        calendar.business_seconds(b, c),
        calendar.business_seconds(a, c),
    )
    assert ab + bc == pytest.approx(ac, abs=1e-6)
    for x, y, counted in ((a, b, ab), (b, c, bc), (a, c, ac)):
        assert 0 <= counted <= (y - x).total_seconds() + 1e-6
    assert calendar.business_seconds(c, a) == 0 or a == c


@settings(max_examples=200, deadline=None)
@given(calendars(), INSTANTS)
def test_open_means_the_next_microsecond_is_business_time(
    calendar: BusinessCalendar, at: datetime
) -> None:
    counted = calendar.business_seconds(at, at + timedelta(microseconds=1))
    assert calendar.is_open(at) == (counted > 0)


@settings(deadline=None)
@given(INSTANTS, INSTANTS, SPANS)
def test_always_is_wall_clock_time(a: datetime, b: datetime, seconds: float) -> None:
    a, b = sorted((a, b))
    assert ALWAYS.business_seconds(a, b) == pytest.approx((b - a).total_seconds(), abs=1e-6)
    assert ALWAYS.add_business_seconds(a, seconds) == a + timedelta(
        microseconds=round(seconds * 1e6)
    )
    assert ALWAYS.is_open(a)


@settings(max_examples=100, deadline=None)
@given(calendars(), LOCAL_INSTANTS, LOCAL_INSTANTS)
def test_the_zone_a_datetime_is_given_in_does_not_matter(
    calendar: BusinessCalendar, a: datetime, b: datetime
) -> None:
    in_utc = calendar.business_seconds(a.astimezone(UTC), b.astimezone(UTC))
    assert calendar.business_seconds(a, b) == in_utc
    assert calendar.is_open(a) == calendar.is_open(a.astimezone(UTC))
    assert calendar.add_business_seconds(a, 3600) == calendar.add_business_seconds(
        a.astimezone(UTC), 3600
    )
