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

from hub.events import (
    AddressError,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundInteraction,
    normalise_address,
)
from hub.events.common import ConsentPurpose, Metadata, Text
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


class ConversationOut(_ConversationFields):
    # The fields of hub.projections.conversations.ConversationRecord. No docstring: it would
    # become the schema's description.
    pass


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
        default=None, description="The language the customer last wrote in, when the channel said."
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
    ]
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


class ReplyOut(BaseModel):
    message_id: UUID
    conversation_id: UUID
    customer_id: UUID
    status: Literal["queued", "duplicate"]


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    granted: StrictBool
    purposes: tuple[ConsentPurpose, ...] = Field(default=("service", "marketing"), min_length=1)


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
