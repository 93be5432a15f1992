"""Request and response bodies of calendars, SLA policies and reports
(``hub.api.routes.service_levels``, ``hub.api.routes.reports``). The schema takes any shape
the domain might accept; the rules across fields (intervals that overlap, a country the
``holidays`` package does not know, a policy without a target) are the domain's, answered
as ``invalid_command`` with ``details.field`` (``hub.domain.calendars``,
``hub.domain.service_levels``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hub.domain.service_levels import MAX_SEGMENTS, DefinitionRecord
from hub.events.common import Channel, Text

_CLOCK = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
Clock = Annotated[str, Field(pattern=_CLOCK, examples=["09:00", "24:00"])]
Minutes = Annotated[int, Field(ge=1, le=366 * 24 * 60)]


class Interval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Clock = Field(description="Local time the office opens, HH:MM.")
    end: Clock = Field(description="Local time it closes, HH:MM (24:00: midnight).")


Day = Annotated[list[Interval], Field(max_length=4)]


class WeekHours(BaseModel):
    """Opening hours per weekday (a day left out or empty is closed)."""

    model_config = ConfigDict(extra="forbid")

    monday: Day = Field(default_factory=list)
    tuesday: Day = Field(default_factory=list)
    wednesday: Day = Field(default_factory=list)
    thursday: Day = Field(default_factory=list)
    friday: Day = Field(default_factory=list)
    saturday: Day = Field(default_factory=list)
    sunday: Day = Field(default_factory=list)


class Holidays(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["LT", "CZ"])] = Field(
        description="ISO 3166-1 alpha-2: public holidays of the `holidays` package are closed."
    )
    subdivision: Annotated[str, Field(max_length=16)] | None = Field(
        default=None, description="A region of the country with its own holidays (e.g. `BY`)."
    )


class CalendarIn(BaseModel):
    """A business calendar: opening hours in a time zone, minus holidays and closed dates."""

    model_config = ConfigDict(extra="forbid")

    time_zone: Annotated[str, Field(max_length=64, examples=["Europe/Vilnius"])] = Field(
        description="IANA time zone the opening hours are in."
    )
    hours: WeekHours
    holidays: Holidays | None = None
    closed_dates: Annotated[list[dt.date], Field(max_length=366)] = Field(
        default_factory=list, description="Other days the office is closed (ISO dates)."
    )


_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SlaPolicyIn(BaseModel):
    """Targets for first response, next response and resolution, counted in a calendar, for
    the conversations of some channels and customers with some tags, in some segments."""

    model_config = ConfigDict(extra="forbid")

    calendar: Annotated[str, Field(pattern=_NAME)] | None = Field(
        default=None,
        description="The calendar the targets count in; null: the calendar named `default` "
        "if there is one, else around the clock.",
    )
    first_response_minutes: Minutes | None = None
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    channels: Annotated[list[Channel], Field(max_length=9)] = Field(
        default_factory=list, description="The conversations' channels (empty: any)."
    )
    tags: Annotated[list[Annotated[Text, Field(max_length=100)]], Field(max_length=50)] = Field(
        default_factory=list,
        description="Customers with any of these tags (empty: any customer).",
    )
    segments: Annotated[list[uuid.UUID], Field(max_length=MAX_SEGMENTS)] = Field(
        default_factory=list,
        description="Customers in any of these saved segments (ids; empty: any customer), "
        "as of the conversation's opening or the tags change or merge that chose its "
        "policy again. Each must exist: `segment_missing` otherwise.",
    )
    priority: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=100, description="Lower first: a conversation falls under the first that fits."
    )
    description: Annotated[Text, Field(max_length=500)] = ""


class DefinitionOut(BaseModel):
    name: str
    definition: dict[str, Any] = Field(description="As stored (the canonical form).")
    changed_at: dt.datetime
    actor: str | None

    @classmethod
    def of(cls, record: DefinitionRecord) -> DefinitionOut:
        return cls(
            name=record.name,
            definition=record.definition,
            changed_at=record.changed_at,
            actor=record.actor,
        )


class DefinitionList(BaseModel):
    items: list[DefinitionOut]
