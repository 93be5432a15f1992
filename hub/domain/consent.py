"""Consent as a ledger: the rules that decide it, and reading it back.

Each change of a customer's consent is a ``Customer.ConsentChanged`` event: a line of the
ledger with the channel, the purposes it covers, granted or withdrawn, its SOURCE (one of
:data:`SOURCES`), its EVIDENCE (the message that carried it, the double opt-in request it
confirms, and free text from an agent or a system, encrypted under the customer's key) and
its time. A double opt-in request (an agent or the API granted email marketing: the customer
must confirm through a signed link) is a ``Customer.ConsentRequested`` event, which grants
nothing until the customer confirms it.

The default rules (:class:`ConsentRules`, configured by ``HUB_CONSENT__*``) decide a
(channel, purpose) no ledger line decides:

- ``service`` (replies in a conversation the customer started) is granted by the customer
  writing to you, on every channel that reaches them; STOP, an unsubscribe link, a bounce or
  a provider's opt-out withdraws it, and only a new explicit grant gives it back;
- ``marketing`` (anything the hub starts on its own) and every configured purpose need an
  explicit opt-in, unless configured as granted by contact;
- on the double opt-in channels (email by default) an opt-in purpose granted by an agent or
  the API waits for the customer's confirmation (source ``double_opt_in``).

:func:`consent_history` reads the ledger of a merge group from the stored events (so the
export and the API show the same lines) and :func:`consent_state` folds it into the state per
channel and purpose. This module knows the events by name only: the aggregate
(``hub.domain.model.Customer``) uses its rules, not the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

from eventsourcing.persistence import EventStore

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import DomainError, InvalidCommand

__all__ = [
    "BUILT_IN_PURPOSES",
    "CHANNELS",
    "DEFAULT_RULES",
    "OUTSIDE_SOURCES",
    "PURPOSE_NAME",
    "SOURCES",
    "ConfirmationExpired",
    "ConsentCell",
    "ConsentChange",
    "ConsentConfig",
    "ConsentDecision",
    "ConsentEntry",
    "ConsentRequest",
    "ConsentRules",
    "LedgerSource",
    "PurposeConfig",
    "consent_history",
    "consent_state",
    "source_of",
]

#: The channels consent is kept for.
CHANNELS: tuple[str, ...] = (
    "sms",
    "whatsapp",
    "email",
    "telegram",
    "messenger",
    "instagram",
    "chat",
)
#: Purposes every hub has: replies the customer expects, and what the hub starts on its own.
BUILT_IN_PURPOSES: tuple[str, ...] = ("service", "marketing")
#: What a configured purpose's name may look like.
PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

#: Where a ledger line comes from (a closed set; docs/consent.md describes each):
SOURCES: dict[str, str] = {
    "keyword": "the customer sent a keyword (SMS STOP, START...)",
    "unsubscribe_link": "the customer used an unsubscribe link (List-Unsubscribe)",
    "bounce": "the address bounced for good (a hard email bounce)",
    "provider_opt_out": "the provider reports the recipient opted out (e.g. Twilio 21610)",
    "agent": "an agent, in the console or with an agent token",
    "api": "a system, through the API",
    "import": "records brought from another system (admin tokens only)",
    "double_opt_in": "the customer confirmed a request through the link the hub sent",
}
#: The sources a client of the API (or the console) may give.
OUTSIDE_SOURCES: tuple[str, ...] = ("agent", "api", "import")
#: Sources whose grant of an opt-in purpose on a double opt-in channel waits for the customer.
_CONFIRMED_BY_CUSTOMER = frozenset({"agent", "api"})


def source_of(source: str | None, reason: str, channel: str) -> str:
    """The source of a ledger line: as recorded, or for a line recorded before sources
    existed (or without one), derived from its ``reason``."""
    if source:
        return source
    if reason.startswith(("sms_keyword:", "keyword:")):
        return "keyword"
    if "unsubscribe" in reason:
        return "unsubscribe_link"
    if reason.startswith("provider:"):
        return "bounce" if channel == "email" else "provider_opt_out"
    if reason in SOURCES:
        return reason
    return "agent"


class PurposeConfig(Protocol):
    """What a configured purpose says (``hub.config.PurposeSettings``)."""

    @property
    def granted_by_contact(self) -> bool: ...


class ConsentConfig(Protocol):
    """What the rules are configured from (``hub.config.ConsentSettings``)."""

    @property
    def purposes(self) -> Mapping[str, PurposeConfig]: ...
    @property
    def double_opt_in_email(self) -> bool: ...
    @property
    def confirmation_days(self) -> float: ...


@dataclass(frozen=True)
class ConsentRules:
    """The default rules: which purposes exist, which the customer grants by writing to you,
    and where a grant needs the customer's confirmation."""

    extra_purposes: tuple[str, ...] = ()
    granted_by_contact: frozenset[str] = frozenset({"service"})
    double_opt_in_channels: frozenset[str] = frozenset({"email"})
    confirmation_ttl: timedelta = timedelta(days=7)

    @classmethod
    def configured(cls, config: ConsentConfig) -> ConsentRules:
        """The rules of a configuration (``settings.consent``)."""
        extra = {n: p for n, p in config.purposes.items() if n not in BUILT_IN_PURPOSES}
        return cls(
            extra_purposes=tuple(extra),
            granted_by_contact=frozenset(
                {"service", *(n for n, p in extra.items() if p.granted_by_contact)}
            ),
            double_opt_in_channels=frozenset({"email"} if config.double_opt_in_email else ()),
            confirmation_ttl=timedelta(days=config.confirmation_days),
        )

    @property
    def purposes(self) -> tuple[str, ...]:
        """Every purpose: the built-in ones first, then the configured ones."""
        return BUILT_IN_PURPOSES + self.extra_purposes

    def default(self, purpose: str) -> bool:
        """Whether ``purpose`` is granted when no ledger line decides it."""
        return purpose in self.granted_by_contact

    def rule(self, purpose: str) -> str:
        """The name of the default rule for ``purpose``: ``first_contact`` (granted by the
        customer writing to you) or ``opt_in_required``."""
        return "first_contact" if self.default(purpose) else "opt_in_required"

    def needs_confirmation(self, channel: str, purpose: str, source: str) -> bool:
        """Whether a grant of ``purpose`` on ``channel`` from ``source`` waits for the
        customer's confirmation (double opt-in) instead of granting at once."""
        return (
            source in _CONFIRMED_BY_CUSTOMER
            and channel in self.double_opt_in_channels
            and not self.default(purpose)
        )

    def check(self, channel: str, purposes: Iterable[str], source: str | None = None) -> None:
        """:class:`InvalidCommand` for a channel, purpose or source the hub does not know."""
        if channel not in CHANNELS:
            raise InvalidCommand(
                f"consent is kept for {', '.join(CHANNELS)}, not {channel!r}", channel=channel
            )
        unknown = [p for p in purposes if p not in self.purposes]
        if unknown:
            raise InvalidCommand(
                f"unknown purpose {unknown[0]!r}: one of {', '.join(self.purposes)}",
                purpose=unknown[0],
            )
        if source is not None and source not in SOURCES:
            raise InvalidCommand(f"unknown consent source {source!r}", source=source)


DEFAULT_RULES = ConsentRules()


class ConfirmationExpired(DomainError):
    """A double opt-in request the customer did not confirm in time."""

    code = "confirmation_expired"
    status = 410


@dataclass(frozen=True)
class ConsentRequest:
    """A double opt-in request: ``purposes`` on ``channel`` wait for the customer's
    confirmation until ``expires_at`` (``state``: pending, confirmed or cancelled)."""

    customer_id: UUID
    request_id: UUID
    channel: str
    purposes: tuple[str, ...]
    expires_at: datetime
    state: str = "pending"


@dataclass(frozen=True)
class ConsentChange:
    """What :meth:`OutboundCommands.change_consent` recorded: the customers it recorded on,
    and the double opt-in requests that wait for the customer."""

    recorded_on: tuple[UUID, ...]
    requests: tuple[ConsentRequest, ...]


@dataclass(frozen=True)
class ConsentDecision:
    """Whether a customer allows (channel, purpose) now, and what decided it: a ledger line
    (the customer's id and the event's version, its source) or the default rule."""

    granted: bool
    default: bool
    rule: str  # "ledger" (a line decided it), or the default rule's name
    customer_id: UUID | None = None
    version: int | None = None


@dataclass(frozen=True)
class ConsentEntry:
    """One line of the ledger as a reader sees it. ``kind`` ``change``: consent granted or
    withdrawn; ``request``: a double opt-in request (granted nothing by itself), with its
    ``status`` (pending, confirmed, cancelled by a later withdrawal, expired)."""

    customer_id: UUID
    version: int
    kind: Literal["change", "request"]
    channel: str
    purposes: tuple[str, ...]
    granted: bool
    source: str
    evidence: str | None  # free text from an agent or a system (decrypted; None: erased/none)
    message_id: UUID | None  # the message that carried it (a STOP, a bounced email)
    request_id: UUID | None  # the double opt-in request it is or confirms
    actor: str | None
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = None
    status: str | None = None  # requests only


@dataclass(frozen=True)
class ConsentCell:
    """The state of one (channel, purpose): granted or not, decided by a ledger line or by
    the default rule, and a double opt-in request waiting for the customer, if any."""

    channel: str
    purpose: str
    granted: bool
    default: bool
    rule: str
    decided_by: ConsentEntry | None = None
    pending: ConsentEntry | None = field(default=None)


class LedgerSource(Protocol):
    """Where the ledger is read from: the hub application (its event store and cipher)."""

    @property
    def events(self) -> EventStore[UUID]: ...
    @property
    def cipher(self) -> PersonalDataCipher: ...


_CHANGED = "Customer.ConsentChanged"
_REQUESTED = "Customer.ConsentRequested"


def consent_history(
    app: LedgerSource, customer_ids: Sequence[UUID], now: datetime | None = None
) -> list[ConsentEntry]:
    """Every ledger line of these customers (a merge group's members), oldest first, read
    from the stored events; evidence text decrypted (None once a customer was erased)."""
    entries: list[ConsentEntry] = []
    for customer_id in dict.fromkeys(customer_ids):
        for event in app.events.get(customer_id):
            name = type(event).__qualname__
            if name == _CHANGED:
                entries.append(_entry(event, "change", app.cipher))
            elif name == _REQUESTED:
                entries.append(_entry(event, "request", app.cipher))
    entries.sort(key=lambda e: (e.recorded_at, e.version))
    return _with_request_status(entries, now or datetime.now(UTC))


def _entry(
    event: Any, kind: Literal["change", "request"], cipher: PersonalDataCipher
) -> ConsentEntry:
    cid: UUID = event.originator_id
    evidence = getattr(event, "evidence", None)
    if kind == "request":
        return ConsentEntry(
            customer_id=cid,
            version=event.originator_version,
            kind=kind,
            channel=event.channel,
            purposes=tuple(event.purposes),
            granted=True,
            source=event.source,
            evidence=cipher.decrypt(cid, evidence) if evidence else None,
            message_id=None,
            request_id=event.request_id,
            actor=event.actor,
            occurred_at=event.requested_at,
            recorded_at=event.timestamp,
            expires_at=event.expires_at,
        )
    return ConsentEntry(
        customer_id=cid,
        version=event.originator_version,
        kind=kind,
        channel=event.channel,
        purposes=tuple(event.purposes),
        granted=event.granted,
        source=source_of(getattr(event, "source", ""), event.reason, event.channel),
        evidence=cipher.decrypt(cid, evidence) if evidence else None,
        message_id=event.message_id,
        request_id=getattr(event, "request_id", None),
        actor=event.actor,
        occurred_at=event.occurred_at,
        recorded_at=event.timestamp,
    )


def _with_request_status(entries: list[ConsentEntry], now: datetime) -> list[ConsentEntry]:
    """Requests marked confirmed, cancelled (a later withdrawal of one of their purposes on
    the channel, by the same customer) or expired; pending otherwise."""
    status: dict[UUID, str] = {}
    open_requests: dict[UUID, ConsentEntry] = {}
    for entry in entries:
        if entry.kind == "request" and entry.request_id is not None:
            open_requests[entry.request_id] = entry
            continue
        if entry.request_id is not None and entry.request_id in open_requests:
            status[entry.request_id] = "confirmed"
            del open_requests[entry.request_id]
        elif not entry.granted:
            for rid, request in list(open_requests.items()):
                if (
                    request.customer_id == entry.customer_id
                    and request.channel == entry.channel
                    and set(request.purposes) & set(entry.purposes)
                ):
                    status[rid] = "cancelled"
                    del open_requests[rid]
    result = []
    for entry in entries:
        if entry.kind == "request" and entry.request_id is not None:
            found = status.get(entry.request_id)
            if found is None:
                expired = entry.expires_at is not None and entry.expires_at <= now
                found = "expired" if expired else "pending"
            entry = replace(entry, status=found)
        result.append(entry)
    return result


def consent_state(
    history: Sequence[ConsentEntry],
    rules: ConsentRules = DEFAULT_RULES,
    channels: Sequence[str] = CHANNELS,
) -> list[ConsentCell]:
    """The state per channel and purpose that a history (:func:`consent_history`, oldest
    first) leaves: the latest line for each decides it, across every member of a merge group;
    where none does, the default rule, marked ``default``. A request still pending shows as
    ``pending`` and grants nothing."""
    decided: dict[tuple[str, str], ConsentEntry] = {}
    pending: dict[tuple[str, str], ConsentEntry] = {}
    for entry in history:
        for purpose in entry.purposes:
            key = (entry.channel, purpose)
            if entry.kind == "change":
                decided[key] = entry
            elif entry.status == "pending":
                pending[key] = entry
    cells = []
    for channel in channels:
        for purpose in rules.purposes:
            line = decided.get((channel, purpose))
            waiting = pending.get((channel, purpose))
            if waiting is not None and line is not None and line.recorded_at > waiting.recorded_at:
                waiting = None  # decided after the request (a grant from elsewhere)
            if line is None:
                cells.append(
                    ConsentCell(
                        channel,
                        purpose,
                        rules.default(purpose),
                        True,
                        rules.rule(purpose),
                        None,
                        waiting,
                    )
                )
            else:
                cells.append(
                    ConsentCell(channel, purpose, line.granted, False, line.source, line, waiting)
                )
    return cells
