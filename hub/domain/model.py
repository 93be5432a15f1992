"""Aggregates: customer, address claim, conversation and message.

State changes only through ``@event`` methods named in the past tense. Personal fields
(names, addresses, text, subjects, attachment names, metadata) arrive here already encrypted
with the customer's data key: the stored events never hold them in clear.

Uniqueness the store enforces (a second version-1 event for the same id is refused):
- an address belongs to one customer: :class:`AddressClaim` id = keyed hash of the address;
- a provider message is recorded once: :class:`Message` id = hash of (channel, provider id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from hub.domain.ids import message_id, uuid7


class Customer(Aggregate):
    """A person the company talks to, with the addresses known to be theirs."""

    @staticmethod
    def create_id(customer_id: UUID, **_: Any) -> UUID:
        return customer_id

    @event("Registered")
    def __init__(
        self,
        customer_id: UUID,
        display_name: str | None,
        address_id: UUID,
        address: str | None,
        address_kind: str,
        first_seen_at: datetime,
        correlation_id: UUID,
    ) -> None:
        self.display_name = display_name
        self.address_ids: list[UUID] = [address_id]

    @event("IdentityLinked")
    def link_identity(
        self,
        address_id: UUID,
        address: str | None,
        address_kind: str,
        verified: bool,
        reason: str,
        correlation_id: UUID,
    ) -> None:
        if address_id not in self.address_ids:
            self.address_ids.append(address_id)

    @event("ProfileUpdated")
    def update_profile(self, display_name: str | None, correlation_id: UUID) -> None:
        self.display_name = display_name


class AddressClaim(Aggregate):
    """Which customer an address belongs to, and its current conversation per channel."""

    @staticmethod
    def create_id(address_id: UUID, **_: Any) -> UUID:
        return address_id

    @event("Claimed")
    def __init__(
        self,
        address_id: UUID,
        customer_id: UUID,
        conversations: dict[str, UUID],
        correlation_id: UUID,
    ) -> None:
        self.customer_id = customer_id
        self.conversations = dict(conversations)

    @event("ConversationStarted")
    def start_conversation(self, channel: str, conversation_id: UUID, correlation_id: UUID) -> None:
        self.conversations[channel] = conversation_id

    @event("Reassigned")
    def reassign(
        self, customer_id: UUID, conversations: dict[str, UUID], correlation_id: UUID
    ) -> None:
        """The address now belongs to another customer (its owner's data was erased)."""
        self.customer_id = customer_id
        self.conversations = dict(conversations)


class Conversation(Aggregate):
    """A thread of messages with one customer on one channel, and its handling state."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid7()

    @event("Opened")
    def __init__(
        self,
        customer_id: UUID,
        channel: str,
        address_id: UUID,
        address: str | None,
        subject: str | None,
        first_message_id: UUID,
        opened_at: datetime,
        correlation_id: UUID,
    ) -> None:
        self.customer_id = customer_id
        self.channel = channel
        self.address_id = address_id
        self.status = "open"
        self.assignee: str | None = None
        self.last_activity_at = opened_at
        self.message_count = 1

    @event("MessageAdded")
    def add_message(
        self, message_id: UUID, direction: str, occurred_at: datetime, correlation_id: UUID
    ) -> None:
        self.message_count += 1
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("StatusChanged")
    def change_status(
        self,
        status: str,
        previous_status: str,
        actor: str | None,
        reason: str | None,
        customer_id: UUID,
        correlation_id: UUID,
    ) -> None:
        self.status = status

    @event("Assigned")
    def assign(
        self, assignee: str | None, actor: str | None, customer_id: UUID, correlation_id: UUID
    ) -> None:
        self.assignee = assignee

    @event("NoteAdded")
    def add_note(
        self,
        note_id: UUID,
        text: str | None,
        author: str | None,
        customer_id: UUID,
        correlation_id: UUID,
    ) -> None:
        pass  # notes are part of the history, not of the state decisions are made on


class Message(Aggregate):
    """One message in or out, recorded once however often the provider delivers it."""

    @staticmethod
    def create_id(channel: str, provider_message_id: str, **_: Any) -> UUID:
        return message_id(channel, provider_message_id)

    @event("Recorded")
    def __init__(
        self,
        channel: str,
        provider_message_id: str,
        direction: str,
        customer_id: UUID,
        conversation_id: UUID,
        address: str | None,
        occurred_at: datetime,
        text: str | None,
        subject: str | None,
        thread_ref: str | None,
        contact_name: str | None,
        attachments: list[dict[str, Any]],
        metadata: str | None,
        correlation_id: UUID,
    ) -> None:
        self.customer_id = customer_id
        self.conversation_id = conversation_id
        self.delivery_status = "received" if direction == "inbound" else "sent"

    @event("DeliveryUpdated")
    def update_delivery(
        self,
        status: str,
        error_code: str | None,
        error_message: str | None,
        occurred_at: datetime,
        customer_id: UUID,
        conversation_id: UUID,
        correlation_id: UUID,
    ) -> None:
        self.delivery_status = status
