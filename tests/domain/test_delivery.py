"""Delivery status reports (HubApplication.update_delivery) on SQLite and PostgreSQL: statuses
only move forward, a failure carries its error, an unknown message is not found."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.domain.errors import InvalidCommand, NotFound
from hub.domain.ids import message_id
from hub.store import Store
from tests.domain.helpers import envelopes, stored_count
from tests.support.store import T0, inbound


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
