"""Agents edit profiles and admins define attributes (hub.domain.profile): merge-patch
semantics, one encrypted event per change, nothing for nothing, merged groups, and the
acquisition source set once at the first contact."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from hub.config import Settings
from hub.domain.errors import Conflict, CustomerErased, NotFound
from hub.domain.lawfulness import lawfulness_in
from hub.domain.model import Message
from hub.domain.policy import Hold, QuietHours, Send
from hub.domain.profile import CATALOGUE_ID, ProfileRejected
from hub.events import CustomerCreated, CustomerProfileUpdated
from hub.events.inbound import InboundSource
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import PHONE, envelopes, stored_count
from tests.support.store import T0, inbound, raw_event_states


def _customer(store: Store, address: str = PHONE, **extra: Any) -> Any:
    [r] = store.app.record_interactions([inbound(f"first-{address}", address=address, **extra)])
    return r.customer_id


def _profile_events(store: Store) -> list[CustomerProfileUpdated]:
    return [e for e in envelopes(store) if isinstance(e, CustomerProfileUpdated)]


def _define_plan(store: Store) -> None:
    store.app.profile.define_attribute("plan", "enum", "Plan", ["free", "gold"], actor="admin")


def test_a_patch_changes_only_what_it_names_and_one_event_says_what(store: Store) -> None:
    customer = _customer(store, contact_name="Ona")
    _define_plan(store)
    state = store.app.profile.update(
        customer,
        {
            "birthday": "--02-29",
            "time_zone": "asia/tokyo",
            "language": "pt-br",
            "company": " Acme ",
        },
        actor="agent-1",
    )
    assert (state.display_name, state.birthday, state.time_zone) == ("Ona", "--02-29", "Asia/Tokyo")
    assert (state.language, state.company) == ("pt-BR", "Acme")
    assert set(state.changed) == {"birthday", "time_zone", "language", "company"}
    [event] = _profile_events(store)
    d = event.data
    assert (d.actor, d.display_name, d.time_zone, d.company) == (
        "agent-1",
        "Ona",
        "Asia/Tokyo",
        "Acme",
    )
    assert set(d.changed) == {"birthday", "time_zone", "language", "company"}

    # absent: unchanged; null: cleared; attributes by key
    state = store.app.profile.update(
        customer, {"company": None, "attributes": {"plan": "gold"}}, actor="agent-2"
    )
    assert (state.company, state.time_zone, state.attributes) == (
        None,
        "Asia/Tokyo",
        {"plan": "gold"},
    )
    last = _profile_events(store)[-1].data
    assert (last.changed, last.company, last.attributes) == (
        ["company", "attributes.plan"],
        None,
        {"plan": "gold"},
    )
    assert last.attribute_kinds == {"plan": "enum"}
    assert last.birthday is None  # not named: not part of this change


def test_the_same_patch_again_records_nothing(store: Store) -> None:
    customer = _customer(store)
    _define_plan(store)
    patch = {"display_name": "Ona", "time_zone": "Europe/Vilnius", "attributes": {"plan": "free"}}
    store.app.profile.update(customer, patch, actor="a")
    before = stored_count(store)
    again = store.app.profile.update(customer, patch | {"company": None}, actor="b")
    assert again.changed == ()
    assert stored_count(store) == before


def test_personal_values_are_encrypted_in_the_store(store: Store, settings: Settings) -> None:
    customer = _customer(store)
    store.app.profile.define_attribute("nickname", "string", "Nickname", actor="admin")
    store.app.profile.update(
        customer,
        {"company": "Zephyrine Widgets", "attributes": {"nickname": "Quokkaface"}},
        actor="agent",
    )
    raw = b"".join(raw_event_states(settings))
    assert b"Zephyrine" not in raw
    assert b"Quokkaface" not in raw


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"birthday": "2023-02-29"}, "invalid_profile", "birthday"),
        ({"birthday": "--13-01"}, "invalid_profile", "birthday"),
        ({"birthday": "1850-01-01"}, "invalid_profile", "birthday"),
        ({"time_zone": "Mars/Olympus"}, "invalid_profile", "time_zone"),
        ({"language": "english please"}, "invalid_profile", "language"),
        ({"company": "x" * 201}, "invalid_profile", "company"),
        ({"display_name": 7}, "invalid_profile", "display_name"),
        ({"nickname": "x"}, "invalid_profile", "nickname"),
        ({"attributes": {"tier": "gold"}}, "unknown_attribute", "attributes.tier"),
        ({"attributes": {"plan": "platinum"}}, "invalid_attribute", "attributes.plan"),
        ({"attributes": {"seats": "12"}}, "invalid_attribute", "attributes.seats"),
        ({"attributes": {"seats": True}}, "invalid_attribute", "attributes.seats"),
        ({"attributes": {"vip": 1}}, "invalid_attribute", "attributes.vip"),
        ({"attributes": {"renewal": "2026-02-30"}}, "invalid_attribute", "attributes.renewal"),
    ],
)
def test_values_the_rules_refuse_record_nothing(
    store: Store, changes: dict[str, Any], code: str, field: str
) -> None:
    customer = _customer(store)
    _define_plan(store)
    store.app.profile.define_attribute("seats", "number", "Seats", actor="admin")
    store.app.profile.define_attribute("vip", "boolean", "VIP", actor="admin")
    store.app.profile.define_attribute("renewal", "date", "Renewal", actor="admin")
    before = stored_count(store)
    with pytest.raises(ProfileRejected) as refused:
        store.app.profile.update(customer, {"company": "Acme", **changes}, actor="a")
    assert (refused.value.code, refused.value.details["field"]) == (code, field)
    assert field in refused.value.message
    assert stored_count(store) == before


def test_attribute_types_are_kept_exactly(store: Store) -> None:
    customer = _customer(store)
    for key, kind in (("seats", "number"), ("vip", "boolean"), ("renewal", "date")):
        store.app.profile.define_attribute(key, kind, key.title(), actor="admin")
    state = store.app.profile.update(
        customer, {"attributes": {"seats": 12, "vip": False, "renewal": "2027-01-31"}}, actor="a"
    )
    assert state.attributes == {"seats": 12, "vip": False, "renewal": "2027-01-31"}
    assert _profile_events(store)[-1].data.attributes == state.attributes
    # "attributes": null clears every one
    cleared = store.app.profile.update(customer, {"attributes": None}, actor="a")
    assert cleared.attributes == {}
    assert set(cleared.changed) == {"attributes.seats", "attributes.vip", "attributes.renewal"}
    store.app.profile.update(customer, {"attributes": state.attributes}, actor="a")
    # 12 -> 12.5 is a change; False -> False is not
    again = store.app.profile.update(
        customer, {"attributes": {"seats": 12.5, "vip": False}}, actor="a"
    )
    assert again.changed == ("attributes.seats",)


def test_an_edit_on_a_merged_customer_goes_to_the_root_and_a_clear_clears_the_group(
    store: Store,
) -> None:
    root = _customer(store, contact_name="Root")
    member = _customer(store, address="email:member@example.com", channel="email")
    store.app.profile.update(member, {"company": "Old Co", "time_zone": "Europe/Riga"}, actor="a")
    store.app.identity.merge(root, member, actor="a", reason="same")
    state = store.app.profile.update(member, {"time_zone": "Asia/Tokyo"}, actor="a")
    assert state.customer_id == root
    assert (state.time_zone, state.company) == ("Asia/Tokyo", "Old Co")  # root wins, else member
    [event] = _profile_events(store)[-1:]
    assert event.customer_id == root

    state = store.app.profile.update(root, {"company": None}, actor="a")
    assert state.company is None
    assert state.changed == ("company",)
    assert _profile_events(store)[-1].customer_id == member  # the member's value went too
    assert store.app.profile.profile(member).company is None


def test_erased_and_unknown_customers_are_refused(store: Store) -> None:
    customer = _customer(store)
    store.app.erasure.erase(customer, actor="admin", reason="test_data")
    with pytest.raises(CustomerErased):
        store.app.profile.update(customer, {"company": "Acme"}, actor="a")
    with pytest.raises(NotFound):
        store.app.profile.update(CATALOGUE_ID, {"company": "Acme"}, actor="a")


def test_a_name_an_agent_cleared_is_not_learnt_again(store: Store) -> None:
    customer = _customer(store, contact_name="Wrong Name")
    store.app.profile.update(customer, {"display_name": None}, actor="a")
    store.app.record_interactions([inbound("second", contact_name="Wrong Name")])
    assert store.app.profile.profile(customer).display_name is None
    # the hub's own learning is still an event without an actor (older hubs' shape)
    other = _customer(store, address="phone:+4915100000001")
    store.app.record_interactions(
        [inbound("named", address="phone:+4915100000001", contact_name="Learnt")]
    )
    learnt = [e for e in _profile_events(store) if e.customer_id == other]
    assert [(e.data.changed, e.data.actor, e.data.display_name) for e in learnt] == [
        (["display_name"], None, "Learnt")
    ]


def test_definitions_keep_their_type_and_the_same_one_records_nothing(store: Store) -> None:
    definition, changed = store.app.profile.define_attribute(
        "plan", "enum", " Plan ", ["free", "gold"], actor="admin"
    )
    assert changed
    assert definition.label == "Plan"
    before = stored_count(store)
    assert store.app.profile.define_attribute(
        "plan", "enum", "Plan", ["free", "gold"], actor="admin"
    ) == (definition, False)
    assert stored_count(store) == before
    store.app.profile.define_attribute("plan", "enum", "Plan", ["free", "gold", "pro"], actor="a")
    with pytest.raises(Conflict) as refused:
        store.app.profile.define_attribute("plan", "string", "Plan", actor="admin")
    assert refused.value.code == "attribute_type_change"
    assert [d.values for d in store.app.profile.attributes()] == [("free", "gold", "pro")]
    for bad in (
        ("Plan", "string", "x", []),
        ("p", "colour", "x", []),
        ("p", "enum", "x", []),
        ("p", "enum", "x", ["a", "a"]),
        ("p", "string", "x", ["a"]),
        ("p", "string", " ", []),
    ):
        with pytest.raises(ProfileRejected) as rejected:
            store.app.profile.define_attribute(*bad, actor="a")
        assert rejected.value.code == "invalid_attribute_definition"
    # attribute definitions are internal: nothing published
    assert not [e for e in envelopes(store) if e.customer_id == CATALOGUE_ID]


def test_the_first_contact_sets_the_source_and_later_ones_never_change_it(store: Store) -> None:
    page = InboundSource(
        via="chat_page",
        source="newsletter",
        campaign="spring",
        referrer="https://blog.example/post",
    )
    [first] = store.app.record_interactions(
        [inbound("c1", channel="chat", address="chat:visitor-1", source=page)]
    )
    store.app.record_interactions(
        [
            inbound(
                "c2",
                channel="chat",
                address="chat:visitor-1",
                occurred_at=T0 + timedelta(minutes=1),
                source=InboundSource(source="other"),
            )
        ]
    )
    [created] = [e for e in envelopes(store) if isinstance(e, CustomerCreated)]
    assert created.customer_id == first.customer_id
    assert created.data.source is not None
    assert created.data.source.model_dump() == {
        "via": "chat_page",
        "source": "newsletter",
        "medium": None,
        "campaign": "spring",
        "referrer": "https://blog.example/post",
        "endpoint": None,
    }


def test_an_endpoint_maps_to_a_source_below_a_told_one(store: Store) -> None:
    store.app.inbound.use_endpoint_sources({"phone:+370 600 00000": "radio-spring"})
    store.app.record_interactions(
        [
            inbound("e1", address="phone:+4915100000002", endpoint="phone:+37060000000"),
            inbound(
                "e2",
                address="phone:+4915100000003",
                endpoint="phone:+37060000000",
                source=InboundSource(source="partner-api"),
            ),
            inbound("e3", address="phone:+4915100000004", endpoint="phone:+37060000001"),
            inbound("e4", address="phone:+4915100000005"),
        ]
    )
    created = [e.data.source for e in envelopes(store) if isinstance(e, CustomerCreated)]
    assert [(s.via, s.source, s.endpoint) if s else None for s in created] == [
        ("endpoint", "radio-spring", "phone:+37060000000"),
        ("api", "partner-api", "phone:+37060000000"),
        ("endpoint", None, "phone:+37060000001"),
        None,
    ]


# -- the time zone an agent set: quiet hours on every channel ----------------------------------

NIGHTS = QuietHours(time(21), time(8), "Europe/London", timedelta(minutes=30))
#: 14:00 UTC: 15:00 in London, 23:00 in Tokyo.
AFTERNOON_IN_LONDON = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
MORNING_IN_TOKYO = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)


def _queued_email_reply(store: Store, address: str) -> tuple[Any, Any]:
    [mail] = store.app.record_interactions(
        [inbound(f"<m@{address}>", channel="email", address=f"email:{address}")]
    )
    reply = store.app.outbound.reply(
        mail.conversation_id, "We are on it", author="ann", policy=FakeChannels()
    )
    return mail.customer_id, reply.message_id


def _decide(store: Store, mid: Any, now: datetime) -> object:
    return store.app.dispatch.prepare_dispatch(
        mid, FakeChannels(), NIGHTS, now, timedelta(minutes=10)
    )


def test_an_email_customer_in_tokyo_gets_a_reply_held_during_tokyos_night(store: Store) -> None:
    customer, mid = _queued_email_reply(store, "kenji@example.jp")
    store.app.profile.update(customer, {"time_zone": "Asia/Tokyo"}, actor="ann")
    assert _decide(store, mid, AFTERNOON_IN_LONDON) == Hold(MORNING_IN_TOKYO)
    # the decision basis names the zone it was taken in (GET /v1/messages/{id}/lawfulness)
    held = lawfulness_in(store.app.events, mid)
    assert held is not None
    assert held.decided is not None
    assert held.decided.quiet_hours is not None
    assert (held.decided.quiet_hours.zone, held.decided.quiet_hours.effect) == (
        "Asia/Tokyo",
        "held",
    )
    # without a zone set, the default (London) decides: mid-afternoon, it goes
    _, other = _queued_email_reply(store, "someone@example.co.uk")
    assert isinstance(_decide(store, other, AFTERNOON_IN_LONDON), Send)


def test_the_groups_zone_decides_for_a_merged_customers_conversation(store: Store) -> None:
    customer, _ = _queued_email_reply(store, "root@example.jp")
    member, mid = _queued_email_reply(store, "member@example.jp")
    store.app.identity.merge(customer, member, actor="ann", reason="same")
    store.app.profile.update(member, {"time_zone": "Asia/Tokyo"}, actor="ann")  # goes to the root
    assert _decide(store, mid, AFTERNOON_IN_LONDON) == Hold(MORNING_IN_TOKYO)
    options = store.app.outbound.reply_options(
        store.app.conversation(
            store.app.read(lambda uow: uow.require(Message, mid, "message")).conversation_id
        ).id,
        policy=FakeChannels(),
        quiet=NIGHTS,
        known_channels=["email"],
        now=AFTERNOON_IN_LONDON,
    )
    assert [o.held_until for o in options] == [MORNING_IN_TOKYO]
