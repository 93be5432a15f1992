"""Service levels in the event log (``hub.domain.service_levels``), on SQLite and PostgreSQL:
what a policy may say (the field each refusal names), which policy a conversation falls
under (priority, then name; channels, tags and segments), calendars and policies saved, read
and deleted through the application, a calendar in use kept, a policy naming a missing
calendar or segment refused, the definitions carrying the filters of the segments policies
name (read again when one changes), the same definition again recording nothing, and a
breach recorded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from hub.domain.errors import Conflict, InvalidCommand, NotFound
from hub.domain.service_levels import (
    BOOK_ID,
    BreachSpec,
    Definitions,
    SegmentMissing,
    ServiceBook,
    ServiceLevelCommands,
    SlaBreach,
    breach_id,
    check_name,
    check_policy,
)
from hub.events.segments import parse_filter
from hub.store import Store
from tests.domain.helpers import stored_count, types
from tests.support.store import T0, inbound

NINE_TO_FIVE = {
    "time_zone": "Europe/Vilnius",
    "hours": {d: [{"start": "09:00", "end": "17:00"}] for d in ("monday", "friday")},
}


def policy(**extra: Any) -> dict[str, Any]:
    return {"first_response_minutes": 60} | extra


# -- what a policy may say -----------------------------------------------------------------


SEGMENT_A = "0190f1c2-0000-7000-8000-00000000000a"
SEGMENT_B = "0190f1c2-0000-7000-8000-00000000000b"


def test_a_policy_is_stored_in_its_canonical_form() -> None:
    assert check_policy(
        {
            "first_response_minutes": 60,
            "resolution_minutes": 2880,
            "channels": ["sms", "email", "sms"],
            "tags": [" vip", "gold", "vip"],
            "segments": [SEGMENT_B.upper(), SEGMENT_A, SEGMENT_B],
            "description": "  VIP  ",
        }
    ) == {
        "first_response_minutes": 60,
        "next_response_minutes": None,
        "resolution_minutes": 2880,
        "calendar": None,
        "channels": ["email", "sms"],
        "tags": ["gold", "vip"],
        "segments": [SEGMENT_A, SEGMENT_B],
        "priority": 100,
        "description": "VIP",
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "first_response_minutes"),
        ({"first_response_minutes": None, "resolution_minutes": None}, "first_response_minutes"),
        (policy(first_response_minutes=0), "first_response_minutes"),
        (policy(first_response_minutes=366 * 24 * 60 + 1), "first_response_minutes"),
        (policy(first_response_minutes=True), "first_response_minutes"),
        (policy(first_response_minutes=1.5), "first_response_minutes"),
        (policy(next_response_minutes="60"), "next_response_minutes"),
        (policy(resolution_minutes=-1), "resolution_minutes"),
        (policy(calendar=7), "calendar"),
        (policy(channels=["fax"]), "channels"),
        (policy(channels="sms"), "channels"),
        (policy(tags="vip"), "tags"),
        (policy(tags=[1]), "tags"),
        (policy(tags=["x"] * 51), "tags"),
        (policy(tags=["a\x00b"]), "tags"),
        (policy(tags=["x" * 101]), "tags"),
        (policy(segments=SEGMENT_A), "segments"),
        (policy(segments=[7]), "segments"),
        (policy(segments=["not-an-id"]), "segments"),
        (policy(segments=[str(uuid4()) for _ in range(21)]), "segments"),
        (policy(priority=-1), "priority"),
        (policy(priority=10_001), "priority"),
        (policy(priority=False), "priority"),
        (policy(description=5), "description"),
        (policy(description="\ud800"), "description"),
        (policy(description="x" * 501), "description"),
        (policy(colour="red"), "colour"),
    ],
)
def test_what_a_policy_may_not_say_names_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_policy(raw)
    assert refused.value.details == {"field": field}


def test_a_calendar_that_is_not_a_name_is_refused_on_calendar() -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_policy(policy(calendar="no spaces"))
    assert refused.value.details == {"field": "calendar"}


def test_channels_that_are_not_text_are_refused_on_channels() -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_policy(policy(channels=[["sms"]]))
    assert refused.value.details == {"field": "channels"}


def test_a_blank_tag_is_refused_or_dropped() -> None:
    assert check_policy(policy(tags=["  ", "vip"]))["tags"] == ["vip"]


@pytest.mark.parametrize("name", ["", "-x", "a b", "ä", "x" * 65, "a/b", "a\nb"])
def test_a_name_goes_in_a_url(name: str) -> None:
    with pytest.raises(InvalidCommand):
        check_name(name, "calendar")
    assert check_name("office.vilnius_2-b", "calendar") == "office.vilnius_2-b"


# -- which policy ----------------------------------------------------------------------------


def test_a_conversation_falls_under_the_first_policy_that_covers_it(store: Store) -> None:
    levels = store.app.service_levels
    levels.save_policy("zz-everyone", policy(priority=100), actor=None)
    levels.save_policy("b-email", policy(priority=10, channels=["email"]), actor=None)
    levels.save_policy("a-email-too", policy(priority=10, channels=["email"]), actor=None)
    levels.save_policy("vip", policy(priority=1, tags=["vip", "gold"]), actor=None)
    levels.save_policy("vip-sms", policy(priority=0, tags=["vip"], channels=["sms"]), actor=None)
    found = levels.definitions()

    assert found.policy_for("sms", []) == "zz-everyone"
    assert found.policy_for("email", []) == "a-email-too"  # same priority: by name
    assert found.policy_for("email", ["gold"]) == "vip"
    assert found.policy_for("sms", ["vip", "other"]) == "vip-sms"
    assert found.policy_for("chat", ["VIP"]) == "zz-everyone"  # tags match exactly
    assert [p.name for p in found.policies] == [
        "vip-sms",
        "vip",
        "a-email-too",
        "b-email",
        "zz-everyone",
    ]
    assert Definitions.of(None).policy_for("sms", ["vip"]) is None


def test_a_policy_naming_segments_covers_customers_in_one_of_them() -> None:
    a, b, other = UUID(SEGMENT_A), UUID(SEGMENT_B), uuid4()
    book = ServiceBook()
    at = datetime(2024, 5, 1, tzinfo=UTC)
    book.save_policy(
        name="key-accounts",
        definition=check_policy(policy(priority=1, segments=[SEGMENT_A, SEGMENT_B])),
        actor=None,
        changed_at=at,
    )
    book.save_policy(
        name="key-sms",
        definition=check_policy(policy(priority=0, segments=[SEGMENT_A], channels=["sms"])),
        actor=None,
        changed_at=at,
    )
    book.save_policy(
        name="vip-in-b",
        definition=check_policy(policy(priority=0, segments=[SEGMENT_B], tags=["vip"])),
        actor=None,
        changed_at=at,
    )
    book.save_policy(name="standard", definition=check_policy(policy()), actor=None, changed_at=at)
    tree = parse_filter({"tag": "key"})
    found = Definitions.of(book, {a: tree, b: tree, other: tree})

    assert found.segment_filters == {a: tree, b: tree}  # only those the policies name
    assert found.granted_by_contact == frozenset({"service"})
    assert found.policy_for("email", []) == "standard"
    assert found.policy_for("email", [], []) == "standard"
    assert found.policy_for("email", [], [other]) == "standard"
    assert found.policy_for("email", [], [b]) == "key-accounts"
    assert found.policy_for("sms", [], [a]) == "key-sms"
    assert found.policy_for("sms", [], [b]) == "key-accounts"
    assert found.policy_for("email", ["vip"], [a, b]) == "vip-in-b"  # tags and segments
    assert found.policy_for("email", ["vip"], [a]) == "key-accounts"


def test_a_policy_naming_a_missing_or_deleted_segment_is_refused(store: Store) -> None:
    levels = store.app.service_levels
    segment = store.app.segments.define("Key accounts", parse_filter({"tag": "key"}), actor=None)
    gone = store.app.segments.define("Gone", parse_filter({"tag": "gone"}), actor=None)
    store.app.segments.delete(gone.segment_id, actor=None)
    for missing in (str(uuid4()), str(gone.segment_id)):
        with pytest.raises(SegmentMissing) as refused:
            levels.save_policy(
                "key", policy(segments=[str(segment.segment_id), missing]), actor=None
            )
        assert refused.value.code == "segment_missing"
        assert refused.value.status == 422
        assert refused.value.details == {"field": "segments", "segment_id": missing}
    assert levels.policies() == []

    saved, _ = levels.save_policy("key", policy(segments=[str(segment.segment_id)]), actor=None)
    assert saved.definition["segments"] == [str(segment.segment_id)]


def test_the_definitions_carry_the_filters_of_the_segments_policies_name(store: Store) -> None:
    app = store.app
    levels = ServiceLevelCommands(app.runner, max_age=0)  # reads the store at every call
    key = app.segments.define("Key", parse_filter({"tag": "key"}), actor=None)
    app.segments.define("Unused", parse_filter({"tag": "unused"}), actor=None)
    assert levels.definitions().segment_filters == {}  # no policy names one
    levels.save_policy("key", policy(segments=[str(key.segment_id)]), actor=None)
    assert levels.definitions().segment_filters == {key.segment_id: parse_filter({"tag": "key"})}

    # a changed filter is read again with the book (its version is part of the key)
    app.segments.change(key.segment_id, "Key", parse_filter({"tag": "gold"}), actor=None)
    found = levels.definitions()
    assert found.segment_filters == {key.segment_id: parse_filter({"tag": "gold"})}
    assert levels.definitions() is found  # nothing changed: not built again

    # a deleted segment matches nobody: the policy stays, covering no conversation
    app.segments.delete(key.segment_id, actor=None)
    gone = levels.definitions()
    assert gone.segment_filters == {}
    assert [p.name for p in gone.policies] == ["key"]
    assert gone.policy_for("sms", []) is None


def test_targets_count_in_the_policy_calendar_or_the_default_one(store: Store) -> None:
    levels = store.app.service_levels
    levels.save_calendar("office", NINE_TO_FIVE, actor="ana")
    levels.save_policy("office", policy(calendar="office"), actor="ana")
    levels.save_policy("always", policy(tags=["night"], priority=1), actor="ana")
    friday_evening = datetime(2024, 5, 3, 16, 30, tzinfo=UTC)  # 19:30 in Vilnius
    found = levels.definitions()

    assert found.due("office", "first_response", friday_evening) == datetime(
        2024, 5, 6, 7, 0, tzinfo=UTC
    )  # Monday 10:00 in Vilnius
    assert found.due("always", "first_response", friday_evening) == friday_evening + timedelta(
        hours=1
    )
    assert found.due("office", "resolution", friday_evening) is None  # no such target
    assert found.due(None, "first_response", friday_evening) is None
    assert found.business_seconds(None, friday_evening, friday_evening + timedelta(hours=2)) == (
        7200
    )
    levels.save_calendar("default", NINE_TO_FIVE, actor="ana")
    found = levels.definitions()
    assert found.business_seconds(None, friday_evening, friday_evening + timedelta(hours=2)) == 0
    assert found.due("always", "first_response", friday_evening) == datetime(
        2024, 5, 6, 7, 0, tzinfo=UTC
    )  # null calendar: the default one


def test_the_worked_example_of_docs_analytics(store: Store) -> None:
    """docs/analytics.md, "A worked example", with its dates."""
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday")
    office = {
        "time_zone": "Europe/Vilnius",
        "hours": {d: [{"start": "09:00", "end": "17:00"}] for d in weekdays},
        "holidays": {"country": "LT"},
    }
    levels = store.app.service_levels
    levels.save_calendar("office", office, actor="ana")
    targets = {"first_response_minutes": 60, "resolution_minutes": 960}
    levels.save_policy("standard", policy(calendar="office", **targets), actor="ana")
    found = levels.definitions()
    vilnius = ZoneInfo("Europe/Vilnius")
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=vilnius)
    monday = datetime(2026, 11, 30, 9, 30, tzinfo=vilnius)

    assert found.due("standard", "first_response", friday) == monday
    assert found.business_seconds("standard", friday, monday) == 3600
    assert (monday - friday) == timedelta(hours=65)
    assert found.due("standard", "resolution", friday) == datetime(
        2026, 12, 1, 16, 30, tzinfo=vilnius
    )  # Tuesday
    resolved = datetime(2026, 12, 2, 10, 0, tzinfo=vilnius)  # Wednesday
    assert found.business_seconds("standard", friday, resolved) == 17.5 * 3600


# -- saving and deleting -------------------------------------------------------------------


def test_calendars_and_policies_are_saved_read_and_deleted(store: Store) -> None:
    levels = store.app.service_levels
    saved, created = levels.save_calendar("office", NINE_TO_FIVE, actor="ana")
    assert (saved.name, created, saved.actor) == ("office", True, "ana")
    assert saved.definition["hours"]["tuesday"] == []
    assert saved.definition["closed_dates"] == []
    changed = NINE_TO_FIVE | {"closed_dates": ["2024-12-24"]}
    again, created = levels.save_calendar("office", changed, actor="ben")
    assert (created, again.actor, again.definition["closed_dates"]) == (
        False,
        "ben",
        ["2024-12-24"],
    )
    assert levels.calendar("office") == again
    levels.save_calendar("Annex", NINE_TO_FIVE, actor=None)
    assert [c.name for c in levels.calendars()] == ["Annex", "office"]

    p, created = levels.save_policy("vip", policy(calendar="office"), actor="ana")
    assert (created, p.definition["calendar"]) == (True, "office")
    assert [x.name for x in levels.policies()] == ["vip"]
    assert levels.policy("vip") == p

    with pytest.raises(Conflict) as in_use:
        levels.delete_calendar("office", actor="ana")
    assert in_use.value.code == "calendar_in_use"
    assert in_use.value.details == {"policies": ["vip"]}
    assert levels.calendar("office") == again

    levels.delete_policy("vip", actor="ana")
    levels.delete_calendar("office", actor="ana")
    assert [c.name for c in levels.calendars()] == ["Annex"]
    assert levels.policies() == []
    for read in (
        lambda: levels.calendar("office"),
        lambda: levels.policy("vip"),
        lambda: levels.delete_calendar("office", actor=None),
        lambda: levels.delete_policy("vip", actor=None),
    ):
        with pytest.raises(NotFound):
            read()
    # the book's events are the company's definitions: internal, never published
    assert not [t for t in types(store) if "calendar" in t or "polic" in t]


def test_a_policy_naming_a_missing_calendar_is_refused(store: Store) -> None:
    levels = store.app.service_levels
    with pytest.raises(InvalidCommand) as refused:
        levels.save_policy("vip", policy(calendar="office"), actor=None)
    assert refused.value.details == {"field": "calendar"}
    assert levels.policies() == []
    with pytest.raises(InvalidCommand):
        levels.save_calendar("office", NINE_TO_FIVE | {"time_zone": "Mars/Olympus"}, actor=None)
    with pytest.raises(InvalidCommand):
        levels.save_policy("bad name", policy(), actor=None)
    assert levels.calendars() == []


def test_the_same_definition_again_records_nothing(store: Store) -> None:
    levels = store.app.service_levels
    levels.save_calendar("office", NINE_TO_FIVE, actor="ana")
    levels.save_policy("vip", policy(calendar="office", tags=["vip"]), actor="ana")
    book = store.app.repository.get(BOOK_ID)
    assert isinstance(book, ServiceBook)
    before, version = stored_count(store), book.version
    first = levels.definitions()

    # the same definitions, spelled otherwise: the canonical forms are equal
    spelled = NINE_TO_FIVE | {"closed_dates": [], "holidays": None}
    again, created = levels.save_calendar("office", spelled, actor="ben")
    assert (created, again.actor) == (False, "ana")
    _, created = levels.save_policy(
        "vip", policy(calendar="office", tags=["vip", " vip"]), actor="ben"
    )
    assert created is False

    assert stored_count(store) == before
    assert store.app.repository.get(BOOK_ID).version == version
    assert levels.definitions() is first  # not built again


# -- breaches ------------------------------------------------------------------------------


def test_a_breach_is_recorded_once(store: Store) -> None:
    [m] = store.app.record_interactions([inbound("SM1", occurred_at=T0)])
    spec = BreachSpec(
        conversation_id=m.conversation_id,
        customer_id=m.customer_id,
        target="first_response",
        clock_started_at=T0,
        policy="standard",
        due_at=T0 + timedelta(hours=1),
        channel="sms",
    )
    levels = store.app.service_levels
    assert levels.record_breaches([spec]) == 1
    before = stored_count(store)
    assert levels.record_breaches([spec]) == 0
    assert stored_count(store) == before
    assert types(store)["conversation.sla_breached.v1"] == 1

    breach = store.app.repository.get(breach_id(m.conversation_id, "first_response", T0))
    assert isinstance(breach, SlaBreach)
    assert (breach.policy, breach.due_at, breach.customer_id) == (
        "standard",
        T0 + timedelta(hours=1),
        m.customer_id,
    )

    # another clock of the same conversation is another breach
    later = T0 + timedelta(hours=3)
    next_spec = BreachSpec(
        **{**_fields(spec), "target": "next_response", "clock_started_at": later}
    )
    assert levels.record_breaches([next_spec, spec, next_spec]) == 1
    assert types(store)["conversation.sla_breached.v1"] == 2


def _fields(spec: BreachSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__slots__}
