"""The conditions (leaves) of the segment filter language (``hub.events.segments``): what one
customer has or did, each a frozen pydantic model whose JSON Schema is published. What a
schema cannot state is each model's ``problem`` (checked by ``hub.events.segments``)."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
)

from hub.events.common import EARLIEST_OCCURRED_AT as EARLIEST
from hub.events.common import Channel, Frozen, Text

__all__ = [
    "CONSENT_CHANNELS",
    "MAX_DAYS",
    "MAX_IN_VALUES",
    "AttributeCondition",
    "ChannelCondition",
    "ConsentCondition",
    "ConsentMatch",
    "ContactWindow",
    "FirstContactCondition",
    "LanguageCondition",
    "LastContactCondition",
    "Node",
    "OpenConversationsCondition",
    "Scalar",
    "SourceCondition",
    "SourceMatch",
    "TagCondition",
    "TimeZoneCondition",
]

#: How many values an attribute's ``in`` may list.
MAX_IN_VALUES = 100
#: The channels consent is kept for (``hub.domain.consent.CHANNELS``).
CONSENT_CHANNELS = ("sms", "whatsapp", "email", "telegram", "messenger", "instagram", "chat")
#: The longest window ``within_days`` may name (a century).
MAX_DAYS = 36_500
#: JSON integers every reader compares exactly with a float column (2**53).
_EXACT = 2**53


class Node(Frozen):
    """Base of the filter's nodes: immutable, unknown keys refused, ``not`` by its name."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _trimmed(value: str) -> str:
    return value.strip()


#: Tags are kept trimmed, so a filter's is too (one of spaces alone breaks a rule).
_Tag = Annotated[Text, Field(min_length=1, max_length=50), AfterValidator(_trimmed)]


class TagCondition(Node):
    """The customer (any member of a merged group) has this tag (as set by agents: exact,
    surrounding spaces ignored)."""

    tag: _Tag


def _as_float(value: float) -> float:
    """A number beyond the integers a float holds exactly, as the float it is compared as."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError("number out of range") from None


#: A value an attribute is compared with: a boolean, a number (integers within 2**53 stay
#: integers; a float column holds them exactly), or a string (string, enum, and dates as
#: YYYY-MM-DD).
Scalar: TypeAlias = (
    Annotated[bool, Strict()]
    | Annotated[int, Strict(), Field(ge=-_EXACT, le=_EXACT)]
    | Annotated[float, Strict(), Field(allow_inf_nan=False), AfterValidator(_as_float)]
    | Annotated[Text, Strict(), Field(max_length=200)]
)
AttributeOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "exists"]
_ORDERED_OPS = frozenset({"lt", "le", "gt", "ge"})


class AttributeCondition(Node):
    """A custom attribute compared with ``value`` (``op``: eq, ne, lt, le, gt, ge, in with a
    list, exists with no value). ``ne`` and the comparisons hold only for a customer that has
    the attribute."""

    attribute: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="The attribute's key.")
    op: AttributeOp = "eq"
    value: Scalar | list[Scalar] | None = None

    def problem(self) -> str | None:
        """Why the value does not fit the comparison, if it does not."""
        value = self.value
        if self.op == "exists":
            return "op 'exists' takes no value" if value is not None else None
        if self.op == "in":
            if not isinstance(value, list) or not value:
                return "op 'in' needs a non-empty list of values"
            if len(value) > MAX_IN_VALUES:
                return f"op 'in' takes at most {MAX_IN_VALUES} values"
            return None
        if value is None or isinstance(value, list):
            return f"op {self.op!r} needs one value (a string, number or boolean)"
        if self.op in _ORDERED_OPS and isinstance(value, bool):
            return f"op {self.op!r} compares numbers, dates or text, not booleans"
        return None


class ChannelCondition(Node):
    """The customer is reachable on this channel: has an address of a kind it uses."""

    channel: Channel


class ConsentMatch(Node):
    channel: Literal["sms", "whatsapp", "email", "telegram", "messenger", "instagram", "chat"]
    purpose: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="service, marketing, or a purpose configured on this hub.",
    )


class ConsentCondition(Node):
    """Consent for (channel, purpose) is granted now: the latest line of the group's ledger,
    else the default rule (docs/consent.md)."""

    consent: ConsentMatch


class LanguageCondition(Node):
    """The customer's language starts with this tag: ``lt`` matches ``lt`` and ``lt-LT``."""

    language: str = Field(
        min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
    )


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA zone this system knows, by its lower-case name."""
    return {name.lower(): name for name in zoneinfo.available_timezones() | {"UTC"}}


class TimeZoneCondition(Node):
    """The time zone an agent set on the customer (IANA, e.g. Europe/Vilnius; any case)."""

    time_zone: str = Field(min_length=1, max_length=64)

    def zone(self) -> str | None:
        """The zone in its canonical spelling; None for one this system does not know."""
        return _zones().get(self.time_zone.lower())


_SourceText = Annotated[Text, Field(min_length=1, max_length=100)]


class SourceMatch(Node):
    """Fields of the acquisition source, each given one must match (case ignored)."""

    source: _SourceText | None = None
    medium: _SourceText | None = None
    campaign: _SourceText | None = None
    via: Literal["chat_page", "api", "endpoint"] | None = None

    def given(self) -> bool:
        return not (self.source is None and self.medium is None and self.campaign is None) or (
            self.via is not None
        )


class SourceCondition(Node):
    """Where the customer came from: a source name (``"radio-spring"``) or fields of it."""

    source: _SourceText | SourceMatch

    def match(self) -> SourceMatch:
        """The condition as fields (a name alone is ``{"source": name}``)."""
        return (
            self.source if isinstance(self.source, SourceMatch) else SourceMatch(source=self.source)
        )


def _iso_time(value: Any) -> Any:
    # JSON writes a time as an RFC 3339 string; a bare number is no time here.
    if not isinstance(value, str | datetime):
        raise ValueError("expected a time as an RFC 3339 string, e.g. 2026-05-01T00:00:00Z")
    return value


def _integer(value: Any) -> Any:
    # JSON true/false and "12" are no integers, whatever lax int parsing makes of them.
    if isinstance(value, bool | str):
        raise ValueError("expected an integer")
    return value


_Time = Annotated[AwareDatetime, BeforeValidator(_iso_time)]
#: (The bounds before the validator: so the JSON Schema states them as minimum and maximum.)
_Days = Annotated[int, Field(ge=1, le=MAX_DAYS), BeforeValidator(_integer)]


class ContactWindow(Node):
    """A window in time: ``after`` (inclusive), ``before`` (exclusive), ``within_days`` (the
    last n days before now); every bound given applies."""

    after: _Time | None = None
    before: _Time | None = None
    within_days: _Days | None = None

    def problem(self) -> str | None:
        """Why the window cannot be used, if it cannot."""
        if self.after is None and self.before is None and self.within_days is None:
            return "give at least one of after, before, within_days"
        for name, at in (("after", self.after), ("before", self.before)):
            if at is not None:
                try:
                    in_utc = at.astimezone(UTC)
                except OverflowError:
                    return f"{name} is out of range"
                if in_utc < EARLIEST:
                    return f"{name} is before {EARLIEST.isoformat()}"
        if self.after is not None and self.before is not None and self.after >= self.before:
            return "after must be earlier than before"
        return None

    def within(self) -> timedelta | None:
        return timedelta(days=self.within_days) if self.within_days is not None else None


class FirstContactCondition(Node):
    """The customer's first contact (the group's earliest) falls in the window."""

    first_contact: ContactWindow


class LastContactCondition(Node):
    """The customer's last contact (the group's latest) falls in the window."""

    last_contact: ContactWindow


class OpenConversationsCondition(Node):
    """true: some conversation of the customer is open or pending; false: none is."""

    open_conversations: Annotated[bool, Strict()]
