"""The event rules' planner (``hub.runtime.automation.events``) on SQLite and PostgreSQL: an
event that matches schedules one occurrence per rule and event, due its delay after the
event occurred; events before the rule, events that do not match, customers outside the
rule's segment and stale events schedule nothing; rounds and a second planner repeat none."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.automations import Definition
from hub.events.segments import parse_filter
from hub.runtime.automation.events import EventRulePlanner
from hub.runtime.automation.specs import event_key
from hub.store import Store
from tests.domain.helpers import envelopes
from tests.runtime.automation_support import Hub

RESOLVED = Definition(
    kind="event",
    name="After resolution",
    template="thanks",
    channels=("sms",),
    event_type="conversation.status_changed.v1",
    match={"data.status": "resolved"},
    delay=timedelta(days=2),
)
TAGS, STATUS = "customer.tags_changed.v1", "conversation.status_changed.v1"


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store)


def _planner(hub: Hub) -> EventRulePlanner:
    from hub.domain.consent import DEFAULT_RULES

    return EventRulePlanner(hub.store, hub.views.engine, DEFAULT_RULES)


def _conversation(hub: Hub, customer: object) -> object:
    found = [e for e in envelopes(hub.store) if e.type == "conversation.opened.v1"]
    return next(e.data.conversation_id for e in found if e.customer_id == customer)  # type: ignore[attr-defined]


def test_a_matching_event_schedules_one_occurrence_after_its_delay(hub: Hub) -> None:
    before = hub.customer()
    hub.app.change_status(_conversation(hub, before), "resolved", actor="ana")  # type: ignore[arg-type]
    planner = _planner(hub)
    assert planner.plan(datetime.now(UTC)) == 0  # no rule yet: the position moves on
    rule = hub.app.automations.define(RESOLVED, actor="ana")
    customer = hub.customer()
    conversation = _conversation(hub, customer)
    hub.app.change_status(conversation, "pending", actor="ana")  # type: ignore[arg-type]
    hub.app.change_status(conversation, "resolved", actor="ana")  # type: ignore[arg-type]
    now = datetime.now(UTC)
    assert planner.plan(now) == 1
    assert planner.plan(now) == 0
    assert _planner(hub).plan(now) == 0  # a second planner starts where the first was
    (resolved,) = [
        e
        for e in envelopes(hub.store)
        if e.type == "conversation.status_changed.v1"
        and e.customer_id == customer
        and e.data.status == "resolved"  # type: ignore[attr-defined]
    ]
    occurrence = hub.occurrence(event_key(rule.automation_id, resolved.id))
    assert occurrence is not None
    assert occurrence.due_at == resolved.occurred_at + timedelta(days=2)
    assert occurrence.conversation_id == conversation
    assert occurrence.customer_id == customer


def test_the_segment_decides_and_tags_added_trigger(hub: Hub) -> None:
    vip = hub.app.segments.define("VIP", parse_filter({"tag": "vip"}), actor="ana")
    tagged = hub.app.automations.define(
        replace(
            RESOLVED,
            name="Welcome to VIP",
            event_type="customer.tags_changed.v1",
            match={"data.added": "vip"},
            delay=timedelta(0),
        ),
        actor="ana",
    )
    only_vip = hub.app.automations.define(
        replace(RESOLVED, name="VIP resolved", segment_id=vip.segment_id), actor="ana"
    )
    planner = _planner(hub)
    planner.plan(datetime.now(UTC))
    one, two = hub.customer(), hub.customer()
    hub.app.set_tags(one, ["vip"], actor="ana")
    hub.app.set_tags(two, ["regular"], actor="ana")
    for customer in (one, two):
        hub.app.change_status(_conversation(hub, customer), "resolved", actor="ana")  # type: ignore[arg-type]
    hub.project()  # the segment reads the views
    assert planner.plan(datetime.now(UTC)) == 2
    tags = {e.customer_id: e.id for e in envelopes(hub.store) if e.type == TAGS}
    status = {e.customer_id: e.id for e in envelopes(hub.store) if e.type == STATUS}
    assert hub.occurrence(event_key(tagged.automation_id, tags[one]))
    assert not hub.occurrence(event_key(tagged.automation_id, tags[two]))
    assert hub.occurrence(event_key(only_vip.automation_id, status[one]))
    assert not hub.occurrence(event_key(only_vip.automation_id, status[two]))


def test_stale_events_and_disabled_rules_schedule_nothing(hub: Hub) -> None:
    rule = hub.app.automations.define(replace(RESOLVED, delay=timedelta(0)), actor="ana")
    planner = _planner(hub)
    planner.plan(datetime.now(UTC))
    customer = hub.customer()
    hub.app.change_status(_conversation(hub, customer), "resolved", actor="ana")  # type: ignore[arg-type]
    assert planner.plan(datetime.now(UTC) + timedelta(days=3)) == 0  # long past its time
    hub.app.automations.change(
        rule.automation_id, replace(rule.definition, enabled=False), actor="ana"
    )
    other = hub.customer()
    hub.app.change_status(_conversation(hub, other), "resolved", actor="ana")  # type: ignore[arg-type]
    assert planner.plan(datetime.now(UTC)) == 0
