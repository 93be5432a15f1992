"""Request and response bodies of the HTTP API (the published events live in hub.events)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_type_hints
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    create_model,
)

from hub.api.profile_models import AttributeValue, SourceIn
from hub.domain.inbound import Recorded
from hub.events import (
    AcquisitionSource,
    AddressError,
    AutomationRef,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundInteraction,
    normalise_address,
)
from hub.events.common import Metadata, Text
from hub.events.inbound import (
    MAX_TEXT,
    Attachments,
    ContactName,
    InvalidInteraction,
    MessageText,
    ProviderMessageId,
    References,
    Subject,
    ThreadRef,
    check_channel_carries,
    check_occurred_at,
    normalise_endpoint,
)
from hub.projections.conversations import ConversationRecord
from hub.web.errors import ErrorDetail

_DATE_TIME_START = re.compile(r"[0-9]{4}-")


def _date_time_text(value: object) -> object:
    """Only what the schema promises, a date-time as RFC 3339 text: pydantic would also read
    a number, or a string of digits, as Unix time, which no client of this API means."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME_START.match(value)):
        return value
    raise ValueError("expected a date-time as RFC 3339 text, e.g. 2026-12-03T14:00:00Z")


#: A client-given time: an RFC 3339 date-time with its offset.
DateTimeText = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


class InteractionIn(BaseModel):
    """One interaction of the generic API channel."""

    model_config = ConfigDict(extra="forbid")

    # The fields of the inbound contract (hub.events.inbound), but for the address, which the
    # hub normalises here, and the time, which must be RFC 3339 text.
    channel: Channel = "api"
    direction: Direction
    address: str = Field(
        min_length=1,
        max_length=320,
        examples=["phone:+15551234567", "email:alice@example.com"],
        description="The customer's address, kind:value; normalised by the hub.",
    )
    provider_message_id: ProviderMessageId
    occurred_at: DateTimeText
    text: MessageText = ""
    subject: Subject | None = None
    thread_ref: ThreadRef | None = None
    references: References = Field(default_factory=tuple)
    contact_name: ContactName | None = None
    attachments: Attachments = Field(default_factory=tuple)
    metadata: Metadata = Field(default_factory=dict)
    source: SourceIn | None = Field(
        default=None,
        description="Where the customer came from; kept only when this is their first contact "
        "(docs/profile.md).",
    )
    endpoint: Text | None = Field(
        default=None,
        max_length=300,
        description="The company's own address the customer wrote to (kind:value, e.g. "
        "phone:+37060000000); a first contact's may map to a source "
        "(HUB_ACQUISITION__ENDPOINTS).",
    )

    def to_inbound(
        self, default_region: str | None, max_skew: timedelta, now: datetime | None = None
    ) -> InboundInteraction:
        """Normalise and check against the inbound rules (``hub.events.inbound``); raises
        :class:`InvalidInteraction`."""
        try:
            address = normalise_address(self.address, default_region=default_region)
        except AddressError as exc:
            raise InvalidInteraction(
                "invalid_address", str(exc), address=self.address, reason=exc.reason
            ) from None
        check_channel_carries(self.channel, address.kind)
        check_occurred_at(self.occurred_at, now or datetime.now(UTC), max_skew)
        endpoint = None
        if self.endpoint is not None:
            try:
                endpoint = normalise_endpoint(self.endpoint)
            except ValueError as exc:
                raise InvalidInteraction(
                    "invalid_endpoint", f"endpoint: {exc}", endpoint=self.endpoint
                ) from None
        return InboundInteraction(
            channel=self.channel,
            direction=self.direction,
            address=str(address),
            provider_message_id=self.provider_message_id,
            occurred_at=self.occurred_at,
            text=self.text,
            subject=self.subject,
            thread_ref=self.thread_ref,
            references=self.references,
            contact_name=self.contact_name,
            attachments=self.attachments,
            metadata=self.metadata,
            source=self.source.to_inbound() if self.source is not None else None,
            endpoint=endpoint,
        )


class RecordedOut(BaseModel):
    message_id: UUID
    customer_id: UUID | None = Field(
        description="Null when the interaction was accepted for processing but not yet "
        "recorded (the distributed runtime): GET /v1/messages/{message_id} gives it once "
        "visible."
    )
    conversation_id: UUID | None = Field(description="Null as customer_id is.")
    status: Literal["recorded", "accepted", "duplicate"] = Field(
        description="recorded: in the store now; accepted: durably queued for recording; "
        "duplicate: recorded before, nothing new."
    )
    duplicate: bool = Field(description="True when this interaction had been recorded before.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one in the route, so one bad item does not fail the batch.
    interactions: list[dict[str, Any]] = Field(
        description="Up to 1,000 interactions, each shaped like the body of POST /v1/interactions.",
        # Documented only: the route answers an empty batch with its own code, empty_batch.
        json_schema_extra={"minItems": 1},
    )


#: A rejected batch item's error: the same model as the ``error`` of every error response.
ErrorBody = ErrorDetail


class BatchItemOut(BaseModel):
    index: int
    status: Literal["recorded", "accepted", "duplicate", "rejected"]
    message_id: UUID | None = None
    customer_id: UUID | None = None
    conversation_id: UUID | None = None
    error: ErrorBody | None = None


class BatchOut(BaseModel):
    recorded: int
    accepted: int = Field(description="Queued for recording (the distributed runtime).")
    duplicates: int
    rejected: int
    results: list[BatchItemOut]


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: DeliveryStatus
    occurred_at: DateTimeText | None = None
    error_code: Text | None = Field(default=None, max_length=64)
    error_message: Text | None = Field(default=None, max_length=1000)


class DeliveryOut(BaseModel):
    message_id: UUID
    delivery_status: DeliveryStatus


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the views' records

    address: str
    kind: str
    verified: bool
    linked_at: datetime


def fields_of(record: type[Any]) -> type[BaseModel]:
    """A model with exactly the fields of a view's record (a dataclass), to build a response
    from such records (``from_attributes``): the record stays the one definition of them."""
    hints = get_type_hints(record)
    fields: dict[str, Any] = {f.name: (hints[f.name], ...) for f in dataclasses.fields(record)}
    return create_model(
        f"{record.__name__}Fields",
        __config__=ConfigDict(from_attributes=True),
        __module__=__name__,
        **fields,
    )


if TYPE_CHECKING:  # what mypy can know of a model built at run time
    _ConversationFields = BaseModel
else:
    _ConversationFields = fields_of(ConversationRecord)


class SlaOut(BaseModel):
    """An open conversation's SLA (docs/analytics.md)."""

    model_config = ConfigDict(from_attributes=True)

    policy: str | None = Field(description="The SLA policy it falls under (null: none).")
    waiting_since: datetime | None = Field(
        description="The customer's message waiting for a response (null: none waits)."
    )
    response_due_at: datetime | None = Field(description="When that response is due.")
    resolution_due_at: datetime | None = Field(
        description="When resolution is due (null: no target, or resolved)."
    )
    next_due_at: datetime | None = Field(description="The earlier of the two.")


class ConversationOut(_ConversationFields):
    # The fields of hub.projections.conversations.ConversationRecord. No docstring: it would
    # become the schema's description.
    sla: SlaOut | None = Field(
        default=None,
        description="Its SLA due times, once the service projection has measured it.",
    )

    @classmethod
    def of(cls, record: Any, sla: Any = None) -> ConversationOut:
        """From a view's record and its ``hub.projections.service.SlaState``."""
        found = cls.model_validate(record)
        return found.model_copy(update={"sla": SlaOut.model_validate(sla) if sla else None})


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the views' records

    customer_id: UUID
    display_name: str | None
    created_at: datetime
    last_activity_at: datetime | None
    identities: list[IdentityOut]
    merged_customer_ids: list[UUID] = Field(
        default_factory=list,
        description="Customers merged into this one: their addresses and timelines show here.",
    )
    tags: list[str] = Field(default_factory=list, description="Agents' labels, sorted.")
    language: str | None = Field(
        default=None,
        description="The customer's language: the one an agent set, else the one the customer "
        "last wrote in, when the channel said.",
    )
    birthday: str | None = Field(
        default=None, description="YYYY-MM-DD, or --MM-DD when the year is not known."
    )
    time_zone: str | None = Field(
        default=None, description="The time zone an agent set (IANA); quiet hours use it first."
    )
    company: str | None = None
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Custom attributes by key (GET /v1/attributes)."
    )
    source: AcquisitionSource | None = Field(
        default=None, description="Where the customer came from, set at the first contact."
    )


class CustomerDetailOut(CustomerOut):
    open_conversations: list[ConversationOut]


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None


class TimelineItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the views' records

    item_id: UUID
    kind: Literal[
        "message",
        "note",
        "status_changed",
        "assigned",
        "identity_linked",
        "consent_changed",
        "merged",
        "unmerged",
        "profile_updated",
        "scheduled",
        "activity",
        "feedback",
    ] = Field(
        description="`scheduled`: a scheduled or automated message (docs/automation.md); its "
        "`delivery_status` is scheduled, cancelled, skipped or queued, and once queued the "
        "message itself is an item of its own. `activity`: something the customer did in "
        "another system (POST /v1/activities): `subject` is its title, `text` its "
        "description, `data` its type, name, amount, currency, reference, url, source and "
        "metadata. `feedback`: a survey's score (`data`: survey csat or nps, score, via, "
        "agent, survey_id) or, with `data.comment`, its comment in `text` "
        "(docs/surveys.md)."
    )
    customer_id: UUID = Field(description="Whose item it is (in a merged group, which member).")
    occurred_at: datetime
    position: int
    conversation_id: UUID | None
    channel: str | None
    direction: str | None
    text: str | None
    subject: str | None
    delivery_status: str | None
    provider_message_id: str | None
    data: dict[str, Any]


class MessageOut(TimelineItemOut):
    pass


class LedgerEntryOut(BaseModel):
    """The consent ledger entry that decided: line ``version`` of customer ``customer_id``."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: UUID
    version: int
    event_id: UUID | None = Field(
        description="The id of its `customer.consent_changed.v1` event (docs/events.md)."
    )
    granted: bool | None
    purposes: list[str]
    reason: str | None
    source: str | None = Field(description="keyword, unsubscribe_link, bounce, agent, api...")
    evidence_message_id: UUID | None = Field(
        description="The message that carried it (a STOP, a bounce, an unsubscribed email)."
    )
    occurred_at: datetime | None


class ConsentAtDispatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    purpose: str
    granted: bool
    rule: str = Field(
        description="`ledger` (an entry decided) or the default rule that did "
        "(`first_contact`: granted by the customer writing; `opt_in_required`)."
    )
    entry: LedgerEntryOut | None


class QuietHoursAtDispatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start: str | None = Field(description="Quiet hours' start (null: none configured).")
    end: str
    zone: str | None = Field(description="The customer's time zone (null: unknown).")
    local_time: datetime | None = Field(description="The time in the customer's zone.")
    quiet: bool = Field(description="Whether the local time fell in quiet hours.")
    urgent: bool
    awake: bool = Field(description="Whether the customer had written within the awake window.")
    awake_window_minutes: float
    held_until: datetime | None
    effect: Literal["off", "no_zone", "outside", "held", "urgent_override", "awake_override"]


class ServiceWindowAtDispatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hours: float | None = Field(description="The channel's service window (null: none).")
    last_inbound_at: datetime | None = Field(description="The customer's last message then.")
    template: bool = Field(description="Whether an approved template was sent.")
    open: bool | None


class DispatchDecisionOut(BaseModel):
    """One decision of the dispatcher, with what it was decided on at that moment."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    decision: Literal["send", "hold", "refuse"]
    attempt: int | None
    purpose: str
    channel_unavailable: str | None
    refusal_code: str | None
    refusal_reason: str | None
    consent: ConsentAtDispatchOut | None
    quiet_hours: QuietHoursAtDispatchOut | None
    service_window: ServiceWindowAtDispatchOut | None


class LawfulnessOut(BaseModel):
    """Was this message lawful when it was sent? Answered from the message's own stored
    events, as the dispatcher recorded its decisions: later consent changes, merges, rebuilds
    and erasures do not change it."""

    model_config = ConfigDict(from_attributes=True)

    message_id: UUID
    customer_id: UUID
    conversation_id: UUID
    channel: str
    direction: Direction
    sent_by_hub: bool = Field(
        description="False for a message the customer sent, or another system sent and "
        "reported: the hub decided nothing about it (`outcome` `not_sent_by_hub`)."
    )
    outcome: Literal["sent", "refused", "failed", "held", "sending", "queued", "not_sent_by_hub"]
    status: str = Field(description="The message's delivery status now.")
    summary: str = Field(description="The answer in a paragraph, for people.")
    purpose: str | None
    requested_at: datetime | None
    requested_by: str | None = Field(description="The agent or system that asked to send it.")
    urgent: bool | None
    template: bool | None
    automation: AutomationRef | None = Field(
        default=None,
        description="A scheduled or automated message: the scheduled message it came from, "
        "its rule or campaign, and the template version it was rendered from.",
    )
    basis_recorded: bool = Field(
        description="False when the hub sent it before it recorded its decisions' basis."
    )
    decided: DispatchDecisionOut | None = Field(
        description="The decision that counts: the send that went out, the refusal, the hold."
    )
    decisions: list[DispatchDecisionOut] = Field(description="Every decision, oldest first.")
    refusal_code: str | None = Field(description="Why the hub refused to send it.")
    refusal_reason: str | None
    error_code: str | None = Field(description="Why sending failed (the provider's code...).")
    error_message: str | None


class TimelinePage(BaseModel):
    customer_id: UUID
    items: list[TimelineItemOut]
    next_cursor: str | None = Field(description="Pass as ?before= for the next (older) page.")


Tag = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(max_length=50, description="The customer's tags from now on.")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: UUID = Field(description="The duplicate to merge into the customer in the path.")
    reason: Text = Field(default="agent", min_length=1, max_length=200)


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="agent", min_length=1, max_length=200)


class MergeOut(BaseModel):
    customer_id: UUID = Field(description="The customer the group is shown as.")
    merged_customer_id: UUID
    changed: bool = Field(description="False when it was already so (a retry is not an error).")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=MAX_TEXT)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=512)
    language: Text = Field(default="en", min_length=2, max_length=15)
    parameters: tuple[Text, ...] = Field(default=(), max_length=20)


class ReplyIn(BaseModel):
    """An agent's message to the customer, on the conversation's channel unless another is
    named (one that reaches the same address: SMS and WhatsApp share a phone)."""

    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=MAX_TEXT)
    channel: Channel | None = None
    subject: Text | None = Field(default=None, max_length=998)
    urgent: StrictBool = Field(
        default=False, description="Send even in the customer's quiet hours."
    )
    template: TemplateIn | None = Field(
        default=None, description="An approved template (WhatsApp outside the 24-hour window)."
    )
    purpose: str = Field(
        default="service",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="What the message is sent for: `service` (a reply in a conversation the "
        "customer started), `marketing` or a configured purpose (`HUB_CONSENT__PURPOSES`). "
        "The customer's consent for it on the channel is checked now and again at dispatch; "
        "`GET /v1/messages/{id}/lawfulness` shows what the send was decided on. Another "
        "name answers 422 `unknown_purpose`.",
        examples=["service"],
    )


class ReplyOut(BaseModel):
    message_id: UUID
    conversation_id: UUID
    customer_id: UUID
    status: Literal["queued", "duplicate"]

    @classmethod
    def of(cls, recorded: Recorded) -> ReplyOut:
        """A reply or a new conversation's first message as recorded (or found again)."""
        return cls(
            message_id=recorded.message_id,
            conversation_id=recorded.conversation_id,
            customer_id=recorded.customer_id,
            status="duplicate" if recorded.duplicate else "queued",
        )


class NewConversationIn(BaseModel):
    """A conversation an agent starts: the first message to the customer on ``channel``,
    sent to their newest address there."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    text: Text = Field(min_length=1, max_length=MAX_TEXT)
    subject: Text | None = Field(default=None, max_length=998, description="Required for email.")
    urgent: StrictBool = Field(
        default=False, description="Send even in the customer's quiet hours."
    )
    template: TemplateIn | None = Field(
        default=None,
        description="An approved template (WhatsApp, where the customer has not written "
        "within 24 hours).",
    )
    purpose: str = Field(
        default="service",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="What the message is sent for (as for a reply); another name answers "
        "422 `unknown_purpose`.",
        examples=["service"],
    )


#: The channels consent is kept for (``hub.domain.consent.CHANNELS``).
ConsentChannel = Literal["sms", "whatsapp", "email", "telegram", "messenger", "instagram", "chat"]
#: A purpose's name: service, marketing or a configured one (others answer 422 unknown_purpose).
PurposeText = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class ConsentIn(BaseModel):
    """A change of consent: granted or withdrawn for purposes on one channel."""

    model_config = ConfigDict(extra="forbid")

    channel: ConsentChannel
    granted: StrictBool
    purposes: tuple[PurposeText, ...] = Field(
        default=("service", "marketing"),
        min_length=1,
        max_length=16,
        description="service, marketing, or a configured purpose (HUB_CONSENT__PURPOSES).",
    )
    source: Literal["agent", "api", "import"] | None = Field(
        default=None,
        description="Where it comes from: agent (the default for agent tokens), api (the "
        "default for admin tokens), import (records from another system: admin tokens only, "
        "with evidence). A grant of email marketing by agent or api needs the customer's "
        "confirmation (double opt-in); import records it as it is.",
    )
    evidence: Text | None = Field(
        default=None,
        max_length=2000,
        description='What the change rests on ("customer asked on the phone, ticket 1234"): '
        "personal data, stored encrypted under the customer's key.",
    )


class ConsentPendingOut(BaseModel):
    """A double opt-in request waiting for the customer's confirmation."""

    request_id: UUID
    customer_id: UUID
    expires_at: datetime


class ConsentCellOut(BaseModel):
    """The state of one channel and purpose."""

    channel: str
    purpose: str
    granted: bool
    default: bool = Field(description="True: no ledger line decides it, the default rule does.")
    rule: str = Field(
        description="The default rule (first_contact: granted by the customer writing to "
        "you; opt_in_required) or, when a line decides, that line's source."
    )
    decided_on: UUID | None = Field(description="The customer the deciding line is recorded on.")
    decided_at: datetime | None = Field(description="When the deciding line happened.")
    pending: ConsentPendingOut | None = Field(
        description="A double opt-in request waiting for the customer (grants nothing yet)."
    )


class ConsentEntryOut(BaseModel):
    """A line of the consent ledger (kind change), or a double opt-in request (kind
    request, with its status: pending, confirmed, cancelled or expired)."""

    customer_id: UUID = Field(description="The customer (merge group member) it is recorded on.")
    kind: Literal["change", "request"]
    channel: str
    purposes: list[str]
    granted: bool
    source: str
    evidence: str | None = Field(description="Free text given as evidence (null: none/erased).")
    message_id: UUID | None = Field(description="The message that carried it (STOP, bounce).")
    request_id: UUID | None = Field(description="The request it is, or the request it confirms.")
    actor: str | None
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = None
    status: str | None = None


class ConsentOut(BaseModel):
    """A customer's consent: the state per channel and purpose, and the whole ledger of
    their merge group, oldest first."""

    customer_id: UUID = Field(description="The merge group's root.")
    customer_ids: list[UUID] = Field(description="Every member of the group.")
    purposes: list[str]
    state: list[ConsentCellOut]
    history: list[ConsentEntryOut]


class ConfirmationOut(BaseModel):
    """A double opt-in request the customer must confirm through ``url``."""

    request_id: UUID
    customer_id: UUID
    channel: str
    purposes: list[str]
    expires_at: datetime
    url: str = Field(description="The signed confirmation link (no login needed).")
    sent: bool = Field(description="Whether the hub sent the link to the customer by email.")
    message_id: UUID | None = Field(description="The email that carries the link, if sent.")
    note: str = Field(description="What happened to the link, for people.")


class ConsentChangeOut(ConsentOut):
    """The state after a change; ``confirmations``: double opt-in requests it made."""

    recorded_on: list[UUID] = Field(description="The group members the change is recorded on.")
    confirmations: list[ConfirmationOut]


class NoteOut(BaseModel):
    note_id: UUID
    conversation_id: UUID


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ConversationStatus


class AssigneeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: Text | None = Field(max_length=200)


class EventPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="Published events (see docs/events.md).")
    next_after: int = Field(description="Pass as ?after= to continue.")
