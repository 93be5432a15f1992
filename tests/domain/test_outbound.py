"""The agents' outbound commands (hub.domain.outbound), on the commands themselves (no HTTP, no
connector): a reply is refused at once when it may not go out, recorded once per idempotency
key, and goes only where the address can be reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.errors import CustomerErased, InvalidCommand, SendRefused
from hub.domain.inbound import Recorded
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import types
from tests.domain.outbound_support import (
    NIGHTS,
    OPEN,
    message,
    record_sms,
)
from tests.support.store import T0


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here, not the backend."""
    return "sqlite"


@pytest.fixture
def sms(store: Store) -> Recorded:
    return record_sms(store)


# -- replies ---------------------------------------------------------------------------------


def test_a_reply_is_queued_once_per_idempotency_key(store: Store, sms: Recorded) -> None:
    reply = store.app.outbound.reply
    first = reply(sms.conversation_id, "On its way", author="ann", policy=OPEN, idempotency_key="k")
    again = reply(sms.conversation_id, "On its way", author="ann", policy=OPEN, idempotency_key="k")
    assert first.duplicate is False
    assert again == Recorded(first.message_id, sms.customer_id, sms.conversation_id, True)
    assert message(store, first.message_id).delivery_status == "queued"
    assert types(store)["interaction.queued.v1"] == 1


def test_a_reply_goes_only_where_the_address_can_be_reached(store: Store, sms: Recorded) -> None:
    reply = store.app.outbound.reply
    assert not reply(
        sms.conversation_id, "hi", author="ann", policy=OPEN, channel="whatsapp"
    ).duplicate
    with pytest.raises(InvalidCommand):
        reply(sms.conversation_id, "hi", author="ann", policy=OPEN, channel="email")


def test_a_reply_that_may_not_go_out_is_refused_and_not_recorded(
    store: Store, sms: Recorded
) -> None:
    reply = store.app.outbound.reply
    before = types(store)
    off = FakeChannels(off={"sms": "no SMS connector is configured"})
    with pytest.raises(SendRefused) as refused:
        reply(sms.conversation_id, "hi", author="ann", policy=off)
    assert refused.value.code == "channel_unavailable"

    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    late = T0 + timedelta(hours=25)
    with pytest.raises(SendRefused) as refused:
        reply(sms.conversation_id, "hi", author="ann", policy=window, channel="whatsapp", now=late)
    assert refused.value.code == "outside_service_window"
    assert types(store) == before
    template = {"name": "order_update", "language": "en", "parameters": []}
    assert not reply(
        sms.conversation_id,
        "hi",
        author="ann",
        policy=window,
        channel="whatsapp",
        template=template,
        now=late,
    ).duplicate


def test_withdrawn_consent_refuses_replies_on_that_channel(store: Store, sms: Recorded) -> None:
    outbound = store.app.outbound
    outbound.change_consent(sms.customer_id, "sms", False, actor="ann")
    assert outbound.consent_of(sms.customer_id) == {"sms:service": False, "sms:marketing": False}
    with pytest.raises(SendRefused) as refused:
        outbound.reply(sms.conversation_id, "hi", author="ann", policy=OPEN)
    assert refused.value.code == "consent_revoked"
    assert not outbound.reply(
        sms.conversation_id, "hi", author="ann", policy=OPEN, channel="whatsapp"
    ).duplicate


def test_no_reply_to_an_erased_customer(store: Store, sms: Recorded) -> None:
    store.cipher._keys.destroy(sms.customer_id)
    store.cipher.forget(sms.customer_id)
    with pytest.raises(CustomerErased):
        store.app.outbound.reply(sms.conversation_id, "hi", author="ann", policy=OPEN)


def test_reply_options_list_the_channels_of_the_address_with_their_refusals(
    store: Store, sms: Recorded
) -> None:
    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    late = datetime(2024, 5, 2, 21, 30, tzinfo=UTC)  # 23:30 in Berlin, 36 hours after
    options = store.app.outbound.reply_options(
        sms.conversation_id,
        policy=window,
        quiet=NIGHTS,
        known_channels=("email", "whatsapp", "sms", "voice"),
        now=late,
    )
    assert [(o.channel, o.refusal) for o in options] == [
        ("sms", None),
        ("whatsapp", "outside_service_window"),
        ("voice", None),
    ]
    assert {o.held_until for o in options} == {datetime(2024, 5, 3, 6, 0, tzinfo=UTC)}


# -- the dispatcher's decisions --------------------------------------------------------------
