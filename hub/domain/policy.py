"""The rules an outbound message is decided by, apart from the commands that record them
(``hub.domain.outbound``): what the domain asks of the channels (:class:`ChannelPolicy`) and
of a provider's delivery report (:class:`ProviderReport`), quiet hours and the customer's
time zone, why a channel refuses a message now, and the dispatcher's decisions
(:class:`Send`, :class:`Hold`, :class:`Done`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from hub.domain.consent import DEFAULT_RULES, ConsentRules
from hub.domain.model import Conversation, Customer

__all__ = [
    "ChannelOption",
    "ChannelPolicy",
    "Decision",
    "Done",
    "Hold",
    "ProviderReport",
    "QuietHours",
    "Send",
    "refusal_of",
    "time_zone_of",
]


class ChannelPolicy(Protocol):
    """What the runtime knows about channels (which connectors are on, their windows)."""

    def unavailable(self, channel: str) -> str | None:
        """Why nothing can be sent on ``channel`` (None: it can)."""

    def service_window(self, channel: str) -> timedelta | None:
        """Free text only within this time of the customer's last message, if limited."""

    def status_callback_url(self, channel: str, message_id: UUID) -> str | None:
        """Where the provider should report delivery of this message."""

    def idempotent(self, channel: str) -> bool:
        """Whether the channel's provider dedupes a repeated send by its idempotency key."""

    def unsubscribe_url(
        self, channel: str, customer_id: UUID, purpose: str, message_id: UUID
    ) -> str | None:
        """The signed one-click unsubscribe link for a message sent for ``purpose`` (RFC
        8058 ``List-Unsubscribe``), where the channel carries one; None: no link."""


class ProviderReport(Protocol):
    """A provider's delivery report as the domain needs it (``hub.connectors``'
    ``DeliveryReport`` is one)."""

    @property
    def channel(self) -> str: ...
    @property
    def provider_message_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def message_id(self) -> UUID | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def revoke_consent(self) -> bool: ...


@dataclass(frozen=True)
class QuietHours:
    start: time | None  # None: no quiet hours
    end: time
    default_zone: str | None
    awake_window: timedelta

    def until(self, now: datetime, zone: ZoneInfo | None) -> datetime | None:
        """The end of the quiet period ``now`` falls in, in the given zone; None outside."""
        if self.start is None or zone is None:
            return None
        local = now.astimezone(zone)
        at = local.time()
        overnight = self.start > self.end
        inside = (at >= self.start or at < self.end) if overnight else self.start <= at < self.end
        if not inside:
            return None
        day = local.date() if at < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)

    def for_customer(
        self, address: str | None, set_zone: str | None
    ) -> tuple[QuietHours, str | None]:
        """These rules and the address that decide the customer's zone (the arguments of
        :meth:`hold_until` and :func:`time_zone_of`), given the zone an agent set (None:
        none): a set zone comes first, before the phone number's and the default."""
        if set_zone:
            return replace(self, default_zone=set_zone), None
        return self, address

    def hold_until(
        self, now: datetime, last_inbound_at: datetime | None, address: str | None
    ) -> datetime | None:
        """Until when a non-urgent message to ``address`` waits (None: it goes now): the end
        of the quiet period in the customer's zone, unless they wrote within ``awake_window``."""
        if last_inbound_at is not None and now - last_inbound_at <= self.awake_window:
            return None
        return self.until(now, time_zone_of(address, self.default_zone))


def time_zone_of(address: str | None, default: str | None) -> ZoneInfo | None:
    """The customer's zone: from the phone number when it has exactly one, else the default."""
    name = default
    if address and address.startswith("phone:"):
        try:
            zones = phone_timezones.time_zones_for_number(phonenumbers.parse(address[6:]))
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1 and zones[0] != "Etc/Unknown":
            name = zones[0]
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_for(set_zone: str | None, phone: str | None, default: str | None) -> ZoneInfo:
    """A customer's zone for scheduling: the one an agent set, else their phone number's
    (when it has exactly one), else ``default``, else UTC."""
    if set_zone:
        try:
            return ZoneInfo(set_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return time_zone_of(phone, default) or ZoneInfo("UTC")


def local_due(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``at`` o'clock on ``day`` in ``zone``, in UTC. A time the clocks skip (the spring DST
    gap) moves forward by the gap; a time they pass twice (autumn) is its first instant."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def refusal_of(
    policy: ChannelPolicy,
    customer: Customer,
    conversation: Conversation,
    channel: str,
    now: datetime,
    has_template: bool,
    purpose: str = "service",
    rules: ConsentRules = DEFAULT_RULES,
) -> tuple[str, str] | None:
    """Why a message on ``channel`` sent for ``purpose`` may not go out now: (code, human
    reason), or None.

    - the channel is off (no connector, or it cannot send);
    - the customer's consent for (channel, purpose) is not given: ``consent_revoked`` when
      withdrawn (SMS STOP, a hard bounce, an unsubscribe link), ``consent_missing`` when
      the purpose needs a grant the ledger does not hold (marketing without an opt-in;
      ``rules``: the configured default rules);
    - the channel allows free text only within a time of the customer's last message
      (WhatsApp's 24 hours) and that time is over: only a template may go out.
    """
    unavailable = policy.unavailable(channel)
    if unavailable is not None:
        return "channel_unavailable", unavailable
    consent = customer.consent_decision(channel, purpose, rules)
    if not consent.granted:
        if purpose == "service" and not consent.default:
            return "consent_revoked", f"the customer withdrew consent for {channel} messages"
        if not consent.default:
            return (
                "consent_revoked",
                f"the customer withdrew consent for {purpose} messages on {channel}",
            )
        return (
            "consent_missing",
            f"the customer has not given consent for {purpose} messages on {channel}",
        )
    window = policy.service_window(channel)
    if window is not None and not has_template:
        last = conversation.last_inbound_at
        if last is None or now - last > window:
            hours = window.total_seconds() / 3600
            seen = last.isoformat() if last else "never"
            return (
                "outside_service_window",
                f"{channel} allows free-text replies only within {hours:g} hours of the "
                f"customer's last message (last: {seen}); send an approved template instead",
            )
    return None


@dataclass(frozen=True)
class Send:
    """Send this now (after ``attempt`` was recorded as started)."""

    message_id: UUID
    channel: str
    address: str
    text: str
    subject: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    template: dict[str, Any] | None
    status_callback_url: str | None
    attempt: int
    #: The signed unsubscribe link the message carries (email: ``List-Unsubscribe``).
    unsubscribe_url: str | None = None
    #: An email's HTML alternative (a template's), besides the plain ``text``.
    html: str | None = None


@dataclass(frozen=True)
class Hold:
    """Not now: try again at ``until``."""

    until: datetime


@dataclass(frozen=True)
class Done:
    """Nothing to send (sent, refused, settled, or left for reconciliation)."""

    outcome: str


Decision = Send | Hold | Done


@dataclass(frozen=True)
class ChannelOption:
    """Whether an agent's reply can go out on ``channel`` now, and if not, why."""

    channel: str
    refusal: str | None  # the code a reply would be refused with (consent_revoked, ...)
    reason: str | None  # the same, for people
    held_until: datetime | None  # quiet hours: a non-urgent reply waits until then

    @classmethod
    def of(
        cls, channel: str, refusal: tuple[str, str] | None, held_until: datetime | None
    ) -> ChannelOption:
        """The option :func:`refusal_of`'s answer makes (None: available)."""
        code, reason = refusal if refusal is not None else (None, None)
        return cls(channel, code, reason, held_until)

    @property
    def available(self) -> bool:
        return self.refusal is None
