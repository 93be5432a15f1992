"""Request and response bodies of the rules and campaigns API
(``hub.api.routes.automations``; docs/automation.md, "Rules" and "Campaigns")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.api.schedule_models import LocalTime
from hub.domain.automations import (
    MAX_DESCRIPTION,
    MAX_MATCH,
    MAX_NAME,
    MAX_OFFSET_DAYS,
    MAX_TEMPLATE,
    MAX_THROTTLE,
    AutomationRecord,
    Definition,
)
from hub.events.common import Text
from hub.projections.automations import AutomationCounts
from hub.runtime.automation.dry_run import DryRun

Kind = Literal["date", "event", "campaign"]
Purpose = Literal["service", "marketing"]
MatchValue = Annotated[Text, Field(max_length=200)] | int | float | bool | None
_LOCAL_TIME = "A local time, HH:MM, in each customer's zone (the profile's, else the phone's)."


class _Fields(BaseModel):
    """What a rule or a campaign sets (every field optional: a PATCH names the changes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[Text, Field(min_length=1, max_length=MAX_NAME)] | None = Field(
        default=None, description="Unique on the hub, case ignored."
    )
    description: Annotated[Text, Field(max_length=MAX_DESCRIPTION)] | None = None
    template: Annotated[Text, Field(min_length=1, max_length=MAX_TEMPLATE)] | None = Field(
        default=None, description="The template's name (`/v1/templates/{name}`)."
    )
    channels: list[Annotated[str, Field(max_length=16)]] | None = Field(
        default=None,
        max_length=8,
        description="Preference order: the first that reaches the customer with consent.",
    )
    purpose: Purpose | None = Field(default=None, description="The consent it needs.")
    enabled: bool | None = None
    date_field: Annotated[Text, Field(max_length=60)] | None = Field(
        default=None,
        description="Date rules: birthday, first_contact, or attributes.<key> (a date attribute).",
    )
    offset_days: int | None = Field(
        default=None,
        ge=-MAX_OFFSET_DAYS,
        le=MAX_OFFSET_DAYS,
        description="Date rules: days after (negative: before) the date, e.g. -30.",
    )
    local_time: LocalTime | None = Field(default=None, description=_LOCAL_TIME)
    yearly: bool | None = Field(
        default=None,
        description="Date attributes: every year (true), or once on the date itself. "
        "Birthdays and first contacts are yearly.",
    )
    event_type: Annotated[Text, Field(max_length=100)] | None = Field(
        default=None, description="Event rules: the published event type that triggers it."
    )
    # Keys are checked by the domain (a field path such as data.status: invalid_command), not
    # by the schema: a JSON Schema cannot say what a key may hold as the Text type does.
    match: dict[Annotated[str, Field(max_length=100)], MatchValue] | None = Field(
        default=None,
        max_length=MAX_MATCH,
        description='Event rules: conditions on the event, e.g. {"data.status": "resolved"} '
        'or {"data.added": "vip"} (a list field holds the value).',
    )
    delay: timedelta | None = Field(
        default=None,
        description="Event rules: how long after the event (seconds, or ISO 8601: P2D).",
    )
    segment_id: UUID | None = Field(
        default=None,
        description="Campaigns: the audience; event rules: the customer must be in it.",
    )
    at: AwareDatetime | None = Field(default=None, description="Campaigns: an absolute time.")
    on: date | None = Field(
        default=None,
        alias="date",
        description="Campaigns: a date, sent at local_time in each customer's zone.",
    )
    throttle: float | None = Field(
        default=None, gt=0, le=MAX_THROTTLE, description="Campaigns: messages per second."
    )


class AutomationIn(_Fields):
    kind: Kind
    name: Annotated[Text, Field(min_length=1, max_length=MAX_NAME)]
    template: Annotated[Text, Field(min_length=1, max_length=MAX_TEMPLATE)]
    channels: list[Annotated[str, Field(max_length=16)]] = Field(min_length=1, max_length=8)

    def definition(self) -> Definition:
        values = self.model_dump(exclude_none=True, exclude={"channels"})
        return Definition(channels=tuple(self.channels), **values)


class AutomationPatch(_Fields):
    """The fields to change; the others stay (``enabled: false`` turns it off, cancelling
    what it planned that still waits)."""

    def applied_to(self, current: Definition) -> Definition:
        values: dict[str, Any] = self.model_dump(exclude_unset=True)
        if "channels" in values:
            values["channels"] = tuple(values["channels"] or ())
        for required in ("name", "template", "purpose", "enabled", "offset_days", "yearly"):
            if values.get(required, 0) is None:
                values.pop(required)
        if values.get("match", 0) is None:
            values["match"] = {}
        if values.get("delay", 0) is None:
            values["delay"] = timedelta(0)
        return Definition(**{**current.__dict__, **values})


class CountsOut(BaseModel):
    scheduled: int = Field(description="Occurrences planned in all.")
    pending: int = Field(description="Waiting for their time.")
    sent: int = Field(description="Queued to the dispatcher (sent, or being sent).")
    failed: int = Field(description="Queued, then their delivery failed.")
    cancelled: int
    skipped: dict[str, int] = Field(
        description="Not sent, per reason: no_channel, not_allowed, frequency_cap, "
        "template_missing, template_variable_missing, customer_erased..."
    )

    @classmethod
    def of(cls, counts: AutomationCounts) -> CountsOut:
        return cls(
            scheduled=counts.scheduled,
            pending=counts.pending,
            sent=counts.sent,
            failed=counts.failed,
            cancelled=counts.cancelled,
            skipped=counts.skipped,
        )


class AutomationOut(BaseModel):
    automation_id: UUID
    kind: Kind
    name: str
    description: str | None
    template: str
    channels: list[str]
    purpose: str
    enabled: bool
    state: str = Field(
        description="Rules: active or disabled. Campaigns: scheduled (waiting for its time), "
        "planned (its messages are), missed (its time passed before it was planned), disabled."
    )
    date_field: str | None
    offset_days: int
    local_time: str | None = Field(description="HH:MM")
    yearly: bool
    event_type: str | None
    match: dict[str, Any]
    delay_seconds: float
    segment_id: UUID | None
    at: datetime | None
    date: str | None = Field(description="YYYY-MM-DD")
    throttle: float | None
    planned: int | None = Field(description="Campaigns: how many messages were planned.")
    planned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    counts: CountsOut

    @classmethod
    def of(cls, record: AutomationRecord, counts: AutomationCounts) -> AutomationOut:
        d = record.definition
        return cls(
            automation_id=record.automation_id,
            kind=d.kind,
            name=d.name,
            description=d.description,
            template=d.template,
            channels=list(d.channels),
            purpose=d.purpose,
            enabled=d.enabled,
            state=record.state,
            date_field=d.date_field,
            offset_days=d.offset_days,
            local_time=d.local_time.strftime("%H:%M") if d.local_time else None,
            yearly=d.yearly,
            event_type=d.event_type,
            match=dict(d.match),
            delay_seconds=d.delay.total_seconds(),
            segment_id=d.segment_id,
            at=d.at,
            date=d.on.isoformat() if d.on else None,
            throttle=d.throttle,
            planned=record.planned,
            planned_at=record.planned_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
            created_by=record.created_by,
            updated_by=record.updated_by,
            counts=CountsOut.of(counts),
        )


class AutomationList(BaseModel):
    items: list[AutomationOut] = Field(description="Every rule and campaign, by name.")


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: date | None = Field(
        default=None,
        alias="date",
        description="Date rules: the local day to try (default: today, UTC).",
    )
    limit: int = Field(default=50, ge=1, le=200, description="How many customers to list.")


class DryRunRowOut(BaseModel):
    customer_id: UUID
    display_name: str | None
    due_at: datetime
    decision: Literal["send", "held", "skip", "reopen", "none"] = Field(
        description="send; held (quiet hours in the customer's zone, sent at held_until); "
        "skip (code and reason)."
    )
    channel: str | None
    code: str | None
    reason: str | None
    held_until: datetime | None
    subject: str | None
    text: str | None = Field(description="The rendered text (at most 500 characters).")


class DryRunOut(BaseModel):
    automation_id: UUID
    audience: int = Field(description="How many customers it is for now.")
    evaluated: int = Field(description="How many were decided (at most 2000).")
    complete: bool = Field(description="Whether every one of the audience was decided.")
    decisions: dict[str, int] = Field(description="How many of those decided send, held, skip.")
    skipped: dict[str, int] = Field(description="Skipped, per reason code.")
    items: list[DryRunRowOut]

    @classmethod
    def of(cls, run: DryRun) -> DryRunOut:
        return cls(
            automation_id=run.automation_id,
            audience=run.audience,
            evaluated=run.evaluated,
            complete=run.complete,
            decisions=run.decisions,
            skipped=run.skipped,
            items=[DryRunRowOut.model_validate(r, from_attributes=True) for r in run.rows],
        )
