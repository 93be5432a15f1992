"""The campaigns' planner (``hub.runtime.automation.campaigns``) on SQLite and PostgreSQL: a
campaign is expanded into one occurrence per member of its segment an hour before its time,
spread by its throttle, then marked planned; a local-time campaign is due at that time in
each member's zone; a campaign whose time passed long ago is marked missed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from hub.domain.automations import Definition
from hub.domain.consent import DEFAULT_RULES
from hub.events.segments import parse_filter
from hub.runtime.automation.campaigns import CampaignPlanner
from hub.runtime.automation.specs import campaign_key
from hub.store import Store
from tests.runtime.automation_support import Hub


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store)


def _planner(hub: Hub) -> CampaignPlanner:
    return CampaignPlanner(hub.app, hub.views.engine, None, DEFAULT_RULES, page_size=2)


def _campaign(hub: Hub, **changes: object) -> Definition:
    vip = hub.app.segments.define("VIP", parse_filter({"tag": "vip"}), actor="ana")
    return replace(
        Definition(
            kind="campaign",
            name="Spring sale",
            template="spring",
            channels=("sms",),
            purpose="marketing",
            segment_id=vip.segment_id,
            at=datetime.now(UTC) + timedelta(hours=3),
            throttle=2.0,
        ),
        **changes,
    )


def test_a_campaign_is_expanded_near_its_time_spread_by_its_throttle(hub: Hub) -> None:
    members = [hub.customer() for _ in range(3)]
    outsider = hub.customer()
    for customer in members:
        hub.app.set_tags(customer, ["vip"], actor="ana")
    hub.project()
    definition = _campaign(hub)
    campaign = hub.app.automations.define(definition, actor="ana")
    assert definition.at is not None
    planner = _planner(hub)
    assert planner.plan(definition.at - timedelta(hours=2)) == 0  # not yet
    assert planner.plan(definition.at - timedelta(minutes=30)) == 3
    assert _planner(hub).plan(definition.at - timedelta(minutes=20)) == 0
    planned = hub.app.automations.get(campaign.automation_id)
    assert (planned.state, planned.planned) == ("planned", 3)
    dues = sorted(
        o.due_at
        for c in members
        if (o := hub.occurrence(campaign_key(campaign.automation_id, c))) is not None
    )
    assert dues == [definition.at + timedelta(seconds=s) for s in (0, 0.5, 1.0)]
    assert not hub.occurrence(campaign_key(campaign.automation_id, outsider))


def test_a_local_time_campaign_is_due_then_in_each_zone(hub: Hub) -> None:
    tokyo = hub.customer(time_zone="Asia/Tokyo")
    vilnius = hub.customer(time_zone="Europe/Vilnius")
    for customer in (tokyo, vilnius):
        hub.app.set_tags(customer, ["vip"], actor="ana")
    hub.project()
    on = date(2030, 10, 1)
    campaign = hub.app.automations.define(
        _campaign(hub, at=None, on=on, local_time=time(9, 30), throttle=None), actor="ana"
    )
    assert _planner(hub).plan(datetime(2030, 9, 30, 19, 0, tzinfo=UTC)) == 2
    due = {c: hub.occurrence(campaign_key(campaign.automation_id, c)) for c in (tokyo, vilnius)}
    assert {c: o.due_at for c, o in due.items() if o} == {
        tokyo: datetime(2030, 10, 1, 0, 30, tzinfo=UTC),
        vilnius: datetime(2030, 10, 1, 6, 30, tzinfo=UTC),
    }


def test_a_campaign_long_past_is_missed_and_a_disabled_one_waits(hub: Hub) -> None:
    hub.app.set_tags(hub.customer(), ["vip"], actor="ana")
    hub.project()
    definition = _campaign(hub)
    assert definition.at is not None
    missed = hub.app.automations.define(definition, actor="ana")
    off = hub.app.automations.define(replace(definition, name="Off", enabled=False), actor="a")
    assert _planner(hub).plan(definition.at + timedelta(days=2)) == 0
    assert hub.app.automations.get(missed.automation_id).state == "missed"
    assert hub.app.automations.get(off.automation_id).state == "disabled"
