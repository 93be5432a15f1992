"""Where a message to a customer can go: the address of theirs a channel can send to, and the
conversation to continue or open there (new conversations, scheduled messages, reply options)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.crypto import PersonalDataCipher
from hub.domain.model import AddressClaim, Conversation, Customer
from hub.domain.unit_of_work import UnitOfWork
from hub.events import CHANNEL_ADDRESS_KINDS

__all__ = [
    "NOT_OPENED",
    "SEND_ADDRESS_KINDS",
    "Reach",
    "find_reach",
    "open_conversation",
    "reaches",
]

#: The address kinds a channel can send to: those it carries, except that the web chat writes
#: only to a chat session (a visitor's email identifies them; a message to it goes by email).
SEND_ADDRESS_KINDS: dict[str, frozenset[str]] = {
    channel: kinds - {"email"} if channel == "chat" else kinds
    for channel, kinds in CHANNEL_ADDRESS_KINDS.items()
}


def reaches(channel: str, address: str | None) -> bool:
    """Whether ``channel`` can send to ``address`` (``kind:value``)."""
    return (address or "").partition(":")[0] in SEND_ADDRESS_KINDS.get(channel, frozenset())


class _NotOpened:
    """Stands for a conversation not yet opened: the customer never wrote on it (a service
    window is closed)."""

    last_inbound_at: datetime | None = None


#: What the rules (``hub.domain.policy.refusal_of``) see where no conversation exists yet.
NOT_OPENED: Any = _NotOpened()


@dataclass(frozen=True)
class Reach:
    """A customer's address on a channel, its claim (None: the given conversation's own
    address), and the conversation on it to continue, if any."""

    address: str
    claim: AddressClaim | None
    conversation: Conversation | None


def find_reach(
    uow: UnitOfWork,
    cipher: PersonalDataCipher,
    address_id: Callable[[str], UUID],
    customer: Customer,
    channel: str,
    conversation: Conversation | None = None,
) -> Reach | None:
    """The customer's address on ``channel`` and the conversation to continue there (the
    given one when it is on this channel, else the address's current one), or None when no
    address of theirs reaches the channel."""
    cid = customer.id
    if conversation is not None and conversation.channel == channel:
        address = cipher.decrypt(cid, conversation.address) or ""
        if reaches(channel, address):
            return Reach(address, None, conversation)
    for token in reversed(customer.addresses):  # the newest address first
        found = cipher.decrypt(cid, token) if token else None
        if not found or not reaches(channel, found):
            continue
        claim = uow.get(AddressClaim, address_id(found))
        if claim is None or claim.customer_id != cid:
            continue  # the address moved to another customer
        current_id = claim.conversations.get(channel)
        current = uow.get(Conversation, current_id) if current_id else None
        return Reach(found, claim, current)
    return None


def open_conversation(
    uow: UnitOfWork,
    cipher: PersonalDataCipher,
    address_id: Callable[[str], UUID],
    customer_id: UUID,
    channel: str,
    reach: Reach,
    *,
    subject: str | None,
    first_message_id: UUID,
    at: datetime,
) -> Conversation:
    """Open a conversation the hub starts (``first_direction`` outbound) on ``reach``'s
    address; it becomes the address's current one on ``channel``, so the customer's answer
    lands in it. The caller collects the claim and the conversation."""
    thread = Conversation(
        customer_id=customer_id,
        channel=channel,
        address_id=reach.claim.id if reach.claim else address_id(reach.address),
        address=cipher.encrypt(customer_id, reach.address),
        subject=cipher.encrypt_dated(customer_id, subject, at) if subject else None,
        first_message_id=first_message_id,
        opened_at=at,
        correlation_id=first_message_id,
        first_direction="outbound",
    )
    uow.add(thread)
    if reach.claim is not None:
        reach.claim.start_conversation(
            channel=channel, conversation_id=thread.id, correlation_id=first_message_id
        )
    return thread
