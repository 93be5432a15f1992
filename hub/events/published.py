"""Published domain events: what downstream services read from ``hub.events`` or ``/v1/events``.

Every event is an :class:`Envelope` whose ``type`` names the event and its version
(``interaction.received.v1``) and whose ``data`` holds the event's own fields. Within a version,
changes are additive only; a breaking change is a new versioned type. Decode any event with
:func:`decode_event`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast
from uuid import UUID

from pydantic import AwareDatetime, Field, JsonValue, TypeAdapter

from hub.events.activities import ActivityRecorded
from hub.events.common import (
    Attachment,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    ErasureReason,
)
from hub.events.envelope import Envelope as Envelope
from hub.events.envelope import Published
from hub.events.feedback import FeedbackCommented, FeedbackReceived, FeedbackRequested
from hub.events.scheduled import (
    AutomationRef,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
)
from hub.events.service import ConversationSlaBreached

# -- data models ---------------------------------------------------------------------------


class AcquisitionSource(Published):
    """Where a customer came from, set once at the first contact (docs/profile.md)."""

    via: Literal["chat_page", "api", "endpoint"] = Field(
        description="What told: the chat widget's page (its utm_* parameters and referrer), "
        "the API's `source` field, or the channel endpoint the customer first wrote to "
        "(mapped to a source in settings)."
    )
    source: str | None = Field(default=None, description="utm_source, or the mapped source.")
    medium: str | None = Field(default=None, description="utm_medium, if any.")
    campaign: str | None = Field(default=None, description="utm_campaign, if any.")
    referrer: str | None = Field(
        default=None, description="The page that led to the chat (personal: erased with it)."
    )
    endpoint: str | None = Field(
        default=None,
        description="The company's own address first written to (a number, mailbox or page), "
        "kind:value.",
    )


class CustomerCreatedData(Published):
    display_name: str | None = Field(description="Name as first seen, if any.")
    address: str | None = Field(description="The address of the first contact (kind:value).")
    source: AcquisitionSource | None = Field(
        default=None, description="Where the customer came from, when anything told."
    )


class CustomerIdentityLinkedData(Published):
    address: str | None = Field(description="The linked address (kind:value).")
    address_kind: str = Field(description="email, phone, chat, messenger, instagram, telegram.")
    verified: bool = Field(description="Whether the customer proved control of the address.")
    reason: str = Field(
        description="Why it was linked: first_contact, agent, verification, or an agent's "
        "words; empty once the customer was erased."
    )
    actor: str | None = Field(
        default=None, description="The agent who linked it, or null for the hub itself."
    )


class CustomerMergedData(Published):
    into_customer_id: UUID = Field(
        description="The customer this one was merged into: show them as one from now on."
    )
    actor: str | None = Field(description="The agent who merged, or null for the hub itself.")
    reason: str = Field(
        description="Why: agent, verification (the customer proved an address), or an agent's "
        "words; empty once the customer was erased."
    )
    caused_by: UUID | None = Field(
        default=None, description="The event or command that led to the merge, if any."
    )


class CustomerUnmergedData(Published):
    from_customer_id: UUID = Field(description="The customer it had been merged into.")
    actor: str | None = Field(description="The agent who undid the merge.")
    reason: str = Field(description="Why the merge was undone.")


class CustomerTagsChangedData(Published):
    tags: list[str] = Field(description="Every tag the customer has now, sorted.")
    added: list[str] = Field(description="Tags this change added.")
    removed: list[str] = Field(description="Tags this change removed.")
    actor: str | None = Field(description="The agent who changed them.")


#: The profile fields an agent edits besides custom attributes (``changed`` names them).
ProfileField = Literal["display_name", "birthday", "time_zone", "language", "company"]
#: A custom attribute's value: string, number, boolean, a date (ISO string) or an enum value.
AttributeValue = str | int | float | bool


class CustomerProfileUpdatedData(Published):
    display_name: str | None = Field(
        description="The customer's name after this change (whether or not it changed)."
    )
    changed: list[str] = Field(
        default_factory=list,
        description="What this event changed: profile fields (display_name, birthday, "
        "time_zone, language, company) and `attributes.<key>` for custom attributes. For each "
        "field named, its value below is the new one (null: cleared); the others are null "
        "here and keep their earlier values. Events from before profiles were editable name "
        "only display_name.",
    )
    birthday: str | None = Field(
        default=None, description="YYYY-MM-DD, or --MM-DD when the year is not known."
    )
    time_zone: str | None = Field(default=None, description="IANA time zone, e.g. Europe/Vilnius.")
    language: str | None = Field(default=None, description="BCP 47 language tag, e.g. lt or pt-BR.")
    company: str | None = Field(default=None, description="The company the customer is with.")
    attributes: dict[str, AttributeValue | None] = Field(
        default_factory=dict,
        description="Custom attributes this change set (null: removed), by key "
        "(`GET /v1/attributes` defines them).",
    )
    attribute_kinds: dict[str, Literal["string", "number", "boolean", "date", "enum"]] = Field(
        default_factory=dict,
        description="The type of each attribute in `attributes` as defined when it was set "
        "(a date and an enum value are strings in JSON; this says which).",
    )
    actor: str | None = Field(
        default=None,
        description="Who changed it: an agent, or null for the hub (a name learnt from a message).",
    )


class CustomerDuplicateDismissedData(Published):
    other_customer_id: UUID = Field(
        description="The customer an agent said is not the same person as this one."
    )
    actor: str | None = Field(description="The agent who decided.")


class CustomerDuplicateRestoredData(Published):
    other_customer_id: UUID = Field(
        description='The customer whose "not the same person" decision was undone.'
    )
    actor: str | None = Field(description="The agent who undid it.")


class ConversationOpenedData(Published):
    conversation_id: UUID
    channel: Channel
    address: str | None = Field(description="The customer's address on this conversation.")
    subject: str | None = None
    body_expired: bool = Field(
        default=False,
        description="True when the conversation opened longer ago than the hub's message "
        "retention (HUB_RETENTION__MESSAGE_DAYS): its subject is then null.",
    )


class ConversationStatusChangedData(Published):
    conversation_id: UUID
    status: ConversationStatus
    previous_status: ConversationStatus
    actor: str | None = Field(description="Who changed it: an agent token name, or null.")
    reason: str | None = Field(default=None, description="e.g. customer_replied, agent.")


class ConversationAssignedData(Published):
    conversation_id: UUID
    assignee: str | None = Field(description="Agent now responsible, or null when unassigned.")
    actor: str | None


class InteractionData(Published):
    message_id: UUID = Field(description="Derived from (channel, provider_message_id).")
    conversation_id: UUID
    channel: Channel
    direction: Direction
    address: str | None = Field(description="The customer's address (kind:value).")
    provider_message_id: str
    text: str | None
    subject: str | None = None
    thread_ref: str | None = None
    contact_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    body_expired: bool = Field(
        default=False,
        description="True when the message happened longer ago than the hub's message "
        "retention (HUB_RETENTION__MESSAGE_DAYS): its text, subject, attachments and metadata "
        "are then null or empty, while the fact that it existed stays. A consumer that keeps "
        "bodies should drop them as they age past the same retention.",
    )


class InteractionQueuedData(InteractionData):
    """An agent's message, recorded before it is sent. Its ``provider_message_id`` is the
    hub's own (``hub:<idempotency key>``) until the provider's arrives in
    ``interaction.delivery_updated.v1``."""

    author: str | None = Field(default=None, description="The agent who wrote it.")
    urgent: bool = Field(default=False, description="Not held by quiet hours.")
    automation: AutomationRef | None = Field(
        default=None,
        description="For a scheduled or automated message: what planned it (null for an "
        "agent's reply).",
    )


class InteractionDeliveryUpdatedData(Published):
    message_id: UUID
    conversation_id: UUID
    status: DeliveryStatus
    error_code: str | None = Field(
        default=None,
        description="Why it failed or waits: the provider's code, or the hub's own "
        "(consent_revoked, consent_missing, outside_service_window, channel_unavailable, "
        "outcome_unknown, quiet_hours, retrying).",
    )
    error_message: str | None = None
    provider_message_id: str | None = Field(
        default=None, description="The provider's id, once the provider accepted the message."
    )
    held_until: AwareDatetime | None = Field(
        default=None, description="Quiet hours or a retry: not sent before this time."
    )


#: Where a consent ledger line comes from (``hub.domain.consent.SOURCES`` describes each).
ConsentSource = Literal[
    "keyword",
    "unsubscribe_link",
    "bounce",
    "provider_opt_out",
    "agent",
    "api",
    "import",
    "double_opt_in",
]
#: A consent purpose: ``service``, ``marketing``, or one the hub's operator configured.
ConsentPurposeName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="service, marketing, or a configured purpose (HUB_CONSENT__PURPOSES).",
    ),
]


class CustomerConsentChangedData(Published):
    channel: Channel
    purposes: tuple[ConsentPurposeName, ...]
    granted: bool
    reason: str = Field(
        description="sms_keyword:STOP, list_unsubscribe, bounce, agent, provider:<code>..."
    )
    actor: str | None = Field(description="The agent who changed it, or null.")
    message_id: UUID | None = Field(description="The message that carried it, if any.")
    source: ConsentSource | None = Field(
        default=None,
        description="Where it comes from: keyword (SMS STOP/START), unsubscribe_link, bounce, "
        "provider_opt_out, agent, api, import, double_opt_in (the customer confirmed a "
        "request through the link the hub sent). Null only in envelopes published before "
        "sources existed.",
    )
    evidence: str | None = Field(
        default=None,
        description="Free text an agent or a system gave as evidence (personal data: null "
        "once the customer is erased, like every personal field).",
    )
    request_id: UUID | None = Field(
        default=None, description="The double opt-in request this grant confirms, if any."
    )


class CustomerErasedData(Published):
    customer_ids: tuple[UUID, ...] = Field(
        description="Every customer erased together: the whole merge group, one person."
    )
    actor: str | None = Field(description="Who erased it: an admin token name, or null.")
    reason: ErasureReason = Field(description="Why (a code; never free text).")


class NoteAddedData(Published):
    note_id: UUID
    conversation_id: UUID
    text: str | None
    author: str | None


# -- events --------------------------------------------------------------------------------


class CustomerCreated(Envelope):
    """A customer appeared: the first contact from an address no customer had."""

    type: Literal["customer.created.v1"] = "customer.created.v1"
    data: CustomerCreatedData


class CustomerIdentityLinked(Envelope):
    """An address now belongs to this customer."""

    type: Literal["customer.identity_linked.v1"] = "customer.identity_linked.v1"
    data: CustomerIdentityLinkedData


class CustomerMerged(Envelope):
    """This customer is the same person as ``data.into_customer_id``. Nothing moves: their
    addresses, messages and consent stay theirs, and readers show the two as one. Every later
    event keeps its own ``customer_id``; follow merges to group them."""

    type: Literal["customer.merged.v1"] = "customer.merged.v1"
    data: CustomerMergedData


class CustomerUnmerged(Envelope):
    """A merge was undone: this customer stands on its own again, with everything it had,
    including what arrived while merged."""

    type: Literal["customer.unmerged.v1"] = "customer.unmerged.v1"
    data: CustomerUnmergedData


class CustomerTagsChanged(Envelope):
    """Agents changed the labels of a customer (VIP, wholesale, ...)."""

    type: Literal["customer.tags_changed.v1"] = "customer.tags_changed.v1"
    data: CustomerTagsChangedData


class CustomerProfileUpdated(Envelope):
    """The customer's profile changed: an agent edited it, or the hub learnt a name from a
    later message. ``data.changed`` says which fields."""

    type: Literal["customer.profile_updated.v1"] = "customer.profile_updated.v1"
    data: CustomerProfileUpdatedData


class CustomerDuplicateDismissed(Envelope):
    """An agent said two customers the hub suggested as duplicates are different people: the
    pair is never suggested again (until ``customer.duplicate_restored.v1``)."""

    type: Literal["customer.duplicate_dismissed.v1"] = "customer.duplicate_dismissed.v1"
    data: CustomerDuplicateDismissedData


class CustomerDuplicateRestored(Envelope):
    """A "not the same person" decision was undone: the pair may be suggested again."""

    type: Literal["customer.duplicate_restored.v1"] = "customer.duplicate_restored.v1"
    data: CustomerDuplicateRestoredData


class CustomerConsentChanged(Envelope):
    """A line of the consent ledger: the customer (or an agent for them) gave or withdrew
    consent for a channel and purpose."""

    type: Literal["customer.consent_changed.v1"] = "customer.consent_changed.v1"
    data: CustomerConsentChangedData


class CustomerErased(Envelope):
    """The customer's personal data was erased (GDPR art. 17). Its data keys are destroyed:
    every earlier event of this customer replays with its personal fields null and
    ``erased`` true. A downstream service MUST now delete or anonymise everything it holds
    about each of ``data.customer_ids`` (copies of earlier events included) and must not
    re-identify them; ids stay, as the record that an erasure happened."""

    type: Literal["customer.erased.v1"] = "customer.erased.v1"
    data: CustomerErasedData


class ConversationOpened(Envelope):
    """A new conversation (thread) started on a channel."""

    type: Literal["conversation.opened.v1"] = "conversation.opened.v1"
    data: ConversationOpenedData


class ConversationStatusChanged(Envelope):
    """A conversation moved between open, pending and resolved."""

    type: Literal["conversation.status_changed.v1"] = "conversation.status_changed.v1"
    data: ConversationStatusChangedData


class ConversationAssigned(Envelope):
    """A conversation was assigned to an agent, or unassigned."""

    type: Literal["conversation.assigned.v1"] = "conversation.assigned.v1"
    data: ConversationAssignedData


class InteractionReceived(Envelope):
    """A customer wrote to the company on some channel."""

    type: Literal["interaction.received.v1"] = "interaction.received.v1"
    data: InteractionData


class InteractionSent(Envelope):
    """The company wrote to a customer (recorded when it was sent or handed to the channel)."""

    type: Literal["interaction.sent.v1"] = "interaction.sent.v1"
    data: InteractionData


class InteractionQueued(Envelope):
    """An agent wrote to a customer: recorded, waiting for the dispatcher to send it."""

    type: Literal["interaction.queued.v1"] = "interaction.queued.v1"
    data: InteractionQueuedData


class InteractionDeliveryUpdated(Envelope):
    """A message's delivery status changed (sent, delivered, read, failed, ...)."""

    type: Literal["interaction.delivery_updated.v1"] = "interaction.delivery_updated.v1"
    data: InteractionDeliveryUpdatedData


class NoteAdded(Envelope):
    """An agent added an internal note to a conversation (never sent to the customer)."""

    type: Literal["note.added.v1"] = "note.added.v1"
    data: NoteAddedData


EVENT_CLASSES: tuple[type[Envelope], ...] = (
    CustomerCreated,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerUnmerged,
    CustomerTagsChanged,
    CustomerProfileUpdated,
    CustomerDuplicateDismissed,
    CustomerDuplicateRestored,
    CustomerConsentChanged,
    CustomerErased,
    ConversationOpened,
    ConversationStatusChanged,
    ConversationAssigned,
    ConversationSlaBreached,
    InteractionReceived,
    InteractionSent,
    InteractionQueued,
    InteractionDeliveryUpdated,
    NoteAdded,
    ScheduledMessageScheduled,
    ScheduledMessageCancelled,
    ScheduledMessageSkipped,
    ScheduledMessageQueued,
    ActivityRecorded,
    FeedbackRequested,
    FeedbackReceived,
    FeedbackCommented,
)
#: Event type name -> model class.
EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["type"].default: cls for cls in EVENT_CLASSES
}

PublishedEvent = Annotated[
    CustomerCreated
    | CustomerIdentityLinked
    | CustomerMerged
    | CustomerUnmerged
    | CustomerTagsChanged
    | CustomerProfileUpdated
    | CustomerDuplicateDismissed
    | CustomerDuplicateRestored
    | CustomerConsentChanged
    | CustomerErased
    | ConversationOpened
    | ConversationStatusChanged
    | ConversationAssigned
    | ConversationSlaBreached
    | InteractionReceived
    | InteractionSent
    | InteractionQueued
    | InteractionDeliveryUpdated
    | NoteAdded
    | ScheduledMessageScheduled
    | ScheduledMessageCancelled
    | ScheduledMessageSkipped
    | ScheduledMessageQueued
    | ActivityRecorded
    | FeedbackRequested
    | FeedbackReceived
    | FeedbackCommented,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[PublishedEvent] = TypeAdapter(cast("Any", PublishedEvent))


def decode_event(raw: bytes | str | dict[str, Any]) -> PublishedEvent:
    """Decode any published event from JSON (bytes/str) or a parsed dict."""
    if isinstance(raw, dict):
        return _ADAPTER.validate_python(raw)
    return _ADAPTER.validate_json(raw)


def encode_event(event: Envelope) -> bytes:
    """The JSON form of a published event, as it goes on the wire."""
    return event.model_dump_json().encode()
