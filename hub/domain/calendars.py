"""Business calendars: when a team is open (weekly hours in its zone, public holidays, closed
days), so response times can be measured in business hours. Pure: no I/O beyond reading the
zone and holiday rules the ``zoneinfo`` and ``holidays`` packages ship.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from hub.domain.errors import InvalidCommand

__all__ = ["ALWAYS", "WEEKDAYS", "BusinessCalendar", "check_calendar"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

MAX_INTERVALS_PER_DAY = 4
MAX_CLOSED_DATES = 366
#: How far :meth:`BusinessCalendar.add_business_seconds` looks for opening time.
SEARCH_DAYS = 3653

_KEYS = frozenset({"time_zone", "hours", "holidays", "closed_dates"})
_HOLIDAY_KEYS = frozenset({"country", "subdivision"})
_INTERVAL_KEYS = frozenset({"start", "end"})
_ZONE = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", re.ASCII)
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_COUNTRY = re.compile(r"[A-Za-z]{2}", re.ASCII)
_MAX_TEXT = 64
_DAY = 1440  # minutes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_US_A_MINUTE = 60_000_000
_US_A_DAY = 1440 * _US_A_MINUTE
_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0)
_NO_OFFSET = timedelta(0)
_CACHED_DAYS = 8192

#: (start, end) minutes after local midnight, sorted, not overlapping; 1440 is 24:00.
Intervals = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Definition:
    time_zone: str
    hours: tuple[Intervals, ...]  # one per weekday, Monday first
    country: str | None
    subdivision: str | None
    closed_dates: tuple[date, ...]

    def canonical(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "hours": {
                day: [{"start": _hhmm(s), "end": _hhmm(e)} for s, e in intervals]
                for day, intervals in zip(WEEKDAYS, self.hours, strict=True)
            },
            "holidays": None
            if self.country is None
            else {"country": self.country, "subdivision": self.subdivision},
            "closed_dates": [d.isoformat() for d in self.closed_dates],
        }


def check_calendar(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical stored form of an untrusted calendar definition (JSON-serialisable:
    all seven weekdays, intervals and dates sorted); :class:`InvalidCommand` naming the
    field (``hours.monday[0].start``) for anything wrong."""
    return _parse(raw).canonical()


@dataclass(frozen=True)
class BusinessCalendar:
    """When a team is open: weekly local hours in ``time_zone``, minus public holidays
    (``country``/``subdivision`` of the ``holidays`` package) and ``closed_dates``."""

    name: str
    time_zone: str
    hours: tuple[Intervals, ...]
    country: str | None = None
    subdivision: str | None = None
    closed_dates: frozenset[date] = frozenset()
    # Derived state, not part of the value: the zone, and per-day and per-year caches.
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: dict[int, tuple[tuple[int, int], ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _holidays: dict[int, frozenset[date]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.time_zone))

    @classmethod
    def of(cls, name: str, definition: Mapping[str, Any]) -> BusinessCalendar:
        """The calendar a definition describes (checked as :func:`check_calendar` does)."""
        parsed = _parse(definition)
        return cls(
            name,
            parsed.time_zone,
            parsed.hours,
            parsed.country,
            parsed.subdivision,
            frozenset(parsed.closed_dates),
        )

    @property
    def definition(self) -> dict[str, Any]:
        """The canonical definition (what :func:`check_calendar` returns)."""
        return _Definition(
            self.time_zone,
            self.hours,
            self.country,
            self.subdivision,
            tuple(sorted(self.closed_dates)),
        ).canonical()

    def is_open(self, at: datetime) -> bool:
        x = _aware_us(at)
        day = self._local_ordinal(at)
        return any(a <= x < b for o in range(day - 1, day + 1) for a, b in self._spans(o))

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of opening time within [start, end) (0 when end <= start)."""
        s, e = _aware_us(start), _aware_us(end)
        if e <= s:
            return 0.0
        total = 0
        for o in range(self._local_ordinal(start) - 1, self._local_ordinal(end) + 1):
            for a, b in self._spans(o):
                if a >= e:
                    return total / 1e6
                if b > s:
                    total += min(b, e) - max(a, s)
        return total / 1e6

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The (UTC) instant at which ``seconds`` of opening time have passed since ``start``:
        the earliest one, so it may be a closing time. ValueError when the calendar never
        opens, or not within :data:`SEARCH_DAYS` days."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"business seconds must be finite and 0 or more, not {seconds}")
        s = _aware_us(start)
        need = round(seconds * 1e6)
        if need == 0:
            return start.astimezone(UTC)
        if not any(self.hours):
            raise ValueError(f"the calendar {self.name!r} has no opening hours")
        first = self._local_ordinal(start) - 1
        for o in range(first, min(first + SEARCH_DAYS + 2, date.max.toordinal())):
            for a, b in self._spans(o):
                a = max(a, s)
                if b <= a:
                    continue
                if need <= b - a:
                    return _instant(a + need)
                need -= b - a
        raise ValueError(
            f"the calendar {self.name!r} is not open for {seconds:g} s within "
            f"{SEARCH_DAYS} days of {start.isoformat()}"
        )

    def _local_ordinal(self, at: datetime) -> int:
        return max(at.astimezone(self._zone).toordinal(), 2)

    def _spans(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        """The opening spans of a local date, in µs since the epoch: sorted, disjoint, and
        within the day's real instants (a time the clocks skip moves forward by the gap)."""
        spans = self._days.get(ordinal)
        if spans is None:
            try:
                spans = self._compute_spans(date.fromordinal(ordinal))
            except (OverflowError, ValueError):  # the first or last days datetime holds
                spans = ()
            if len(self._days) >= _CACHED_DAYS:
                self._days.clear()
            self._days[ordinal] = spans
        return spans

    def _compute_spans(self, day: date) -> tuple[tuple[int, int], ...]:
        intervals = self.hours[day.weekday()]
        if not intervals or day in self.closed_dates or day in self._holiday_dates(day.year):
            return ()
        midnight = (day.toordinal() - _EPOCH_ORDINAL) * _US_A_DAY
        first = self._offset_us(datetime.combine(day, _MIDNIGHT))
        last = self._offset_us(datetime.combine(day + _ONE_DAY, _MIDNIGHT))
        if first == last:
            # The usual day: one offset throughout (no zone changes its offset and back
            # within one day), so no boundary needs a look-up of its own.
            return tuple(
                (midnight + start * _US_A_MINUTE - first, midnight + end * _US_A_MINUTE - first)
                for start, end in intervals
            )
        lo, hi = midnight - first, midnight + _US_A_DAY - last
        spans: list[tuple[int, int]] = []
        cursor = lo
        for start, end in intervals:
            # Around a DST gap local times do not map to instants in order; clipping to
            # what came before keeps the spans disjoint, so no instant counts twice.
            a = max(self._local_us(day, midnight, start), cursor)
            b = min(self._local_us(day, midnight, end), hi)
            if b > a:
                spans.append((a, b))
                cursor = b
        return tuple(spans)

    def _local_us(self, day: date, midnight: int, minutes: int) -> int:
        """The instant (µs since the epoch) of ``minutes`` after local midnight of ``day``
        (whose naive µs are ``midnight``); a time the clocks skip maps as PEP 495's fold=0."""
        if minutes == _DAY:
            local = datetime.combine(day + _ONE_DAY, _MIDNIGHT)
        else:
            local = datetime.combine(day, time(minutes // 60, minutes % 60))
        return midnight + minutes * _US_A_MINUTE - self._offset_us(local)

    def _offset_us(self, local: datetime) -> int:
        offset = self._zone.utcoffset(local) or _NO_OFFSET  # never None for a ZoneInfo
        return offset // _US

    def _holiday_dates(self, year: int) -> frozenset[date]:
        if self.country is None:
            return frozenset()
        found = self._holidays.get(year)
        if found is None:
            rules = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
            found = frozenset(rules.keys())
            self._holidays[year] = found
        return found


#: Open around the clock, every day, in UTC: for a policy that names no calendar.
ALWAYS = BusinessCalendar("always", "UTC", tuple(((0, _DAY),) for _ in WEEKDAYS))


def _us(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _aware_us(at: datetime) -> int:
    if at.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, not {at!r}")
    return _us(at)


def _instant(us: int) -> datetime:
    try:
        return _EPOCH + us * _US
    except OverflowError:
        raise ValueError("the instant is beyond the range of datetime") from None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _shown(key: object) -> str:
    text = key if isinstance(key, str) else repr(key)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


@cache
def _supported_countries() -> dict[str, tuple[str, ...]]:
    return {
        country: tuple(subdivisions)
        for country, subdivisions in holidays.list_supported_countries().items()
        if len(country) == 2
    }


def _parse(raw: object) -> _Definition:
    if not isinstance(raw, Mapping):
        raise InvalidCommand("a calendar definition is a JSON object", field="")
    for key in raw:
        if key not in _KEYS:
            raise InvalidCommand(
                f"unknown key {_shown(key)!r}; known: {', '.join(sorted(_KEYS))}",
                field=_shown(key),
            )
    zone = _time_zone(raw.get("time_zone"))
    hours = _hours(raw.get("hours"))
    country, subdivision = _holidays_of(raw.get("holidays"))
    closed = _closed_dates(raw.get("closed_dates", []))
    return _Definition(zone, hours, country, subdivision, closed)


def _time_zone(value: object) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT or not _ZONE.fullmatch(value):
        raise InvalidCommand(
            "time_zone: an IANA time zone name, such as Europe/Vilnius", field="time_zone"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidCommand(
            f"time_zone: no IANA time zone is called {value!r}", field="time_zone"
        ) from None
    return value


def _hours(value: object) -> tuple[Intervals, ...]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidCommand(
            "hours: an object from weekday (monday ... sunday) to opening intervals",
            field="hours",
        )
    for key in value:
        if key not in WEEKDAYS:
            raise InvalidCommand(
                f"hours: {_shown(key)!r} is not a weekday (monday ... sunday)",
                field=f"hours.{_shown(key)}",
            )
    week = tuple(_day_intervals(day, value.get(day, [])) for day in WEEKDAYS)
    if not any(week):
        raise InvalidCommand("hours: the calendar must be open at some time", field="hours")
    return week


def _day_intervals(day: str, value: object) -> Intervals:
    path = f"hours.{day}"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidCommand(
            f"{path}: a list of intervals such as {{'start': '09:00', 'end': '17:00'}}",
            field=path,
        )
    if len(value) > MAX_INTERVALS_PER_DAY:
        raise InvalidCommand(f"{path}: at most {MAX_INTERVALS_PER_DAY} intervals a day", field=path)
    intervals: list[tuple[int, int, int]] = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        if not isinstance(item, Mapping) or set(item) != _INTERVAL_KEYS:
            raise InvalidCommand(
                f"{at}: an object with exactly 'start' and 'end' (HH:MM)", field=at
            )
        start = _minutes(item["start"], f"{at}.start", end=False)
        end = _minutes(item["end"], f"{at}.end", end=True)
        if start >= end:
            raise InvalidCommand(f"{at}: the start must come before the end", field=at)
        intervals.append((start, end, i))
    intervals.sort()
    for (_, end, _), (start, _, i) in pairwise(intervals):
        if start < end:
            at = f"{path}[{i}]"
            raise InvalidCommand(f"{at}: overlaps another interval of {day}", field=at)
    return tuple((start, end) for start, end, _ in intervals)


def _minutes(value: object, path: str, *, end: bool) -> int:
    if not isinstance(value, str) or not _TIME.fullmatch(value) or (value == "24:00" and not end):
        allowed = "00:00 to 24:00" if end else "00:00 to 23:59"
        raise InvalidCommand(f"{path}: a 24-hour time HH:MM, {allowed}", field=path)
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _holidays_of(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise InvalidCommand(
            "holidays: an object such as {'country': 'LT', 'subdivision': null}",
            field="holidays",
        )
    for key in value:
        if key not in _HOLIDAY_KEYS:
            raise InvalidCommand(
                f"holidays: unknown key {_shown(key)!r}; known: country, subdivision",
                field=f"holidays.{_shown(key)}",
            )
    country = value.get("country")
    supported = _supported_countries()
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise InvalidCommand(
            "holidays.country: an ISO 3166-1 alpha-2 country code, such as LT",
            field="holidays.country",
        )
    country = country.upper()
    if country not in supported:
        raise InvalidCommand(
            f"holidays.country: no public holidays are known for {country}",
            field="holidays.country",
        )
    subdivision = value.get("subdivision")
    if subdivision is None:
        return country, None
    subdivisions = supported[country]
    if isinstance(subdivision, str) and subdivision not in subdivisions:
        folded = [s for s in subdivisions if s.casefold() == subdivision.casefold()]
        subdivision = folded[0] if len(folded) == 1 else subdivision
    if not isinstance(subdivision, str) or subdivision not in subdivisions:
        known = ", ".join(subdivisions) if subdivisions else "none"
        raise InvalidCommand(
            f"holidays.subdivision: not a subdivision of {country} (known: {_shown(known)})",
            field="holidays.subdivision",
        )
    return country, subdivision


def _closed_dates(value: object) -> tuple[date, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidCommand("closed_dates: a list of dates (YYYY-MM-DD)", field="closed_dates")
    if len(value) > MAX_CLOSED_DATES:
        raise InvalidCommand(
            f"closed_dates: at most {MAX_CLOSED_DATES} dates", field="closed_dates"
        )
    dates: set[date] = set()
    for i, item in enumerate(value):
        path = f"closed_dates[{i}]"
        try:
            if not isinstance(item, str) or not _DATE.fullmatch(item):
                raise ValueError
            dates.add(date.fromisoformat(item))
        except ValueError:
            raise InvalidCommand(f"{path}: a date as YYYY-MM-DD", field=path) from None
    return tuple(sorted(dates))
