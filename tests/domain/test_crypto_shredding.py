"""Crypto-shredding on SQLite and PostgreSQL: stored events hold no personal data in clear,
and destroying a customer's key erases them in every published envelope, in every process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.config import Settings
from hub.events import Attachment
from hub.store import Store
from tests.domain.helpers import envelopes
from tests.support.store import T0, inbound, opened, raw_event_states

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
