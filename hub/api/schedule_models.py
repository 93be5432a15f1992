"""Request and response models of scheduled messages, reminders and follow-ups
(``hub.api.routes.scheduled``; docs/automation.md)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from hub.events.common import Channel, Text
from hub.events.inbound import MAX_TEXT
from hub.events.scheduled import ScheduledSource

#: A template's name (``hub.domain.templates``).
TemplateName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
PurposeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ScheduledStatus = Literal["scheduled", "cancelled", "skipped", "queued"]


def _wall_clock(value: dt.time) -> dt.time:
    """A time of day on the wall: no zone (the customer's applies), to the minute."""
    if value.tzinfo is not None:
        raise ValueError("a local time has no zone offset: HH:MM")
    return value.replace(second=0, microsecond=0)


#: A time of day without a zone, ``HH:MM`` (seconds allowed, and dropped): the zone is each
#: customer's own. Its schema says so (a JSON Schema ``format: time`` would ask for a zone).
LocalTime = Annotated[
    dt.time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
            "examples": ["10:00"],
        }
    ),
]


class LocalTimeIn(BaseModel):
    """A wall-clock time on a day in the customer's own time zone (the one an agent set, else
    their phone number's, else ``HUB_DISPATCH__DEFAULT_TIME_ZONE``, else UTC)."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date
    time: LocalTime = Field(description="e.g. 10:00")


class MessagePlanIn(BaseModel):
    """What to send: a template or a text (one of them: both or neither is refused as
    ``invalid_command``), on the first channel of ``channels`` (each named once) that reaches
    the customer with consent for ``purpose``."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateName | None = Field(default=None, description="A template's name.")
    text: Text | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    subject: Text | None = Field(default=None, max_length=998, description="Email subject.")
    channels: list[Channel] = Field(
        min_length=1,
        max_length=8,
        description="Preference order, e.g. [whatsapp, sms, email]: the first that reaches "
        "the customer and that they consented to for the purpose, when it is due.",
    )
    purpose: PurposeName = Field(
        default="service",
        description="`service` or `marketing` (or a configured purpose): the consent it "
        "needs, checked when it is due and again when it is sent.",
    )


class ScheduledMessageIn(MessagePlanIn):
    """A message to send later: at ``send_at``, or at ``local`` time in the customer's zone
    (one of them: both or neither is refused as ``invalid_command``)."""

    send_at: AwareDatetime | None = Field(default=None, description="An absolute time.")
    local: LocalTimeIn | None = Field(
        default=None, description="Or a time of day on a date in the customer's time zone."
    )


class ScheduledMessageOut(BaseModel):
    id: UUID
    customer_id: UUID
    status: ScheduledStatus
    due_at: datetime
    action: Literal["send", "reopen"]
    purpose: str
    channels: list[str]
    template: str | None
    text: str | None
    subject: str | None
    conversation_id: UUID | None
    source: ScheduledSource
    reason_code: str | None = Field(default=None, description="Skipped: why (a code).")
    reason: str | None = Field(default=None, description="Skipped: why, channel by channel.")
    message_id: UUID | None = Field(default=None, description="Queued: the message sent.")
    channel: str | None = Field(default=None, description="Queued: the channel it went on.")


class ScheduledMessageList(BaseModel):
    items: list[ScheduledMessageOut]


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime = Field(description="When the conversation comes back to the queue.")


class SnoozeOut(BaseModel):
    reminder_id: UUID
    conversation_id: UUID
    until: datetime
    status: Literal["pending"] = "pending"


class FollowUpIn(BaseModel):
    """Unless the customer writes in this conversation within ``after_hours``: send the
    message (``action: send``) or bring the conversation back to the queue (``reopen``)."""

    model_config = ConfigDict(extra="forbid")

    after_hours: float = Field(gt=0, le=24 * 366, description="e.g. 72 for three days.")
    action: Literal["send", "reopen"] = "send"
    template: TemplateName | None = None
    text: Text | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    subject: Text | None = Field(default=None, max_length=998)
    channels: list[Channel] | None = Field(
        default=None, max_length=8, description="Default: the conversation's channel."
    )
    purpose: PurposeName = "service"
