"""Recording interactions (hub.domain.inbound) on SQLite and PostgreSQL: who a message is
from (first contact registers a customer, one customer per address) and that it is recorded
once however often the provider delivers it."""

from __future__ import annotations

from datetime import timedelta

from hub.config import Settings
from hub.domain.application import Recorded
from hub.domain.ids import message_id
from hub.store import Store
from tests.domain.helpers import PHONE, envelopes, stored_count, types
from tests.support.store import T0, inbound, opened

# -- identity --------------------------------------------------------------------------------


def test_first_contact_creates_a_customer(store: Store) -> None:
    [result] = store.app.record_interactions([inbound("SM1", contact_name="Alice Example")])
    assert result.duplicate is False
    assert result.message_id == message_id("sms", "SM1")

    created = [e for e in envelopes(store) if e.type == "customer.created.v1"]
    assert len(created) == 1
    assert created[0].customer_id == result.customer_id
    assert created[0].data.display_name == "Alice Example"  # type: ignore[attr-defined]
    assert created[0].data.address == PHONE  # type: ignore[attr-defined]
    assert created[0].occurred_at == T0
    received = [e for e in envelopes(store) if e.type == "interaction.received.v1"]
    assert [e.data.text for e in received] == ["text of SM1"]  # type: ignore[attr-defined]
    assert received[0].data.conversation_id == result.conversation_id  # type: ignore[attr-defined]


def test_sms_then_whatsapp_from_one_phone_is_one_customer_two_conversations(
    store: Store,
) -> None:
    [sms] = store.app.record_interactions([inbound("SM1", channel="sms")])
    [wa] = store.app.record_interactions(
        [inbound("wamid.1", channel="whatsapp", occurred_at=T0 + timedelta(minutes=1))]
    )
    assert wa.customer_id == sms.customer_id
    assert wa.conversation_id != sms.conversation_id
    assert types(store)["customer.created.v1"] == 1
    opened_ = [e for e in envelopes(store) if e.type == "conversation.opened.v1"]
    assert sorted(e.data.channel for e in opened_) == ["sms", "whatsapp"]  # type: ignore[attr-defined]
    assert {e.customer_id for e in opened_} == {sms.customer_id}


def test_different_addresses_are_different_customers(store: Store) -> None:
    results = store.app.record_interactions(
        [
            inbound("SM1", address="phone:+4915112345678"),
            inbound("SM2", address="phone:+4915112345679"),
            inbound("m1", channel="email", address="email:alice@example.com"),
        ]
    )
    assert len({r.customer_id for r in results}) == 3
    assert types(store)["customer.created.v1"] == 3


def test_a_later_name_fills_an_unknown_name_once(store: Store) -> None:
    store.app.record_interactions([inbound("SM1")])
    store.app.record_interactions([inbound("SM2", contact_name="Alice")])
    store.app.record_interactions([inbound("SM3", contact_name="Someone Else")])
    updates = [e for e in envelopes(store) if e.type == "customer.profile_updated.v1"]
    assert [e.data.display_name for e in updates] == ["Alice"]  # type: ignore[attr-defined]


# -- replays ---------------------------------------------------------------------------------


def test_replay_returns_duplicate_with_the_same_ids_and_stores_nothing(store: Store) -> None:
    item = inbound("SM1", contact_name="Alice")
    [first] = store.app.record_interactions([item])
    before = stored_count(store)

    [again] = store.app.record_interactions([item])
    [changed_text] = store.app.record_interactions([inbound("SM1", text="other text")])

    for replay in (again, changed_text):
        assert replay == Recorded(
            first.message_id, first.customer_id, first.conversation_id, duplicate=True
        )
    assert stored_count(store) == before
    assert types(store)["interaction.received.v1"] == 1


def test_replay_is_recognised_by_a_fresh_process(settings: Settings, store: Store) -> None:
    [first] = store.app.record_interactions([inbound("SM1")])
    before = stored_count(store)
    with opened(settings) as other:
        [again] = other.app.record_interactions([inbound("SM1")])
    assert again.duplicate is True
    assert (again.customer_id, again.conversation_id) == (first.customer_id, first.conversation_id)
    assert stored_count(store) == before


def test_same_provider_id_on_another_channel_is_another_message(store: Store) -> None:
    [sms] = store.app.record_interactions([inbound("42", channel="sms")])
    [wa] = store.app.record_interactions([inbound("42", channel="whatsapp")])
    assert wa.duplicate is False
    assert wa.message_id != sms.message_id


def test_batch_with_the_same_provider_id_twice_records_it_once(store: Store) -> None:
    results = store.app.record_interactions(
        [inbound("SM1"), inbound("SM2"), inbound("SM1"), inbound("SM2", text="retry")]
    )
    assert [r.duplicate for r in results] == [False, False, True, True]
    assert results[2].message_id == results[0].message_id
    assert results[2].customer_id == results[0].customer_id
    assert results[2].conversation_id == results[0].conversation_id
    assert types(store)["interaction.received.v1"] == 2
    assert types(store)["customer.created.v1"] == 1


def test_empty_batch_records_nothing(store: Store) -> None:
    assert store.app.record_interactions([]) == []
    assert stored_count(store) == 0
