"""Published events of scheduled and automated messages (docs/automation.md): planned,
cancelled, skipped with the reason, or queued as a message the dispatcher sends (whose own
``interaction.*`` events follow)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from hub.events.envelope import Envelope, Published

__all__ = [
    "AutomationRef",
    "ScheduledMessageCancelled",
    "ScheduledMessageQueued",
    "ScheduledMessageScheduled",
    "ScheduledMessageSkipped",
    "ScheduledSource",
]

SourceKind = Literal["api", "rule", "campaign", "followup", "reminder", "survey"]
Purpose = str


class ScheduledSource(Published):
    """Why a scheduled message exists."""

    kind: SourceKind = Field(
        description="api (scheduled through the API or the console), rule (an automation "
        "rule), campaign, followup (no reply in time), reminder (a snoozed conversation), "
        "survey (a CSAT or NPS question; `id` is csat or nps)."
    )
    id: str = Field(description="The rule's or campaign's id; `api` otherwise.")
    name: str | None = Field(default=None, description="The rule's or campaign's name.")


class AutomationRef(Published):
    """What planned an automated message, and with which template version."""

    occurrence_id: UUID = Field(description="The scheduled message it was queued from.")
    kind: SourceKind
    id: str
    name: str | None = None
    template: str | None = Field(default=None, description="The template's name, if any.")
    template_version: int | None = Field(
        default=None, description="The version of the template it was rendered from."
    )


class ScheduledData(Published):
    occurrence_id: UUID = Field(description="The scheduled message (stable across replays).")
    key: str = Field(
        description="Its deterministic key (rule, customer and date; campaign and customer; "
        "...): the same key is never scheduled twice."
    )
    due_at: AwareDatetime = Field(description="When it is to be sent.")
    action: Literal["send", "reopen"] = Field(
        description="send a message, or (a reminder) bring the conversation back to the queue."
    )
    purpose: Purpose = Field(description="service or marketing: the consent it needs.")
    channels: tuple[str, ...] = Field(
        description="Preference order: the first that reaches the customer with consent."
    )
    template: str | None = Field(default=None, description="A template's name, or null.")
    text: str | None = Field(default=None, description="The free text, or null (a template).")
    subject: str | None = None
    conversation_id: UUID | None = None
    source: ScheduledSource
    actor: str | None = Field(default=None, description="Who scheduled it, if a person.")


class CancelledData(Published):
    occurrence_id: UUID
    actor: str | None = None


class SkippedData(Published):
    occurrence_id: UUID
    code: str = Field(
        description="Why: no_channel (no address of the customer reaches any channel of "
        "the preference); the one reason every channel gave (consent_missing, "
        "consent_revoked, channel_unavailable, outside_service_window); not_allowed (the "
        "channels refused for different reasons: see reason); frequency_cap; "
        "customer_erased; customer_replied (a follow-up); template_missing; "
        "template_variable_missing and the template's other errors; conversation_missing; "
        "automation_disabled (its rule, campaign or survey policy was disabled or deleted "
        "since); surveys: conversation_reopened, already_surveyed, surveyed_recently "
        "(docs/surveys.md); "
        "text_expired (its text expired with the message retention before it was due)."
    )
    reason: str = Field(description="The reason in words, channel by channel.")
    source: ScheduledSource


class QueuedData(Published):
    occurrence_id: UUID
    message_id: UUID | None = Field(
        description="The message handed to the dispatcher (null for a reminder)."
    )
    channel: str | None = None
    template_version: int | None = None
    source: ScheduledSource


class ScheduledMessageScheduled(Envelope):
    """A message was scheduled for a customer (by an agent, a rule or a campaign)."""

    type: Literal["scheduled_message.scheduled.v1"] = "scheduled_message.scheduled.v1"
    data: ScheduledData


class ScheduledMessageCancelled(Envelope):
    """A scheduled message was cancelled before it was due."""

    type: Literal["scheduled_message.cancelled.v1"] = "scheduled_message.cancelled.v1"
    data: CancelledData


class ScheduledMessageSkipped(Envelope):
    """A scheduled message came due and was not sent, for the reason given."""

    type: Literal["scheduled_message.skipped.v1"] = "scheduled_message.skipped.v1"
    data: SkippedData


class ScheduledMessageQueued(Envelope):
    """A scheduled message came due and was handed to the dispatcher as ``message_id`` (its
    ``interaction.queued.v1`` and delivery events follow), or a reminder reopened its
    conversation."""

    type: Literal["scheduled_message.queued.v1"] = "scheduled_message.queued.v1"
    data: QueuedData
