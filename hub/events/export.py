"""The export document's contract: what ``GET /v1/customers/{id}/export`` and ``hub customers
export`` write about one person (GDPR art. 15 and 20), as pydantic models.

:class:`ExportDocument` is the whole (``docs/export.schema.json`` is :func:`document_schema`);
the writer that streams it part by part is ``hub.runtime.export``. Within a version, changes
are additive only (version 1 gained ``scheduled_messages``, between ``conversations`` and
``access_log``); a breaking change is a new version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

#: What the document says it is, and the version of its format (a breaking change is a new one).
FORMAT = "interaction-hub.customer-export"
VERSION = 1

# -- the document ------------------------------------------------------------------------------


class Part(BaseModel):
    """Base of the document's parts: every field always present (null when unknown)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class ExportSource(Part):
    """Where a customer came from, set at its first contact (docs/profile.md)."""

    via: Literal["chat_page", "api", "endpoint"] = Field(
        description="The chat widget's page, an API client, or the company endpoint written to."
    )
    source: str | None
    medium: str | None
    campaign: str | None
    referrer: str | None = Field(description="The page that led to the contact.")
    endpoint: str | None = Field(description="The company's own address written to.")


#: A custom attribute's value: text (string, date, enum), a number or a boolean.
ExportAttributeValue = str | int | float | bool


class ExportProfile(Part):
    """The person as the hub shows them: the group as one customer (for each profile field,
    the first customer's value when set, else the first one known)."""

    display_name: str | None = Field(
        description="The group's name: the first customer's, or the first one known."
    )
    tags: list[str] = Field(description="Agents' labels on any customer of the group.")
    language: str | None = Field(
        description="The person's language: the one an agent set, else the one the hub "
        "detected from the person's messages (the directory)."
    )
    first_seen_at: datetime = Field(description="The first contact of any customer of the group.")
    birthday: str | None = Field(
        default=None, description="YYYY-MM-DD, or --MM-DD when the year is not known."
    )
    time_zone: str | None = Field(default=None, description="The time zone an agent set.")
    company: str | None = None
    attributes: dict[str, ExportAttributeValue] = Field(
        default_factory=dict, description="Custom attributes agents set, by key."
    )
    source: ExportSource | None = Field(
        default=None, description="Where the person came from (the first customer's)."
    )


class ExportMember(Part):
    """One customer record of the group (a merge keeps each record; the group is shown as one)."""

    customer_id: UUID
    display_name: str | None = Field(description="The name this record holds.")
    tags: list[str]
    first_seen_at: datetime
    merged_into: UUID | None = Field(
        description="The customer this record is merged into (null: it stands on its own)."
    )
    birthday: str | None = None
    time_zone: str | None = None
    language: str | None = Field(default=None, description="The language an agent set.")
    company: str | None = None
    attributes: dict[str, ExportAttributeValue] = Field(default_factory=dict)
    source: ExportSource | None = Field(
        default=None, description="Where this record's first contact came from."
    )


class ExportIdentity(Part):
    """An address of the person, with where it came from."""

    customer_id: UUID = Field(description="The customer record the address was linked to.")
    address: str | None = Field(description="kind:value, e.g. phone:+4915112345678.")
    kind: str = Field(description="email, phone, chat, messenger, instagram, telegram.")
    source: Literal["first_contact", "linked"] = Field(
        description="first_contact: the person first wrote from it (the record was created "
        "with it); linked: added later (by an agent, a verification, a provider)."
    )
    linked_at: datetime
    reason: str = Field(description="Why it was linked (first_contact, agent, verification...).")
    first_message_id: UUID | None = Field(
        description="The message of the first contact, when the record began with a message."
    )
    verified: bool = Field(description="Whether the person proved control of the address.")
    verified_at: datetime | None
    verification_reason: str | None


class ExportConsentEntry(Part):
    """A line of the consent ledger: a change, or a double opt-in request (which grants
    nothing until the person confirms it)."""

    customer_id: UUID = Field(description="The customer record the line was recorded on.")
    version: int = Field(
        description="The line's place in that record's history (what a dispatch's decision "
        "basis names)."
    )
    kind: Literal["change", "request"]
    channel: str
    purposes: list[str]
    granted: bool
    source: str = Field(
        description="What caused it: keyword, unsubscribe_link, bounce, provider_opt_out, "
        "agent, api, import, double_opt_in."
    )
    evidence: str | None = Field(description="Free text an agent or a system gave with it.")
    message_id: UUID | None = Field(description="The message that carried it, if any.")
    request_id: UUID | None = Field(description="The double opt-in request it is or confirms.")
    actor: str | None = Field(description="The agent or service that recorded it, if any.")
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = Field(description="Requests: when the link expires.")
    status: str | None = Field(
        description="Requests: pending, confirmed, cancelled or expired (null for changes)."
    )


class ExportMerge(Part):
    """A merge or an unmerge that involved a customer of the group."""

    customer_id: UUID = Field(description="The customer record the event was recorded on.")
    kind: Literal["merged", "unmerged", "absorbed", "released"] = Field(
        description="merged/unmerged: this record was merged into / taken out of "
        "other_customer_id; absorbed/released: other_customer_id was merged into / taken out "
        "of this record."
    )
    other_customer_id: UUID
    at: datetime
    actor: str | None
    reason: str | None
    caused_by: UUID | None = Field(description="The event that caused it, if the person did.")


class ExportAttachment(Part):
    """Metadata of a file that came with a message (the hub keeps no file content)."""

    name: str | None
    content_type: str
    size: int
    url: str | None


class ExportDeliveryStep(Part):
    """A step of an outbound message's delivery, or a provider's report on it."""

    event: Literal[
        "dispatch_requested",
        "dispatch_started",
        "dispatched",
        "delivery_updated",
        "dispatch_deferred",
    ]
    at: datetime = Field(description="When the hub recorded it.")
    occurred_at: datetime | None = Field(description="The provider's time, where it gave one.")
    status: str | None
    error_code: str | None
    error_message: str | None
    provider_message_id: str | None
    attempt: int | None
    held_until: datetime | None
    held: bool | None
    reason: str | None
    author: str | None
    urgent: bool | None
    details: dict[str, Any] = Field(
        description="Whatever else the hub recorded with this step (e.g. its decision basis)."
    )


class ExportMessage(Part):
    """A message in or out, with its delivery history."""

    kind: Literal["message"]
    message_id: UUID
    customer_id: UUID
    channel: str
    direction: Literal["inbound", "outbound"]
    occurred_at: datetime
    recorded_at: datetime
    address: str | None
    contact_name: str | None
    provider_message_id: str
    subject: str | None
    text: str | None
    thread_ref: str | None
    attachments: list[ExportAttachment]
    metadata: dict[str, Any]
    delivery_status: str = Field(description="The last delivery status.")
    delivery: list[ExportDeliveryStep]


class ExportNote(Part):
    """An agent's internal note on the conversation."""

    kind: Literal["note"]
    note_id: UUID
    at: datetime
    author: str | None
    text: str | None


class ExportStatusChange(Part):
    """The conversation's status changed."""

    kind: Literal["status_changed"]
    at: datetime
    status: str
    previous_status: str
    actor: str | None
    reason: str | None


class ExportAssignment(Part):
    """The conversation was assigned (assignee null: unassigned)."""

    kind: Literal["assigned"]
    at: datetime
    assignee: str | None
    actor: str | None


ExportConversationItem = Annotated[
    ExportMessage | ExportNote | ExportStatusChange | ExportAssignment, Field(discriminator="kind")
]


class ExportConversationHead(Part):
    conversation_id: UUID
    customer_id: UUID
    channel: str
    address: str | None
    subject: str | None
    opened_at: datetime


class ExportConversationTail(Part):
    status: str = Field(description="Its status now.")
    assignee: str | None = Field(description="Who it is assigned to now.")
    message_count: int


class ExportConversation(ExportConversationHead, ExportConversationTail):
    """A conversation and everything in it, in the order it was recorded."""

    items: list[ExportConversationItem]


class ExportScheduleSource(Part):
    """Why a scheduled message exists."""

    kind: Literal["api", "rule", "campaign", "followup", "reminder", "survey"] = Field(
        description="api (an agent or an API client), rule (an automation rule), campaign, "
        "followup (unless the person replied in time), reminder (a snoozed conversation), "
        "survey (a CSAT or NPS question)."
    )
    id: str = Field(description="The rule's or campaign's id; `api` otherwise.")
    name: str | None = Field(description="The rule's or campaign's name.")


class ExportScheduledMessage(Part):
    """A message planned for the person (or a reminder to bring their conversation back),
    whatever became of it."""

    id: UUID
    customer_id: UUID
    conversation_id: UUID | None = Field(
        description="The conversation it continues (follow-ups, reminders), if any."
    )
    status: Literal["scheduled", "cancelled", "skipped", "queued"] = Field(
        description="scheduled: still to come; cancelled; skipped (reason_code and reason say "
        "why); queued: handed to the dispatcher as message_id (its delivery is in its "
        "conversation)."
    )
    due_at: datetime
    action: Literal["send", "reopen"] = Field(
        description="send a message, or (a reminder) bring the conversation back to the queue."
    )
    purpose: str = Field(description="service or marketing: the consent it needs.")
    channels: list[str] = Field(description="Preference order: the first that reaches them.")
    template: str | None = Field(description="The template's name (null: a free text).")
    text: str | None = Field(description="The free text (null: a template, or unreadable).")
    subject: str | None
    source: ExportScheduleSource
    reason_code: str | None = Field(description="Skipped: why, as a code.")
    reason: str | None = Field(description="Skipped: why, in words.")
    message_id: UUID | None = Field(description="Queued: the message it became.")
    channel: str | None = Field(description="Queued: the channel it went out on.")
    scheduled_at: datetime = Field(description="When it was scheduled.")
    scheduled_by: str | None = Field(
        description="The agent or token that scheduled it (null: the hub's automation)."
    )


class ExportAccessEntry(Part):
    """Someone read the person's data: who, when, through what, how much."""

    id: UUID
    at: datetime
    customer_id: UUID = Field(description="The customer asked for (a group's root).")
    principal_id: UUID | None = Field(description="The token's id (null: HUB_ADMIN_TOKEN).")
    principal_name: str
    role: str
    action: str = Field(description="The route or console action that read it.")
    items: int = Field(description="How many items were shown.")


class ExportHead(Part):
    format: Literal["interaction-hub.customer-export"]
    version: Literal[1]
    generated_at: datetime
    customer_id: UUID = Field(description="The customer the group is shown as.")
    customer_ids: list[UUID] = Field(description="Every customer record of the group.")
    profile: ExportProfile
    members: list[ExportMember]
    identities: list[ExportIdentity]
    consent: list[ExportConsentEntry]
    merges: list[ExportMerge]


class ExportDocument(ExportHead):
    """Everything the hub holds about a person (the whole merge group)."""

    model_config = ConfigDict(title="Interaction Hub customer export")

    conversations: list[ExportConversation]
    scheduled_messages: list[ExportScheduledMessage] = Field(
        description="Every scheduled message of the group, by the time it is (or was) due."
    )
    access_log: list[ExportAccessEntry]


def document_schema() -> dict[str, Any]:
    """The JSON Schema of the document (``docs/export.schema.json``)."""
    schema = ExportDocument.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
