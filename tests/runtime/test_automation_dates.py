"""The date rules' planner (``hub.runtime.automation.dates``) on SQLite and PostgreSQL, with
the time given to it: a birthday message at 10:00 in the customer's zone, on the days the
clocks change too (Europe/Vilnius, 2026-03-29 and 2026-10-25), scheduled once however many
rounds or planners see it; 29 February in common years; anniversaries of the first contact;
a date attribute once with an offset; customers without the date passed over."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.domain.automations import AutomationRecord, Definition
from hub.runtime.automation.dates import DatePlanner
from hub.runtime.automation.specs import date_key
from hub.runtime.automation.timing import candidate_days, month_days, occurs_on
from hub.store import Store
from tests.runtime.automation_support import Hub

BIRTHDAY = Definition(
    kind="date",
    name="Birthday",
    template="birthday",
    channels=("sms",),
    date_field="birthday",
    local_time=time(10, 0),
)
ZONE = ZoneInfo("Europe/Vilnius")


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store)


def _rule(hub: Hub, definition: Definition = BIRTHDAY) -> AutomationRecord:
    return hub.app.automations.define(definition, actor="ana")


def _planner(hub: Hub) -> DatePlanner:
    return DatePlanner(hub.app, hub.views.engine, None)


def _ready(hub: Hub, rule: AutomationRecord) -> AutomationRecord:
    """The views up to date, and the rule as if defined long ago (rules plan only what is
    due after they were defined or last changed)."""
    hub.project()
    return replace(rule, updated_at=datetime(2000, 1, 1, tzinfo=UTC))


def _plan(hub: Hub, rule: AutomationRecord, now: datetime, planner: DatePlanner | None) -> int:
    return (planner or _planner(hub)).plan_rules([rule], now)


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [(date(2026, 3, 29), 7), (date(2026, 10, 25), 8), (date(2026, 6, 1), 7)],
)
def test_a_birthday_message_is_due_at_ten_local_once_on_a_dst_switch_day(
    hub: Hub, day: date, utc_hour: int
) -> None:
    customer = hub.customer(birthday=f"1990-{day:%m-%d}", time_zone="Europe/Vilnius")
    hub.customer(time_zone="Europe/Vilnius")  # no birthday: passed over
    rule = _ready(hub, _rule(hub))
    planner = _planner(hub)
    key = date_key(rule.automation_id, customer, day)
    start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=2)
    new = 0
    for hours in range(0, 96, 3):  # a round every 3 hours, 4 days long
        new += _plan(hub, rule, start + timedelta(hours=hours), planner)
    new += _plan(hub, rule, start + timedelta(days=1), _planner(hub))  # a second planner
    assert new == 1
    occurrence = hub.occurrence(key)
    assert occurrence is not None
    assert occurrence.due_at == datetime.combine(day, time(utc_hour), tzinfo=UTC)
    assert occurrence.due_at.astimezone(ZONE).time() == time(10, 0)
    assert occurrence.source == {"kind": "rule", "id": str(rule.automation_id), "name": "Birthday"}


def test_29_february_falls_on_28_february_in_common_years(hub: Hub) -> None:
    leapling = hub.customer(birthday="2000-02-29", time_zone="UTC")
    rule = _ready(hub, _rule(hub))
    assert _plan(hub, rule, datetime(2027, 2, 28, 0, 0, tzinfo=UTC), None) == 1
    assert hub.occurrence(date_key(rule.automation_id, leapling, date(2027, 2, 28)))
    # In a leap year, on the 29th only.
    assert _plan(hub, rule, datetime(2028, 2, 28, 0, 0, tzinfo=UTC), None) == 1
    assert hub.occurrence(date_key(rule.automation_id, leapling, date(2028, 2, 29)))
    assert not hub.occurrence(date_key(rule.automation_id, leapling, date(2028, 2, 28)))


def test_the_zone_is_the_profiles_else_the_phones_else_the_default(hub: Hub) -> None:
    in_tokyo = hub.customer(birthday="--05-10", time_zone="Asia/Tokyo")
    by_phone = hub.customer(birthday="--05-10")  # +370: Europe/Vilnius
    by_default = hub.customer(address="email:d@example.com", birthday="--05-10")
    rule = _ready(hub, _rule(hub))
    planner = DatePlanner(hub.app, hub.views.engine, "America/New_York")
    assert _plan(hub, rule, datetime(2026, 5, 9, 12, 0, tzinfo=UTC), planner) == 3
    due = {
        c: hub.occurrence(date_key(rule.automation_id, c, date(2026, 5, 10)))
        for c in (in_tokyo, by_phone, by_default)
    }
    assert {c: o.due_at.hour for c, o in due.items() if o} == {
        in_tokyo: 1,  # 10:00 +09:00
        by_phone: 7,  # 10:00 +03:00
        by_default: 14,  # 10:00 -04:00
    }


def test_first_contact_anniversaries_and_a_date_attribute_once(hub: Hub) -> None:
    hub.app.profile.define_attribute("renewal", "date", "Renewal", actor="ana")
    first = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    old_friend = hub.customer(at=first, time_zone="Europe/Vilnius")
    renews = hub.customer(
        at=first + timedelta(days=40),
        attributes={"renewal": "2026-05-31"},
        time_zone="Europe/Vilnius",
    )
    anniversary = _rule(hub, replace(BIRTHDAY, name="Anniversary", date_field="first_contact"))
    renewal = _rule(
        hub,
        replace(
            BIRTHDAY,
            name="Renewal",
            date_field="attributes.renewal",
            offset_days=-30,
            yearly=False,
        ),
    )
    anniversary, renewal = _ready(hub, anniversary), _ready(hub, renewal)
    # Not on the first contact's own day; on each later year's.
    assert _plan(hub, anniversary, datetime(2024, 4, 30, 12, 0, tzinfo=UTC), None) == 0
    assert _plan(hub, anniversary, datetime(2025, 4, 30, 12, 0, tzinfo=UTC), None) == 1
    assert hub.occurrence(date_key(anniversary.automation_id, old_friend, date(2025, 5, 1)))
    # Renewal on 31 May, 30 days before: 1 May 2026, once.
    assert _plan(hub, renewal, datetime(2026, 4, 30, 12, 0, tzinfo=UTC), None) == 1
    assert hub.occurrence(date_key(renewal.automation_id, renews, date(2026, 5, 1)))
    assert _plan(hub, renewal, datetime(2027, 4, 30, 12, 0, tzinfo=UTC), None) == 0


def test_nothing_due_before_the_rule_was_defined_or_outside_the_window(hub: Hub) -> None:
    hub.customer(birthday="1990-05-10", time_zone="UTC")
    hub.project()
    rule = replace(_rule(hub), updated_at=datetime(2026, 5, 10, 11, 0, tzinfo=UTC))
    assert _plan(hub, rule, datetime(2026, 5, 10, 12, 0, tzinfo=UTC), None) == 0  # 10:00 passed
    assert _plan(hub, rule, datetime(2026, 5, 7, 12, 0, tzinfo=UTC), None) == 0  # too early


# -- the pure parts ------------------------------------------------------------------------


def test_occurs_on() -> None:
    assert occurs_on("1990-03-29", date(2026, 3, 29), 0, yearly=True)
    assert not occurs_on("1990-03-29", date(1990, 3, 29), 0, yearly=True)  # the day itself
    assert occurs_on("--03-29", date(2026, 3, 29), 0, yearly=True)
    assert occurs_on("2026-05-31", date(2026, 5, 1), -30, yearly=False)
    assert not occurs_on("2026-05-31", date(2027, 5, 1), -30, yearly=False)
    assert occurs_on("2000-02-29", date(2027, 2, 28), 0, yearly=True)
    assert not occurs_on("2000-02-29", date(2028, 2, 28), 0, yearly=True)
    assert occurs_on("1990-01-05", date(2026, 1, 1), -4, yearly=True)  # 4 days before


def test_candidate_days_cover_every_zone() -> None:
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    days = candidate_days(now)
    assert days[0] == date(2026, 3, 27)
    assert days[-1] == date(2026, 3, 30)
    assert month_days([date(2027, 2, 28)], 0) == {"02-28", "02-29"}
    assert month_days([date(2028, 2, 28)], 0) == {"02-28"}
