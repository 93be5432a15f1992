"""Conversations an agent starts (hub.domain.new_conversation) and the channels a reply or a
new conversation may take (hub.domain.reach): only where an address of the customer reaches."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.domain.errors import CustomerErased, InvalidCommand, NotFound, SendRefused
from hub.domain.inbound import Recorded
from hub.domain.model import Conversation, Message
from hub.domain.policy import Send
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import types
from tests.domain.outbound_support import IN_DOUBT, NEVER_QUIET, NIGHTS, OPEN
from tests.support.store import T0, inbound

PHONE = "phone:+4915112345678"
EMAIL = "email:maria@example.com"
WINDOW = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
KNOWN = ("chat", "email", "sms", "whatsapp", "telegram")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def mail(store: Store) -> Recorded:
    """An email from a customer who also has a phone number (linked by an agent)."""
    [recorded] = store.app.record_interactions(
        [inbound("<m1@example.com>", channel="email", address=EMAIL, subject="Order")]
    )
    store.app.identity.link_address(EMAIL, PHONE, verified=True, reason="agent")
    return recorded


def test_reply_options_of_an_email_offer_no_web_chat(store: Store, mail: Recorded) -> None:
    """The web chat writes only to a chat session: an email address is not one."""
    off = FakeChannels(off={"email": "no email connector is configured"})
    options = store.app.outbound.reply_options(
        mail.conversation_id, policy=off, quiet=NEVER_QUIET, known_channels=KNOWN, now=T0
    )
    assert [(o.channel, o.refusal) for o in options] == [("email", "channel_unavailable")]
    with pytest.raises(InvalidCommand):
        store.app.outbound.reply(
            mail.conversation_id, "hi", author="ann", policy=OPEN, channel="chat"
        )


def test_options_list_the_channels_an_address_reaches(store: Store, mail: Recorded) -> None:
    options = store.app.new_conversations.options(
        mail.customer_id, policy=WINDOW, quiet=NIGHTS, known_channels=KNOWN, now=T0
    )
    assert [(o.channel, o.refusal) for o in options] == [
        ("email", None),
        ("sms", None),
        ("whatsapp", "outside_service_window"),  # the customer never wrote on WhatsApp
    ]


def test_a_new_conversation_is_opened_with_its_message_queued(store: Store, mail: Recorded) -> None:
    start = store.app.new_conversations.start
    first = start(
        mail.customer_id,
        "sms",
        "Your order shipped",
        author="ann",
        policy=OPEN,
        idempotency_key="k1",
        now=T0,
    )
    again = start(
        mail.customer_id,
        "sms",
        "Your order shipped",
        author="ann",
        policy=OPEN,
        idempotency_key="k1",
        now=T0,
    )
    assert not first.duplicate
    assert again == Recorded(first.message_id, mail.customer_id, first.conversation_id, True)
    assert first.conversation_id != mail.conversation_id
    thread = store.app.read(lambda uow: uow.require(Conversation, first.conversation_id, "c"))
    assert (thread.channel, thread.customer_id) == ("sms", mail.customer_id)
    sent = store.app.read(lambda uow: uow.require(Message, first.message_id, "m"))
    assert sent.delivery_status == "queued"
    assert types(store)["interaction.queued.v1"] == 1
    decision = store.app.dispatch.prepare_dispatch(
        first.message_id, OPEN, NEVER_QUIET, T0 + timedelta(minutes=1), IN_DOUBT
    )
    assert isinstance(decision, Send)
    assert (decision.address, decision.text) == (PHONE, "Your order shipped")
    # The customer's answer lands in the conversation the agent started.
    [answer] = store.app.record_interactions(
        [inbound("SM9", address=PHONE, occurred_at=T0 + timedelta(minutes=5))]
    )
    assert answer.conversation_id == first.conversation_id


def test_a_new_conversation_is_refused_as_a_reply_would_be(store: Store, mail: Recorded) -> None:
    start = store.app.new_conversations.start
    with pytest.raises(SendRefused) as refused:
        start(mail.customer_id, "whatsapp", "hi", author="ann", policy=WINDOW, now=T0)
    assert refused.value.code == "outside_service_window"
    store.app.outbound.change_consent(mail.customer_id, "sms", False, actor="ann")
    before = types(store)
    with pytest.raises(SendRefused) as refused:
        start(mail.customer_id, "sms", "hi", author="ann", policy=OPEN, now=T0)
    assert refused.value.code == "consent_revoked"
    with pytest.raises(InvalidCommand):
        start(mail.customer_id, "telegram", "hi", author="ann", policy=OPEN, now=T0)
    with pytest.raises(InvalidCommand):
        start(mail.customer_id, "email", "hi", author="ann", policy=OPEN, now=T0)  # no subject
    assert types(store) == before
    template = {"name": "order_update", "language": "en", "parameters": []}
    assert not start(
        mail.customer_id, "whatsapp", "hi", author="ann", policy=WINDOW, template=template, now=T0
    ).duplicate
    assert not start(
        mail.customer_id, "email", "hi", author="ann", policy=OPEN, subject="Your order", now=T0
    ).duplicate


def test_no_new_conversation_with_an_unknown_or_erased_customer(
    store: Store, mail: Recorded
) -> None:
    start = store.app.new_conversations.start
    with pytest.raises(NotFound):
        start(mail.conversation_id, "sms", "hi", author="ann", policy=OPEN)
    store.cipher._keys.destroy(mail.customer_id)
    store.cipher.forget(mail.customer_id)
    with pytest.raises(CustomerErased):
        start(mail.customer_id, "sms", "hi", author="ann", policy=OPEN)
