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

from hub.domain.consent import DEFAULT_RULES, ConsentDecision, ConsentRules
from hub.domain.ids import message_id, uuid7

#: Delivery statuses only move forward; a late "sent" never hides a "delivered".
DELIVERY_RANK = {
    "received": 0,
    "accepted": 1,
    "queued": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 4,
}
#: The hub's own code for a send a crash interrupted: any provider report supersedes it.
OUTCOME_UNKNOWN = "outcome_unknown"
#: How a reply's provider id starts until the provider gives one (``hub:<idempotency key>``).
REPLY_PREFIX = "hub:"


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
        source: str | None = None,
    ) -> None:
        """``source``: where the customer came from (``hub.domain.acquisition``), encrypted
        JSON; None when nothing told (and in events stored before sources existed)."""
        self.display_name = display_name
        #: Profile fields an agent set (birthday, time_zone, language, company), encrypted.
        self.profile: dict[str, str] = {}
        #: Custom attribute values by key, each encrypted JSON (``hub.domain.profile``).
        self.attributes: dict[str, str] = {}
        #: Whether an agent set (or cleared) the name: the hub no longer learns one.
        self.name_from_agent = False
        self.address_ids: list[UUID] = [address_id]
        #: "channel:purpose" -> granted; no entry: the customer wrote to us, service allowed.
        self.consent: dict[str, bool] = {}
        #: "channel:purpose" -> the version of the ConsentChanged that decided it (the ledger
        #: entry a dispatch decision names; no entry: the default rule decides).
        self.consent_versions: dict[str, int] = {}
        #: Double opt-in requests by id: channel, purposes, expires_at, and ``state``
        #: (pending, confirmed, cancelled by a later withdrawal). A request grants nothing.
        self.consent_requests: dict[UUID, dict[str, Any]] = {}
        #: The customer this one was merged into (None: it stands on its own), and the ones
        #: merged into this one. A merge moves nothing: each keeps its addresses, messages and
        #: consent, and the views show a group as one customer, so an unmerge is exact.
        self.merged_into: UUID | None = None
        self.verified_address_ids: list[UUID] = []
        #: Agents' labels (encrypted, like every personal field).
        self.tags: list[str] = []
        #: The customer's addresses as recorded (encrypted): what an erasure looks for in
        #: copies that are not keyed by customer (dead letters, chat mailboxes).
        self.addresses: list[str | None] = [address]
        #: Customers merged into this one (the survivor's side; see ``absorb``).
        self.absorbed: list[UUID] = []
        #: When the customer's personal data was erased (None: it was not).
        self.erased_at: datetime | None = None
        #: Customers an agent said are not the same person as this one (never suggested as
        #: its duplicates; see ``dismiss_duplicate``).
        self.not_duplicates: list[UUID] = []

    @event("IdentityLinked")
    def link_identity(
        self,
        address_id: UUID,
        address: str | None,
        address_kind: str,
        verified: bool,
        reason: str,
        correlation_id: UUID,
        actor: str | None = None,
    ) -> None:
        """``reason``: a code (first_contact, chat_visitor...) or an agent's words, sealed
        under the customer's key; ``actor``: the agent who linked it (None: the hub)."""
        if address_id not in self.address_ids:
            self.address_ids.append(address_id)
        self.addresses = [*self.addresses, address]
        if verified and address_id not in self.verified_address_ids:
            self.verified_address_ids.append(address_id)

    @event("ProfileUpdated")
    def update_profile(
        self,
        display_name: str | None,
        correlation_id: UUID,
        changed: list[str] | None = None,
        fields: dict[str, str | None] | None = None,
        attributes: dict[str, str | None] | None = None,
        kinds: dict[str, str] | None = None,
        actor: str | None = None,
    ) -> None:
        """The profile changed: ``display_name`` is the name after the change (encrypted);
        ``changed`` names what changed (profile fields, ``attributes.<key>``); ``fields`` and
        ``attributes`` hold the new values of those (encrypted; None: cleared), ``kinds``
        each attribute's type. ``actor``: the agent, or None when the hub learnt a name from
        a message (events stored before agents edited profiles carry only the name)."""
        self.display_name = display_name
        if fields:
            kept = {k: v for k, v in self.profile.items() if k not in fields}
            self.profile = kept | {k: v for k, v in fields.items() if v is not None}
        if attributes:
            kept = {k: v for k, v in self.attributes.items() if k not in attributes}
            self.attributes = kept | {k: v for k, v in attributes.items() if v is not None}
        if actor is not None and "display_name" in (changed or ()):
            self.name_from_agent = True

    @event("ConsentChanged")
    def change_consent(
        self,
        channel: str,
        purposes: list[str],
        granted: bool,
        reason: str,
        actor: str | None,
        message_id: UUID | None,
        occurred_at: datetime,
        correlation_id: UUID,
        source: str = "",
        evidence: str | None = None,
        request_id: UUID | None = None,
    ) -> None:
        """A line of the consent ledger: a STOP, a START, an unsubscribe, a bounce, an agent.
        ``source``: one of ``hub.domain.consent.SOURCES`` ("" in events stored before sources
        existed: derived from ``reason``); ``evidence``: free text from an agent or a system,
        encrypted; ``request_id``: the double opt-in request this grant confirms."""
        for purpose in purposes:
            self.consent[f"{channel}:{purpose}"] = granted
            self.consent_versions[f"{channel}:{purpose}"] = self.version + 1  # this event's
        for rid, request in self.consent_requests.items():
            if request["state"] != "pending":
                continue
            if rid == request_id:
                request["state"] = "confirmed"
            elif (
                not granted
                and channel == request["channel"]
                and set(purposes) & set(request["purposes"])
            ):
                request["state"] = "cancelled"

    @event("ConsentRequested")
    def request_consent(
        self,
        request_id: UUID,
        channel: str,
        purposes: list[str],
        source: str,
        evidence: str | None,
        actor: str | None,
        requested_at: datetime,
        expires_at: datetime,
        correlation_id: UUID,
    ) -> None:
        """A double opt-in request (internal): an agent or a system granted ``purposes`` on
        ``channel``, which waits for the customer to confirm through a signed link."""
        self.consent_requests[request_id] = {
            "channel": channel,
            "purposes": list(purposes),
            "expires_at": expires_at,
            "state": "pending",
        }

    def consent_decision(
        self, channel: str, purpose: str = "service", rules: ConsentRules = DEFAULT_RULES
    ) -> ConsentDecision:
        """Whether the customer allows (``channel``, ``purpose``) and what decided it: the
        latest ledger line for it (its version), or the default rule (``rules``: service is
        granted by the customer writing to you, any other purpose needs an opt-in). A double
        opt-in request still waiting for the customer is no grant."""
        key = f"{channel}:{purpose}"
        if key in self.consent:
            version = self.consent_versions.get(key)
            return ConsentDecision(self.consent[key], False, "ledger", self.id, version)
        return ConsentDecision(rules.default(purpose), True, rules.rule(purpose))

    def allows(
        self, channel: str, purpose: str = "service", rules: ConsentRules = DEFAULT_RULES
    ) -> bool:
        """Whether a message for ``purpose`` may go to the customer on ``channel`` now."""
        return self.consent_decision(channel, purpose, rules).granted

    @event("TagsChanged")
    def change_tags(
        self,
        tags: list[str],
        added: list[str],
        removed: list[str],
        actor: str | None,
        correlation_id: UUID,
    ) -> None:
        """Agents' labels now ``tags`` (each encrypted); ``added``/``removed`` say what moved."""
        self.tags = list(tags)

    @event("Merged")
    def merge_into(
        self,
        into_customer_id: UUID,
        actor: str | None,
        reason: str,
        caused_by: UUID | None,
        correlation_id: UUID,
    ) -> None:
        """This customer is the same person as ``into_customer_id`` (published)."""
        self.merged_into = into_customer_id

    @event("Unmerged")
    def unmerge(
        self, from_customer_id: UUID, actor: str | None, reason: str, correlation_id: UUID
    ) -> None:
        """The merge was a mistake: this customer stands on its own again (published)."""
        self.merged_into = None

    @event("Absorbed")
    def absorb(self, customer_id: UUID, correlation_id: UUID) -> None:
        """The survivor's side of a merge (internal). Writing it makes two concurrent merges
        of the same pair conflict in the store, so no merge cycle can ever be recorded.
        The survivor remembers whom it absorbed, so an erasure finds the whole group."""
        self.absorbed = [*self.absorbed, customer_id]

    @event("Released")
    def release(self, customer_id: UUID, correlation_id: UUID) -> None:
        """The survivor's side of an unmerge (internal)."""
        self.absorbed = [c for c in self.absorbed if c != customer_id]

    @event("DuplicateDismissed")
    def dismiss_duplicate(
        self, other_customer_id: UUID, actor: str | None, correlation_id: UUID
    ) -> None:
        """An agent said ``other_customer_id`` is a different person (published as
        ``customer.duplicate_dismissed.v1``); written on both customers of the pair."""
        if other_customer_id not in self.not_duplicates:
            self.not_duplicates = [*self.not_duplicates, other_customer_id]

    @event("DuplicateRestored")
    def restore_duplicate(
        self, other_customer_id: UUID, actor: str | None, correlation_id: UUID
    ) -> None:
        """Undo of :meth:`dismiss_duplicate` (published as ``customer.duplicate_restored.v1``)."""
        self.not_duplicates = [c for c in self.not_duplicates if c != other_customer_id]

    @event("Erased")
    def erase(
        self,
        group: list[UUID],
        actor: str | None,
        reason: str,
        erased_at: datetime,
        correlation_id: UUID,
    ) -> None:
        """The customer's personal data was erased (published as ``customer.erased.v1``):
        its data keys are destroyed, so every personal field of every event is unreadable.
        Holds no personal data: the ids of the merge group erased together, who, and the
        reason code."""
        self.erased_at = erased_at


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
        first_direction: str = "inbound",
        first_provider_message_id: str | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.channel = channel
        self.address_id = address_id
        self.address = address  # encrypted: where replies go
        self.subject = subject  # encrypted
        self.status = "open"
        self.assignee: str | None = None
        self.last_activity_at = opened_at
        self.last_inbound_at: datetime | None = None
        #: Provider ids of the thread, oldest first (email References), and the customer's last.
        self.refs: list[str] = []
        self.last_inbound_ref: str | None = None
        self.message_count = 1
        self._saw(first_direction, opened_at, first_provider_message_id)

    def _saw(self, direction: str, occurred_at: datetime, provider_message_id: str | None) -> None:
        inbound = direction == "inbound"
        if inbound and (self.last_inbound_at is None or occurred_at >= self.last_inbound_at):
            self.last_inbound_at = occurred_at
            self.last_inbound_ref = provider_message_id or self.last_inbound_ref
        if provider_message_id:
            self.refs = [*self.refs, provider_message_id][-20:]

    @event("MessageAdded")
    def add_message(
        self,
        message_id: UUID,
        direction: str,
        occurred_at: datetime,
        correlation_id: UUID,
        provider_message_id: str | None = None,
    ) -> None:
        self.message_count += 1
        self.last_activity_at = max(self.last_activity_at, occurred_at)
        self._saw(direction, occurred_at, provider_message_id)

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
        self.channel = channel
        self.direction = direction
        self.address = address  # encrypted, like text and subject
        self.text = text
        self.subject = subject
        self.thread_ref = thread_ref
        self.delivery_status = "received" if direction == "inbound" else "sent"
        self.error_code: str | None = None
        #: Outbound dispatch: None for messages the hub did not send itself.
        self.dispatch: dict[str, Any] | None = None
        self.references: list[str] = []
        self.attempts = 0
        self.in_flight = False
        self.provider_ref: str | None = None

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
        basis: dict[str, Any] | None = None,
    ) -> None:
        """``basis``: when the dispatcher refused the send, what it decided on
        (``hub.domain.lawfulness``); None for providers' reports and older events."""
        self.delivery_status = status
        self.error_code = error_code
        self.in_flight = False  # a provider's report settles a send in doubt

    def report(
        self,
        status: str,
        occurred_at: datetime,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        settle: bool = False,
        basis: dict[str, Any] | None = None,
    ) -> bool:
        """Apply a delivery status if it moves the message forward (or settles it, or
        replaces the hub's own "outcome unknown"); returns whether it changed anything."""
        forward = DELIVERY_RANK.get(status, 0) > DELIVERY_RANK[self.delivery_status]
        if not (settle or forward or self.error_code == OUTCOME_UNKNOWN):
            return False
        self.update_delivery(
            status=status,
            error_code=error_code,
            error_message=error_message,
            occurred_at=occurred_at,
            customer_id=self.customer_id,
            conversation_id=self.conversation_id,
            correlation_id=self.id,
            basis=basis,
        )
        return True

    @event("DispatchRequested")
    def request_dispatch(
        self,
        author: str | None,
        urgent: bool,
        template: dict[str, Any] | None,
        references: list[str],
        customer_id: UUID,
        correlation_id: UUID,
        purpose: str = "service",
        automation: dict[str, Any] | None = None,
        html: str | None = None,
    ) -> None:
        """An agent's reply, recorded before it is sent: the dispatcher takes it from here.
        ``purpose``: what it is sent for, checked against consent at dispatch (``service``
        for replies, and for events stored before purposes existed). ``automation``: for a
        scheduled or automated message, what planned it (``hub.domain.automation``: the
        occurrence, its rule or campaign, the template version); None for an agent's.
        ``html``: an email's HTML alternative (a template's), encrypted and dated like the
        body."""
        self.delivery_status = "queued"
        self.dispatch = {
            "urgent": urgent,
            "template": template,
            "purpose": purpose,
            "automation": automation,
            "html": html,
        }
        self.references = list(references)

    @event("DispatchStarted")
    def start_dispatch(
        self, attempt: int, correlation_id: UUID, basis: dict[str, Any] | None = None
    ) -> None:
        """Written before the provider is called: after a crash, the hub knows a send may
        have happened. ``basis``: what the dispatcher decided on (``hub.domain.lawfulness``;
        None in events stored before it was recorded)."""
        self.attempts = attempt
        self.in_flight = True

    @event("Dispatched")
    def record_dispatched(
        self,
        provider_message_id: str,
        status: str,
        occurred_at: datetime,
        customer_id: UUID,
        conversation_id: UUID,
        correlation_id: UUID,
    ) -> None:
        self.provider_ref = provider_message_id
        self.delivery_status = status
        self.in_flight = False

    @event("DispatchDeferred")
    def defer_dispatch(
        self,
        until: datetime,
        reason: str,
        error_code: str | None,
        error_message: str | None,
        held: bool,
        customer_id: UUID,
        conversation_id: UUID,
        correlation_id: UUID,
        basis: dict[str, Any] | None = None,
    ) -> None:
        """Not sent now: held for quiet hours, or a retryable failure to try again later.
        ``basis``: for a hold, what the dispatcher decided on (``hub.domain.lawfulness``)."""
        self.in_flight = False

    @property
    def settled(self) -> bool:
        """Nothing left for the dispatcher to do."""
        return (
            self.dispatch is None
            or self.provider_ref is not None
            or self.delivery_status
            in (
                "failed",
                "undelivered",
                "delivered",
                "read",
            )
        )


class ProviderRef(Aggregate):
    """The provider's id of a message the hub sent (a Twilio SID, an email Message-ID), so
    status callbacks and replies that quote it find the hub's message. Its id is the one a
    Message with that (channel, provider id) would have: the store keeps them unique."""

    @staticmethod
    def create_id(channel: str, provider_message_id: str, **_: Any) -> UUID:
        return message_id(channel, provider_message_id)

    @event("Registered")
    def __init__(
        self, channel: str, provider_message_id: str, message_id: UUID, correlation_id: UUID
    ) -> None:
        self.message_id = message_id
