"""How the console shows things: times, channels, delivery ticks, links, and the facts of a
profile.

Pure functions of view records (no I/O), installed as Jinja2 filters and globals.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from jinja2 import Environment

from hub.domain.policy import time_zone_of
from hub.projections.directory import CustomerRecord

#: Channel -> what agents read.
CHANNEL_NAMES = {
    "email": "Email",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "chat": "Web chat",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "telegram": "Telegram",
    "voice": "Voice",
    "api": "API",
}
#: Address kind -> the channels that reach it (for consent per channel).
KIND_CHANNELS = {
    "email": ("email",),
    "phone": ("sms", "whatsapp"),
    "chat": ("chat",),
    "messenger": ("messenger",),
    "instagram": ("instagram",),
    "telegram": ("telegram",),
}
#: Delivery status -> (tick shown, words for screen readers and tooltips).
TICKS = {
    "queued": ("\u23f1", "queued, not sent yet"),
    "accepted": ("\u2713", "accepted by the provider"),
    "sent": ("\u2713", "sent"),
    "delivered": ("\u2713\u2713", "delivered"),
    "read": ("\u2713\u2713", "read"),
    "undelivered": ("\u2717", "not delivered"),
    "failed": ("\u2717", "failed"),
    "received": ("", "received"),
}
_ICON_KIND = {"phone": "sms", "email": "email", "chat": "chat"}


def channel_name(channel: str | None) -> str:
    return CHANNEL_NAMES.get(channel or "", channel or "")


def icon_for(kind_or_channel: str | None) -> str:
    """The icon id (``static/icons.svg``-style symbols in base.html) of a channel or kind."""
    value = kind_or_channel or ""
    return _ICON_KIND.get(value, value) if value else "api"


def clock(value: datetime | None) -> str:
    """``2026-12-01 09:30`` in UTC (the page's script shows it in the agent's own zone)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def moment(value: datetime | str | None) -> datetime | None:
    """A time a view keeps as ISO 8601 text in its JSON (a scheduled message's ``due_at``)
    as a datetime, for :func:`clock` and :func:`iso`; None for what is not one."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # pragma: no cover


def _span(seconds: int) -> str:
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "1 min"


def due_in(value: datetime | None, now: datetime | None = None) -> str:
    """An SLA due time as an agent reads it: "breaches in 12 min", "breached 3 h ago"."""
    if value is None:
        return ""
    seconds = int((value - (now or datetime.now(UTC))).total_seconds())
    if seconds > 0:
        return f"breaches in {_span(seconds)}"
    return f"breached {_span(-seconds)} ago"


def tick(status: str | None) -> tuple[str, str]:
    return TICKS.get(status or "", ("", status or ""))


def bare(address: str | None) -> str:
    """An address without its kind: ``phone:+1415...`` -> ``+1415...``."""
    return (address or "").partition(":")[2] or (address or "")


#: Address kind -> how a list names an address of it that has no readable value of its own.
_KIND_LABELS = {
    "chat": "Web chat visitor",
    "telegram": "Telegram user",
    "messenger": "Messenger user",
    "instagram": "Instagram user",
}


def address_label(address: str | None) -> str:
    """An address as lists show it: a phone number formatted internationally
    (``phone:+15550101001`` -> ``+1 555-010-1001``), an email as it is, other kinds named
    (``Web chat visitor …a1b2c3``: a visitor id means nothing to a reader)."""
    kind, _, value = (address or "").partition(":")
    if not value:
        return address or ""
    if kind == "phone":
        return _phone_label(value)
    if kind == "email":
        return value
    label = _KIND_LABELS.get(kind, kind.capitalize())
    return (
        f"{label} \u2026{value[-6:]}" if kind == "chat" and len(value) > 6 else f"{label} {value}"
    )


@functools.lru_cache(maxsize=4096)
def _phone_label(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def short_id(value: Any) -> str:
    return str(value)[-6:]


def link_url(value: Any) -> str | None:
    """``value`` when it is safe as a link's ``href``: an http or https URL with a host; None
    otherwise (``javascript:``, ``data:``...). Events recorded before intake checked URLs
    may hold anything. Any whitespace or control character refuses the URL: browsers drop
    some of them inside a scheme (``java\tscript:``), so what they run could differ from
    what this function read."""
    if not isinstance(value, str) or any(c.isspace() or c < " " or c == "\x7f" for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None


@dataclass(frozen=True, slots=True)
class ConsentRow:
    channel: str
    service: bool
    marketing: bool
    recorded: bool  # False: no entry in the ledger (they wrote to us: service allowed)


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    time_zone: str | None
    local_time: str | None
    consent: list[ConsentRow]
    language: str | None


def profile_facts(
    profile: CustomerRecord, consent: dict[str, bool], default_zone: str | None, now: datetime
) -> ProfileFacts:
    phone = next((i.address for i in profile.identities if i.kind == "phone"), None)
    # The zone an agent set comes first, as it does for quiet hours (hub.domain.policy).
    zone = time_zone_of(None, profile.time_zone) if profile.time_zone else None
    zone = zone or time_zone_of(phone, default_zone)
    channels: list[str] = []
    for identity in profile.identities:
        for channel in KIND_CHANNELS.get(identity.kind, ()):
            if channel not in channels:
                channels.append(channel)
    rows = [
        ConsentRow(
            channel,
            consent.get(f"{channel}:service", True),
            consent.get(f"{channel}:marketing", False),
            f"{channel}:service" in consent or f"{channel}:marketing" in consent,
        )
        for channel in channels
    ]
    return ProfileFacts(
        time_zone=str(zone) if zone else None,
        local_time=now.astimezone(zone).strftime("%H:%M, %a %d %b") if zone else None,
        consent=rows,
        language=profile.language,
    )


#: Profile field -> what agents read (custom attributes show their key).
FIELD_LABELS = {
    "display_name": "name",
    "birthday": "birthday",
    "time_zone": "time zone",
    "language": "language",
    "company": "company",
}


def field_label(name: str) -> str:
    """``time_zone`` -> ``time zone``; ``attributes.plan`` -> ``plan``."""
    return FIELD_LABELS.get(name) or name.removeprefix("attributes.")


def field_value(value: Any) -> str:
    """A profile or attribute value as text: yes/no for a boolean, a number as written."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def birthday(value: str | None) -> str:
    """``1990-04-21`` as it is; ``--04-21`` (no year) as ``21 April``."""
    if value and value.startswith("--"):
        month, _, day = value[2:].partition("-")
        with contextlib.suppress(ValueError, IndexError):
            return f"{int(day)} {calendar.month_name[int(month)]}"
    return value or ""


def source_text(source: dict[str, Any] | None) -> str:
    """Where a customer came from, in a line: ``newsletter / email / spring (chat page,
    from https://blog.example/post)``."""
    if not source:
        return ""
    named = " / ".join(v for v in (source.get(k) for k in ("source", "medium", "campaign")) if v)
    via = {"chat_page": "chat page", "api": "API", "endpoint": "first wrote to"}.get(
        source.get("via") or "", source.get("via") or ""
    )
    details = [via + (f" {bare(source['endpoint'])}" if via == "first wrote to" else "")]
    if source.get("referrer"):
        details.append(f"from {source['referrer']}")
    if source.get("endpoint") and via != "first wrote to":
        details.append(f"to {bare(source['endpoint'])}")
    return f"{named or 'unnamed source'} ({', '.join(d for d in details if d)})"


@functools.lru_cache(maxsize=1)
def time_zones() -> list[str]:
    """Every IANA zone name, sorted (the profile form offers them)."""
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


def install(env: Environment) -> None:
    env.filters.update(
        channel_name=channel_name,
        icon=icon_for,
        clock=clock,
        iso=iso,
        moment=moment,
        ago=ago,
        due_in=due_in,
        short_id=short_id,
        bare=bare,
        address_label=address_label,
        link_url=link_url,
        field_label=field_label,
        field_value=field_value,
        birthday=birthday,
        source_text=source_text,
    )
    env.globals.update(tick=tick, channel_names=CHANNEL_NAMES)
