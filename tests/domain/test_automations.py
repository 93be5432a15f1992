"""Rules and campaigns in the event log (``hub.domain.automations``), on SQLite and
PostgreSQL: define, change, enable and disable, delete and list; names unique whatever the
case; each kind's fields checked and completed; a planned campaign kept as it was; nothing
published."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from hub.domain.automations import (
    Definition,
    SegmentMissing,
    check_definition,
)
from hub.domain.errors import Conflict, InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.events.segments import parse_filter
from hub.store import Store
from tests.domain.helpers import stored_count, types

BIRTHDAY = Definition(
    kind="date",
    name="Happy birthday",
    template="birthday",
    channels=("sms", "email"),
    date_field="birthday",
)
RESOLVED = Definition(
    kind="event",
    name="After resolution",
    template="thanks",
    channels=("email",),
    event_type="conversation.status_changed.v1",
    match={"data.status": "resolved"},
    delay=timedelta(days=2),
)


def _campaign(segment_id: object, **changes: object) -> Definition:
    return replace(
        Definition(
            kind="campaign",
            name="Spring sale",
            template="spring",
            channels=("email",),
            purpose="marketing",
            segment_id=segment_id,  # type: ignore[arg-type]
            at=datetime(2026, 4, 1, 9, 0, tzinfo=UTC),
            throttle=10.0,
        ),
        **changes,
    )


def test_define_read_list_change_and_delete(store: Store) -> None:
    automations = store.app.automations
    rule = automations.define(replace(BIRTHDAY, name="  Happy birthday "), actor="ana")
    assert rule.name == "Happy birthday"
    assert rule.definition.local_time == time(10, 0)  # the default
    assert rule.definition.yearly
    assert (rule.state, rule.created_by) == ("active", "ana")
    other = automations.define(RESOLVED, actor="ana")
    assert other.definition.delay == timedelta(days=2)
    assert [a.name for a in automations.all()] == ["After resolution", "Happy birthday"]
    assert [a.name for a in automations.all("date")] == ["Happy birthday"]
    assert automations.get(rule.automation_id) == rule

    disabled, did = automations.change(
        rule.automation_id, replace(rule.definition, enabled=False), actor="ben"
    )
    assert did
    assert (disabled.state, disabled.updated_by) == ("disabled", "ben")
    _, again = automations.change(
        rule.automation_id, replace(rule.definition, enabled=False), actor="ben"
    )
    assert not again  # the same definition records nothing

    assert automations.delete(other.automation_id, actor="ben")
    assert not automations.delete(other.automation_id, actor="ben")
    with pytest.raises(NotFound):
        automations.get(other.automation_id)
    with pytest.raises(NotFound):
        automations.delete(uuid7(), actor="ben")
    assert [a.name for a in automations.all()] == ["Happy birthday"]
    # Its name is free again; nothing of this is published.
    automations.define(replace(RESOLVED, name="AFTER RESOLUTION"), actor="ana")
    assert not any(t.startswith("automation") for t in types(store))


def test_names_are_unique_whatever_the_case(store: Store) -> None:
    automations = store.app.automations
    first = automations.define(BIRTHDAY, actor="ana")
    with pytest.raises(Conflict) as taken:
        automations.define(replace(RESOLVED, name="HAPPY birthday"), actor="ana")
    assert taken.value.code == "automation_name_taken"
    second = automations.define(RESOLVED, actor="ana")
    with pytest.raises(Conflict):
        automations.change(
            second.automation_id, replace(RESOLVED, name="happy Birthday"), actor="ana"
        )
    renamed, _ = automations.change(
        first.automation_id, replace(BIRTHDAY, name="Birthdays"), actor="ana"
    )
    assert renamed.name == "Birthdays"
    automations.change(second.automation_id, replace(RESOLVED, name="Happy birthday"), actor="a")


def test_a_rule_keeps_its_kind(store: Store) -> None:
    rule = store.app.automations.define(BIRTHDAY, actor="ana")
    with pytest.raises(InvalidCommand):
        store.app.automations.change(
            rule.automation_id, replace(RESOLVED, name=BIRTHDAY.name), actor="ana"
        )


def test_campaigns_need_a_segment_that_exists_and_keep_their_plan(store: Store) -> None:
    automations = store.app.automations
    with pytest.raises(SegmentMissing):
        automations.define(_campaign(uuid7()), actor="ana")
    segment = store.app.segments.define("VIP", parse_filter({"tag": "vip"}), actor="ana")
    campaign = automations.define(_campaign(segment.segment_id), actor="ana")
    assert campaign.state == "scheduled"
    at = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    assert automations.mark_planned(campaign.automation_id, 12, at)
    assert not automations.mark_planned(campaign.automation_id, 13, at)
    planned = automations.get(campaign.automation_id)
    assert (planned.state, planned.planned, planned.planned_at) == ("planned", 12, at)
    with pytest.raises(Conflict) as refused:
        automations.change(
            campaign.automation_id, replace(campaign.definition, throttle=5.0), actor="ana"
        )
    assert refused.value.code == "campaign_planned"
    # Disabling it still works (it stays planned: its occurrences are cancelled apart).
    off, did = automations.change(
        campaign.automation_id, replace(campaign.definition, enabled=False), actor="ana"
    )
    assert did
    assert not off.definition.enabled
    before = stored_count(store)
    automations.change(
        campaign.automation_id, replace(campaign.definition, enabled=False), actor="ana"
    )
    assert stored_count(store) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"kind": "weekly"}, "kind"),
        ({"template": ""}, "template"),
        ({"channels": ()}, "channels"),
        ({"channels": ("sms", "sms")}, "channels"),
        ({"channels": ("fax",)}, "channels"),
        ({"channels": ("voice",)}, "channels"),
        ({"purpose": "spam"}, "purpose"),
        ({"date_field": "wedding"}, "date_field"),
        ({"date_field": "attributes.Bad Key"}, "date_field"),
        ({"offset_days": 400}, "offset_days"),
    ],
)
def test_date_rules_are_checked(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_definition(replace(BIRTHDAY, **changes))  # type: ignore[arg-type]
    assert refused.value.details["field"] == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_type": "interaction.queued.v1"}, "event_type"),  # its own sends: a loop
        ({"event_type": "scheduled_message.queued.v1"}, "event_type"),
        ({"event_type": None}, "event_type"),
        ({"match": {"status": "resolved"}}, "match"),
        ({"match": {"data.status": ["resolved"]}}, "match"),
        ({"match": {f"data.f{n}": n for n in range(11)}}, "match"),
        ({"delay": timedelta(seconds=-1)}, "delay"),
        ({"delay": timedelta(days=367)}, "delay"),
    ],
)
def test_event_rules_are_checked(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_definition(replace(RESOLVED, **changes))  # type: ignore[arg-type]
    assert refused.value.details["field"] == field


def test_campaigns_are_checked() -> None:
    segment = uuid7()
    with pytest.raises(InvalidCommand):
        check_definition(_campaign(None))
    with pytest.raises(InvalidCommand):  # both a time and a date
        check_definition(_campaign(segment, on=date(2026, 4, 1)))
    with pytest.raises(InvalidCommand):  # neither
        check_definition(_campaign(segment, at=None))
    with pytest.raises(InvalidCommand):
        check_definition(_campaign(segment, at=datetime(2026, 4, 1, 9, 0)))
    with pytest.raises(InvalidCommand):
        check_definition(_campaign(segment, throttle=0.0))
    local = check_definition(_campaign(segment, at=None, on=date(2026, 4, 1)))
    assert local.local_time == time(10, 0)


def test_each_kind_drops_the_fields_of_the_others() -> None:
    mixed = replace(BIRTHDAY, event_type="note.added.v1", delay=timedelta(hours=1))
    checked = check_definition(mixed)
    assert (checked.event_type, checked.delay) == (None, timedelta(0))
    # A date attribute may be once; birthdays are yearly whatever is asked.
    assert not check_definition(
        replace(BIRTHDAY, date_field="attributes.renewal", yearly=False)
    ).yearly_date
    assert check_definition(replace(BIRTHDAY, yearly=False)).yearly_date
    assert Definition.loaded(checked.stored()) == checked
