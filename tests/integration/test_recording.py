"""Recording interactions on SQLite and PostgreSQL: identity, dedupe, threading, concurrency,
delivery status and crypto-shredding, through hub.store.open_store and HubApplication."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from hub.config import Settings
from hub.domain.application import Recorded
from hub.domain.errors import InvalidCommand, NotFound
from hub.domain.ids import message_id
from hub.events import Attachment, Envelope
from hub.store import Store
from tests.support.store import T0, SettingsFactory, inbound, opened, raw_event_states

PHONE = "phone:+4915112345678"


def envelopes(store: Store) -> list[Envelope]:
    found, _ = store.read_envelopes(0, 100_000)
    return found


def types(store: Store) -> Counter[str]:
    return Counter(e.type for e in envelopes(store))


def stored_count(store: Store) -> int:
    return store.app.recorder.max_notification_id() or 0


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


# -- threading -------------------------------------------------------------------------------


def test_non_email_threading_follows_the_conversation_window(
    make_settings: SettingsFactory, backend: str
) -> None:
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        record = store.app.record_interactions
        [first] = record([inbound("SM1", occurred_at=T0)])
        [within] = record([inbound("SM2", occurred_at=T0 + timedelta(minutes=59))])
        # the window counts from the last activity, not from the first message
        [chained] = record([inbound("SM3", occurred_at=T0 + timedelta(minutes=118))])
        [after] = record([inbound("SM4", occurred_at=T0 + timedelta(hours=3, minutes=59))])
        [next_one] = record([inbound("SM5", occurred_at=T0 + timedelta(hours=4))])

        assert within.conversation_id == first.conversation_id
        assert chained.conversation_id == first.conversation_id
        assert after.conversation_id != first.conversation_id
        assert next_one.conversation_id == after.conversation_id
        assert store.app.conversation(first.conversation_id).message_count == 3
        assert store.app.conversation(after.conversation_id).message_count == 2
        assert types(store)["conversation.opened.v1"] == 2


def test_non_email_threading_in_one_batch(make_settings: SettingsFactory, backend: str) -> None:
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        results = store.app.record_interactions(
            [
                inbound("SM1", occurred_at=T0),
                inbound("SM2", occurred_at=T0 + timedelta(minutes=30)),
                inbound("SM3", occurred_at=T0 + timedelta(hours=2)),
            ]
        )
        assert results[1].conversation_id == results[0].conversation_id
        assert results[2].conversation_id != results[0].conversation_id
        assert len({r.customer_id for r in results}) == 1


def _email(pid: str, at_minutes: float, **extra: Any) -> Any:
    return inbound(
        pid,
        channel="email",
        address="email:alice@example.com",
        occurred_at=T0 + timedelta(minutes=at_minutes),
        subject="Order 1234",
        **extra,
    )


def test_email_replies_join_their_thread_even_after_the_window(
    make_settings: SettingsFactory, backend: str
) -> None:
    month = 60 * 24 * 30
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        record = store.app.record_interactions
        [original] = record([_email("<m1@example.com>", 0)])
        [by_thread_ref] = record([_email("<m2@example.com>", month, thread_ref="<m1@example.com>")])
        [by_references] = record(
            [_email("<m3@example.com>", 2 * month, references=("<m1@example.com>",))]
        )
        [unrelated] = record([_email("<m4@example.com>", 2 * month + 1)])
        [newest_ref_wins] = record(
            [
                _email(
                    "<m5@example.com>",
                    2 * month + 2,
                    references=("<m1@example.com>", "<m4@example.com>"),
                )
            ]
        )
        [unknown_ref] = record([_email("<m6@example.com>", 1, thread_ref="<nope@example.com>")])

    assert by_thread_ref.conversation_id == original.conversation_id
    assert by_references.conversation_id == original.conversation_id
    assert unrelated.conversation_id != original.conversation_id
    assert newest_ref_wins.conversation_id == unrelated.conversation_id
    assert unknown_ref.conversation_id not in {
        original.conversation_id,
        unrelated.conversation_id,
    }


def test_email_without_references_opens_a_new_conversation_within_the_window(
    store: Store,
) -> None:
    [first] = store.app.record_interactions([_email("<m1@example.com>", 0)])
    [second] = store.app.record_interactions([_email("<m2@example.com>", 1)])
    assert second.conversation_id != first.conversation_id
    assert second.customer_id == first.customer_id


def test_email_reply_does_not_join_another_customers_thread(store: Store) -> None:
    [alice] = store.app.record_interactions([_email("<m1@example.com>", 0)])
    [bob] = store.app.record_interactions(
        [
            inbound(
                "<m2@example.com>",
                channel="email",
                address="email:bob@example.com",
                thread_ref="<m1@example.com>",
            )
        ]
    )
    assert bob.customer_id != alice.customer_id
    assert bob.conversation_id != alice.conversation_id


def test_inbound_reply_reopens_a_resolved_conversation(store: Store) -> None:
    app = store.app
    [original] = app.record_interactions([_email("<m1@example.com>", 0)])
    assert app.change_status(original.conversation_id, "resolved", "agent-ann") == "resolved"
    assert app.conversation(original.conversation_id).status == "resolved"

    [reply] = app.record_interactions(
        [_email("<m2@example.com>", 60 * 24 * 7, thread_ref="<m1@example.com>")]
    )

    assert reply.conversation_id == original.conversation_id
    conversation = app.conversation(original.conversation_id)
    assert conversation.status == "open"
    assert conversation.message_count == 2
    changes = [
        (e.data.previous_status, e.data.status, e.data.reason, e.data.actor)  # type: ignore[attr-defined]
        for e in envelopes(store)
        if e.type == "conversation.status_changed.v1"
    ]
    assert changes == [
        ("open", "resolved", "agent", "agent-ann"),
        ("resolved", "open", "customer_replied", None),
    ]


def test_outbound_reply_does_not_reopen_a_resolved_conversation(store: Store) -> None:
    app = store.app
    [original] = app.record_interactions([_email("<m1@example.com>", 0)])
    app.change_status(original.conversation_id, "resolved", "agent-ann")
    app.record_interactions(
        [_email("<m2@example.com>", 5, thread_ref="<m1@example.com>", direction="outbound")]
    )
    assert app.conversation(original.conversation_id).status == "resolved"


# -- agent commands ------------------------------------------------------------------------


def test_status_and_assignment_change_only_when_different(store: Store) -> None:
    app = store.app
    [r] = app.record_interactions([inbound("SM1")])
    app.change_status(r.conversation_id, "pending", "ann")
    app.change_status(r.conversation_id, "pending", "ann")
    app.assign(r.conversation_id, "bob", "ann")
    app.assign(r.conversation_id, "bob", "ann")
    app.assign(r.conversation_id, None, "ann")
    counts = types(store)
    assert counts["conversation.status_changed.v1"] == 1
    assert counts["conversation.assigned.v1"] == 2
    assert app.conversation(r.conversation_id).assignee is None
    with pytest.raises(InvalidCommand):
        app.change_status(r.conversation_id, "closed", "ann")


def test_commands_on_unknown_conversations_raise_not_found(store: Store) -> None:
    [r] = store.app.record_interactions([inbound("SM1")])
    unknown = message_id("sms", "nope")
    with pytest.raises(NotFound):
        store.app.add_note(unknown, "text", "ann")
    with pytest.raises(NotFound):
        store.app.change_status(unknown, "resolved", "ann")
    with pytest.raises(NotFound):
        store.app.assign(unknown, "ann", "ann")
    with pytest.raises(NotFound):
        store.app.conversation(r.message_id)  # a message id is not a conversation


# -- two processes ---------------------------------------------------------------------------


def _concurrently(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together; their results in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = actions[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def _race(stores: list[Store], batches: list[list[Any]]) -> list[list[Recorded]]:
    return _concurrently(
        *(partial(s.app.record_interactions, b) for s, b in zip(stores, batches, strict=True))
    )


ROUNDS = 8


def test_two_processes_recording_the_same_new_message(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            item = inbound(f"SM{n}", address=f"phone:+49151000000{n:02d}")
            a, b = (r[0] for r in _race([one, two], [[item], [item]]))
            assert (a.message_id, a.customer_id, a.conversation_id) == (
                b.message_id,
                b.customer_id,
                b.conversation_id,
            )
            assert sorted([a.duplicate, b.duplicate]) == [False, True]
        counts = types(one)
    assert counts["customer.created.v1"] == ROUNDS
    assert counts["conversation.opened.v1"] == ROUNDS
    assert counts["interaction.received.v1"] == ROUNDS


def test_two_processes_first_contact_from_the_same_new_address(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            address = f"phone:+49151000000{n:02d}"
            a, b = (
                r[0]
                for r in _race(
                    [one, two],
                    [[inbound(f"A{n}", address=address)], [inbound(f"B{n}", address=address)]],
                )
            )
            assert a.customer_id == b.customer_id
            assert a.conversation_id == b.conversation_id
            assert a.message_id != b.message_id
            assert not a.duplicate
            assert not b.duplicate
        found = envelopes(one)
    counts = Counter(e.type for e in found)
    assert counts["customer.created.v1"] == ROUNDS
    assert counts["conversation.opened.v1"] == ROUNDS
    assert counts["interaction.received.v1"] == 2 * ROUNDS
    owners = Counter(e.customer_id for e in found if e.type == "interaction.received.v1")
    assert sorted(owners.values()) == [2] * ROUNDS


def test_two_processes_changing_one_conversation_both_take_effect(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            [r] = one.app.record_interactions([inbound(f"SM{n}", address=f"phone:+4915100{n:05d}")])
            two.app.assign(r.conversation_id, None, "ann")  # caches it there, changes nothing
            _concurrently(
                partial(one.app.assign, r.conversation_id, "bob", "ann"),
                partial(two.app.change_status, r.conversation_id, "pending", "ann"),
            )
            for store in (one, two):
                conversation = store.app.conversation(r.conversation_id)
                assert (conversation.assignee, conversation.status) == ("bob", "pending")
        counts = types(one)
    assert counts["conversation.assigned.v1"] == ROUNDS
    assert counts["conversation.status_changed.v1"] == ROUNDS


def test_a_second_process_sees_the_first_ones_writes(settings: Settings, store: Store) -> None:
    [first] = store.app.record_interactions([inbound("SM1")])
    with opened(settings) as other:
        [second] = other.app.record_interactions(
            [inbound("SM2", occurred_at=T0 + timedelta(minutes=1))]
        )
        other.app.change_status(first.conversation_id, "resolved", "ann")
    # the first process has the conversation cached; it must still see the newer events
    assert store.app.conversation(first.conversation_id).status == "resolved"
    assert store.app.conversation(first.conversation_id).message_count == 2
    [third] = store.app.record_interactions([inbound("SM3", occurred_at=T0 + timedelta(minutes=2))])
    assert second.conversation_id == third.conversation_id == first.conversation_id
    assert store.app.conversation(first.conversation_id).message_count == 3
    assert store.app.conversation(first.conversation_id).status == "open"


# -- privacy ---------------------------------------------------------------------------------


def test_stored_events_hold_no_plaintext_personal_data(settings: Settings, store: Store) -> None:
    [r, _] = store.app.record_interactions(
        [
            inbound(
                "SM1",
                text="My PIN is secret and I live at Lindenstrasse 5",
                contact_name="Zoë Quixotic",
                attachments=(
                    Attachment(name="passport-scan.png", content_type="image/png", size=9),
                ),
                metadata={"loyalty_id": "LOYAL-98765"},
            ),
            inbound(
                "<m1@example.com>",
                channel="email",
                address="email:zoe.quixotic@example.com",
                subject="Divorce papers",
                text="Confidential body",
            ),
        ]
    )
    store.app.add_note(r.conversation_id, "Customer sounds upset", "ann")

    states = raw_event_states(settings)
    assert len(states) >= 8
    blob = b"\n".join(states)
    for secret in [
        "Lindenstrasse",
        "PIN is secret",
        "Zoë Quixotic",
        "Quixotic",
        "+4915112345678",
        "4915112345678",
        "zoe.quixotic@example.com",
        "zoe.quixotic",
        "Divorce papers",
        "Confidential body",
        "passport-scan",
        "LOYAL-98765",
        "Customer sounds upset",
    ]:
        assert secret.encode() not in blob, secret
        assert secret.encode("unicode_escape") not in blob, secret
    # while the published events decrypt them
    texts = {e.data.text for e in envelopes(store) if e.type == "interaction.received.v1"}  # type: ignore[attr-defined]
    assert "Confidential body" in texts


# -- delivery status -------------------------------------------------------------------------


def test_delivery_status_moves_forward_only(store: Store) -> None:
    app = store.app
    [r] = app.record_interactions([inbound("SM1", direction="outbound")])
    at = T0 + timedelta(seconds=5)
    before = stored_count(store)

    assert app.update_delivery(r.message_id, "queued", at) == "sent"
    assert app.update_delivery(r.message_id, "sent", at) == "sent"
    assert stored_count(store) == before
    assert app.update_delivery(r.message_id, "delivered", at) == "delivered"
    assert app.update_delivery(r.message_id, "read", at) == "read"
    after_read = stored_count(store)
    assert app.update_delivery(r.message_id, "sent", at) == "read"
    assert app.update_delivery(r.message_id, "delivered", at) == "read"
    assert stored_count(store) == after_read

    updates = [e for e in envelopes(store) if e.type == "interaction.delivery_updated.v1"]
    assert [e.data.status for e in updates] == ["delivered", "read"]  # type: ignore[attr-defined]
    assert {e.data.conversation_id for e in updates} == {r.conversation_id}  # type: ignore[attr-defined]


def test_late_sent_after_delivered_changes_nothing(store: Store) -> None:
    app = store.app
    [r] = app.record_interactions([inbound("SM1")])  # inbound starts as "received"
    at = T0 + timedelta(seconds=5)
    assert app.update_delivery(r.message_id, "delivered", at) == "delivered"
    count = stored_count(store)
    assert app.update_delivery(r.message_id, "sent", at) == "delivered"
    assert stored_count(store) == count


def test_failed_delivery_carries_the_error(store: Store) -> None:
    [r] = store.app.record_interactions([inbound("SM1", direction="outbound")])
    status = store.app.update_delivery(
        r.message_id, "failed", T0, error_code="30007", error_message="Carrier violation"
    )
    assert status == "failed"
    [update] = [e for e in envelopes(store) if e.type == "interaction.delivery_updated.v1"]
    assert update.data.error_code == "30007"  # type: ignore[attr-defined]
    assert update.data.error_message == "Carrier violation"  # type: ignore[attr-defined]
    assert update.occurred_at == T0


def test_delivery_of_an_unknown_message_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.app.update_delivery(message_id("sms", "never-seen"), "delivered", T0)
    with pytest.raises(InvalidCommand):
        store.app.update_delivery(message_id("sms", "never-seen"), "teleported", T0)


# -- crypto-shredding ------------------------------------------------------------------------


def test_destroyed_key_erases_one_customer_in_published_events(store: Store) -> None:
    app = store.app
    [alice, _] = app.record_interactions(
        [
            inbound(
                "SM1",
                contact_name="Alice",
                attachments=(Attachment(name="a.pdf", content_type="application/pdf", size=1),),
                metadata={"k": "v"},
            ),
            inbound("SM2", occurred_at=T0 + timedelta(minutes=1)),
        ]
    )
    [bob] = app.record_interactions(
        [inbound("SM3", address="phone:+4915199999999", contact_name="Bob")]
    )
    app.add_note(alice.conversation_id, "note about Alice", "ann")

    store.cipher._keys.destroy(alice.customer_id)  # type: ignore[attr-defined]
    store.cipher.forget(alice.customer_id)

    found = envelopes(store)
    of_alice = [e for e in found if e.customer_id == alice.customer_id]
    of_bob = [e for e in found if e.customer_id == bob.customer_id]
    assert len(of_alice) >= 5
    assert len(of_bob) >= 3
    assert all(e.erased for e in of_alice)
    assert not any(e.erased for e in of_bob)

    for e in of_alice:
        data: Any = e.data
        if e.type == "interaction.received.v1":
            assert data.text is None
            assert data.address is None
            assert data.contact_name is None
            assert data.metadata == {}
            assert all(a.name == "[erased]" and a.url is None for a in data.attachments)
        elif e.type == "customer.created.v1":
            assert (data.display_name, data.address) == (None, None)
        elif e.type == "note.added.v1":
            assert data.text is None
    bob_data: Any = next(e for e in of_bob if e.type == "interaction.received.v1").data
    assert bob_data.text == "text of SM3"
    assert bob_data.contact_name == "Bob"
    bob_created: Any = next(e for e in of_bob if e.type == "customer.created.v1").data
    assert bob_created.display_name == "Bob"


def test_erasure_is_seen_by_every_process(settings: Settings, store: Store) -> None:
    [alice] = store.app.record_interactions([inbound("SM1")])
    with opened(settings) as other:
        assert not any(e.erased for e in envelopes(other))  # caches Alice's key
        store.cipher._keys.destroy(alice.customer_id)  # type: ignore[attr-defined]
        with opened(settings) as fresh:
            assert all(e.erased for e in envelopes(fresh))


def test_a_new_message_from_an_erased_customers_address_is_recorded(store: Store) -> None:
    # After erasure the address may write again; that must neither fail the batch (and with it
    # the other customers' messages) nor be stored unreadable or linked to the old data.
    [alice] = store.app.record_interactions([inbound("SM1", text="before erasure")])
    store.cipher._keys.destroy(alice.customer_id)  # type: ignore[attr-defined]
    store.cipher.forget(alice.customer_id)

    results = store.app.record_interactions(
        [
            inbound("SM2", text="after erasure", occurred_at=T0 + timedelta(days=30)),
            inbound("SM3", address="phone:+4915199999999", text="someone else"),
        ]
    )

    assert [r.duplicate for r in results] == [False, False]
    received = {
        e.data.provider_message_id: e  # type: ignore[attr-defined]
        for e in envelopes(store)
        if e.type == "interaction.received.v1"
    }
    assert received["SM1"].erased
    assert received["SM1"].data.text is None  # type: ignore[attr-defined]
    assert received["SM2"].data.text == "after erasure"  # type: ignore[attr-defined]
    assert not received["SM2"].erased
    assert received["SM3"].data.text == "someone else"  # type: ignore[attr-defined]


# -- published envelopes ---------------------------------------------------------------------


def test_envelopes_are_the_same_on_every_read_and_in_every_process(
    settings: Settings, store: Store
) -> None:
    store.app.record_interactions([inbound("SM1", contact_name="Alice"), inbound("SM2")])
    [r] = store.app.record_interactions([inbound("SM3", direction="outbound")])
    store.app.update_delivery(r.message_id, "delivered", T0)
    store.app.add_note(r.conversation_id, "n", "ann")
    first = envelopes(store)
    with opened(settings) as other:
        assert envelopes(other) == first
    assert envelopes(store) == first
    positions = [e.position for e in first]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert len({e.id for e in first}) == len(first)
    assert all(e.id.version == 7 for e in first)
    assert all(e.correlation_id is not None for e in first)


def test_reading_envelopes_in_small_pages_gives_the_same_sequence(store: Store) -> None:
    store.app.record_interactions(
        [inbound(f"SM{n}", address=f"phone:+49151000000{n:02d}") for n in range(6)]
    )
    everything, last = store.read_envelopes(0, 100_000)
    paged: list[Envelope] = []
    after = 0
    while True:
        page, after_next = store.read_envelopes(after, 4)
        if after_next == after:
            break
        paged += page
        after = after_next
    assert paged == everything
    assert after == last == everything[-1].position
    assert store.read_envelopes(last, 10) == ([], last)
