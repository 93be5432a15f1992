"""Was this message lawful when it was sent? The basis of each dispatch decision, recorded
in the message's own events when the decision is made, and the answer read back from them.

When the dispatcher decides a queued message (``DispatchCommands.prepare_dispatch``), it
records with the decision (on ``DispatchStarted`` for a send, ``DispatchDeferred`` for a hold,
``DeliveryUpdated`` for a refusal) what it decided on, as the :func:`dispatch_basis` dict:

- the purpose the message is sent for, and the consent the customer's ledger gave for
  (channel, purpose) at that moment, with the entry that decided it: the customer id and the
  version of its ``ConsentChanged`` event, or the default rule when no entry decides;
- quiet hours in the customer's zone at that moment: the zone, the local time, whether it was
  quiet, whether the message was held, or went anyway (urgent; the customer wrote within the
  awake window);
- the channel's service window (WhatsApp's 24 hours): its length, the customer's last message,
  whether a template was used;
- whether the channel was on, and the refusal, if any.

:func:`lawfulness_of` answers from a message's stored events only, never from today's state:
a later consent change, a merge, a rebuild of the views or an erasure leaves the answer about
a past send as it was. The basis holds ids, codes and times, nothing personal, so the answer
outlives an erasure of the customer's personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import EventStore

from hub.domain.consent import DEFAULT_RULES, ConsentRules, source_of
from hub.domain.ids import uuid7
from hub.domain.model import Conversation, Customer
from hub.domain.policy import ChannelPolicy, QuietHours, time_zone_of

__all__ = [
    "BASIS_VERSION",
    "ConsentAtDispatch",
    "DispatchDecision",
    "Lawfulness",
    "LedgerEntry",
    "QuietHoursAtDispatch",
    "ServiceWindowAtDispatch",
    "dispatch_basis",
    "lawfulness_in",
    "lawfulness_of",
    "refusal_basis",
]

#: The shape of the recorded basis; a reader meeting a newer one reads what it knows.
BASIS_VERSION = 1

#: Loads one event of an aggregate: (aggregate id, version) -> the stored event, or None.
EventAt = Callable[[UUID, int], Any]


# -- what the dispatcher records -----------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dispatch_basis(
    *,
    decision: str,
    now: datetime,
    purpose: str,
    policy: ChannelPolicy,
    quiet: QuietHours,
    customer: Customer,
    conversation: Conversation,
    channel: str,
    address: str | None,
    urgent: bool,
    has_template: bool,
    refusal: tuple[str, str] | None = None,
    held_until: datetime | None = None,
    rules: ConsentRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """What the dispatcher decided ``decision`` (``send``, ``hold`` or ``refuse``) on, as
    JSON for the decision's event (ids as strings, times in ISO 8601, no personal data)."""
    consent = customer.consent_decision(channel, purpose, rules)
    window = policy.service_window(channel)
    last = conversation.last_inbound_at
    zone = time_zone_of(address, quiet.default_zone)
    quiet_now = quiet.until(now, zone) is not None
    awake = last is not None and now - last <= quiet.awake_window
    return {
        "v": BASIS_VERSION,
        "at": now.isoformat(),
        "decision": decision,
        "purpose": purpose,
        "channel": channel,
        "customer_id": str(customer.id),
        "refusal": list(refusal) if refusal else None,
        "channel_unavailable": policy.unavailable(channel),
        "consent": {
            "granted": consent.granted,
            # "ledger": a ledger line decided; else the default rule's name
            "rule": consent.rule,
            "customer_id": str(consent.customer_id or customer.id),
            "version": consent.version if not consent.default else None,
        },
        "window": {
            "hours": window.total_seconds() / 3600 if window is not None else None,
            "last_inbound_at": _iso(last),
            "template": has_template,
            "open": None if window is None else (last is not None and now - last <= window),
        },
        "quiet": {
            "start": quiet.start.isoformat("minutes") if quiet.start is not None else None,
            "end": quiet.end.isoformat("minutes"),
            "zone": zone.key if zone is not None else None,
            "local_time": now.astimezone(zone).isoformat() if zone is not None else None,
            "quiet": quiet_now,
            "urgent": urgent,
            "awake": awake,
            "awake_window_minutes": quiet.awake_window.total_seconds() / 60,
            "held_until": _iso(held_until),
        },
    }


def refusal_basis(now: datetime, purpose: str, code: str, reason: str) -> dict[str, Any]:
    """The basis of a refusal decided before any rule was weighed (the customer was erased)."""
    return {
        "v": BASIS_VERSION,
        "at": now.isoformat(),
        "decision": "refuse",
        "purpose": purpose,
        "refusal": [code, reason],
    }


# -- the answer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """The consent ledger entry that decided: a ``ConsentChanged`` event of ``customer_id``
    at ``version``; ``event_id`` is the id its ``customer.consent_changed.v1`` envelope has."""

    customer_id: UUID
    version: int
    event_id: UUID | None = None
    granted: bool | None = None
    purposes: tuple[str, ...] = ()
    reason: str | None = None
    source: str | None = None
    evidence_message_id: UUID | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ConsentAtDispatch:
    purpose: str
    granted: bool
    rule: str  # "ledger": an entry decided; else the default rule (first_contact, opt_in_required)
    entry: LedgerEntry | None


@dataclass(frozen=True)
class QuietHoursAtDispatch:
    start: str | None  # None: the hub had no quiet hours configured
    end: str
    zone: str | None  # None: the customer's zone was unknown (no quiet hours applied)
    local_time: datetime | None
    quiet: bool  # the local time fell in quiet hours
    urgent: bool
    awake: bool  # the customer had written within the awake window
    awake_window_minutes: float
    held_until: datetime | None
    effect: str  # off, no_zone, outside, held, urgent_override, awake_override


@dataclass(frozen=True)
class ServiceWindowAtDispatch:
    hours: float | None  # None: the channel has no service window
    last_inbound_at: datetime | None
    template: bool
    open: bool | None


@dataclass(frozen=True)
class DispatchDecision:
    """One recorded decision of the dispatcher about the message, with its basis."""

    at: datetime
    decision: str  # send, hold, refuse
    attempt: int | None
    purpose: str
    channel_unavailable: str | None
    refusal_code: str | None
    refusal_reason: str | None
    consent: ConsentAtDispatch | None
    quiet_hours: QuietHoursAtDispatch | None
    service_window: ServiceWindowAtDispatch | None


@dataclass(frozen=True)
class Lawfulness:
    """What the log says about one message's dispatch (see :func:`lawfulness_of`)."""

    message_id: UUID
    customer_id: UUID
    conversation_id: UUID
    channel: str
    direction: str
    sent_by_hub: bool
    #: sent, refused, failed, held, queued, or not_sent_by_hub
    outcome: str
    status: str
    summary: str
    purpose: str | None = None
    requested_at: datetime | None = None
    requested_by: str | None = None
    urgent: bool | None = None
    template: bool | None = None
    #: For a scheduled or automated message: what planned it (the occurrence, its rule or
    #: campaign, the template and its version), as recorded with the dispatch request.
    automation: dict[str, Any] | None = None
    #: Whether the decision basis was recorded (False: sent before the hub recorded it).
    basis_recorded: bool = False
    #: The decision that counts: the send that went out, the refusal, the latest hold.
    decided: DispatchDecision | None = None
    decisions: list[DispatchDecision] = field(default_factory=list)
    refusal_code: str | None = None
    refusal_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _entry(customer_id: UUID, version: int, event_at: EventAt | None) -> LedgerEntry:
    event = event_at(customer_id, version) if event_at is not None else None
    if event is None or type(event).__qualname__ != "Customer.ConsentChanged":
        return LedgerEntry(customer_id=customer_id, version=version)
    evidence = getattr(event, "message_id", None)
    return LedgerEntry(
        customer_id=customer_id,
        version=version,
        event_id=uuid7(
            event.timestamp, seed=customer_id.bytes + version.to_bytes(8, "big")
        ),  # as ``hub.domain.publishing`` makes the envelope's id
        granted=bool(event.granted),
        purposes=tuple(event.purposes),
        reason=event.reason,
        source=source_of(getattr(event, "source", ""), event.reason, event.channel),
        evidence_message_id=evidence if isinstance(evidence, UUID) else None,
        occurred_at=getattr(event, "occurred_at", None),
    )


def _quiet(raw: dict[str, Any]) -> QuietHoursAtDispatch:
    held = _time(raw.get("held_until"))
    if raw.get("start") is None:
        effect = "off"
    elif raw.get("zone") is None:
        effect = "no_zone"
    elif held is not None:
        effect = "held"
    elif not raw.get("quiet"):
        effect = "outside"
    elif raw.get("urgent"):
        effect = "urgent_override"
    else:
        effect = "awake_override"
    return QuietHoursAtDispatch(
        start=raw.get("start"),
        end=str(raw.get("end", "")),
        zone=raw.get("zone"),
        local_time=_time(raw.get("local_time")),
        quiet=bool(raw.get("quiet")),
        urgent=bool(raw.get("urgent")),
        awake=bool(raw.get("awake")),
        awake_window_minutes=float(raw.get("awake_window_minutes") or 0),
        held_until=held,
        effect=effect,
    )


def _decision(
    basis: dict[str, Any], attempt: int | None, event_at: EventAt | None
) -> DispatchDecision:
    consent = basis.get("consent")
    window = basis.get("window")
    quiet = basis.get("quiet")
    refusal = basis.get("refusal") or [None, None]
    consent_at = None
    if isinstance(consent, dict):
        version = consent.get("version")
        entry = (
            _entry(UUID(consent["customer_id"]), version, event_at)
            if isinstance(version, int)
            else None
        )
        consent_at = ConsentAtDispatch(
            purpose=str(basis.get("purpose", "service")),
            granted=bool(consent.get("granted")),
            rule=str(consent.get("rule", "default")),
            entry=entry,
        )
    return DispatchDecision(
        at=_time(basis.get("at")) or datetime.min,
        decision=str(basis.get("decision")),
        attempt=attempt,
        purpose=str(basis.get("purpose", "service")),
        channel_unavailable=basis.get("channel_unavailable"),
        refusal_code=refusal[0],
        refusal_reason=refusal[1],
        consent=consent_at,
        quiet_hours=_quiet(quiet) if isinstance(quiet, dict) else None,
        service_window=(
            ServiceWindowAtDispatch(
                hours=window.get("hours"),
                last_inbound_at=_time(window.get("last_inbound_at")),
                template=bool(window.get("template")),
                open=window.get("open"),
            )
            if isinstance(window, dict)
            else None
        ),
    )


def lawfulness_of(events: Iterable[Any], event_at: EventAt | None = None) -> Lawfulness | None:
    """The answer for one message from its stored events, oldest first (None: no events).
    ``event_at`` loads a customer's ledger entry by version, to describe the one that
    decided (without it, only its customer id and version are named)."""
    recorded = None
    purpose: str | None = None
    requested_at = requested_by = None
    urgent = template = None
    automation: dict[str, Any] | None = None
    requested = False
    status = "received"
    decisions: list[DispatchDecision] = []
    sent_decision: DispatchDecision | None = None
    started: DispatchDecision | None = None
    attempted = False
    dispatched = False
    refused: DispatchDecision | None = None
    error_code = error_message = None
    for event in events:
        kind = type(event).__qualname__
        basis = getattr(event, "basis", None)
        if kind == "Message.Recorded":
            recorded = event
            status = "received" if event.direction == "inbound" else "sent"
        elif kind == "Message.DispatchRequested":
            requested = True
            purpose = getattr(event, "purpose", "service")
            requested_at = event.timestamp
            requested_by = event.author
            urgent = bool(event.urgent)
            template = event.template is not None
            automation = getattr(event, "automation", None)
            status = "queued"
        elif kind == "Message.DispatchStarted":
            attempted = True
            if isinstance(basis, dict):
                started = _decision(basis, event.attempt, event_at)
                decisions.append(started)
            else:
                started = None  # recorded before the hub recorded its decisions' basis
        elif kind == "Message.Dispatched":
            dispatched = True
            sent_decision = started
            status = event.status
        elif kind == "Message.DispatchDeferred":
            if isinstance(basis, dict):
                decisions.append(_decision(basis, None, event_at))
            if event.error_code and event.error_code != "quiet_hours":
                error_code, error_message = event.error_code, event.error_message
        elif kind == "Message.DeliveryUpdated":
            status = event.status
            if isinstance(basis, dict):
                refused = _decision(basis, None, event_at)
                decisions.append(refused)
            if event.error_code:
                error_code, error_message = event.error_code, event.error_message
    if recorded is None:
        return None
    common = {
        "message_id": recorded.originator_id,
        "customer_id": recorded.customer_id,
        "conversation_id": recorded.conversation_id,
        "channel": recorded.channel,
        "direction": recorded.direction,
        "status": status,
    }
    if not requested:
        summary = (
            "Not sent by the hub: the customer sent this message."
            if recorded.direction == "inbound"
            else "Not sent by the hub: another system sent it and reported it to the hub."
        )
        return Lawfulness(**common, sent_by_hub=False, outcome="not_sent_by_hub", summary=summary)
    decided: DispatchDecision | None
    if refused is not None:
        outcome, decided = "refused", refused
    elif dispatched:
        outcome, decided = "sent", sent_decision
    elif status in ("failed", "undelivered"):
        outcome, decided = "failed", started
    elif decisions and decisions[-1].decision == "hold":
        outcome, decided = "held", decisions[-1]
    elif attempted:
        outcome, decided = "sending", started
    else:
        outcome, decided = "queued", None
    basis_recorded = decided is not None
    return Lawfulness(
        **common,
        sent_by_hub=True,
        outcome=outcome,
        summary=_summary(outcome, decided, purpose or "service", recorded.channel),
        purpose=purpose,
        requested_at=requested_at,
        requested_by=requested_by,
        urgent=urgent,
        template=template,
        automation=automation,
        basis_recorded=basis_recorded,
        decided=decided,
        decisions=decisions,
        refusal_code=refused.refusal_code if refused is not None else None,
        refusal_reason=refused.refusal_reason if refused is not None else None,
        error_code=error_code if outcome != "refused" else None,
        error_message=error_message if outcome != "refused" else None,
    )


def _summary(outcome: str, decided: DispatchDecision | None, purpose: str, channel: str) -> str:
    """One paragraph for people (the console's "why was this sent?")."""
    head = {
        "sent": f"Sent on {channel} for the purpose {purpose!r}.",
        "refused": f"Not sent: the hub refused to send it on {channel} ({purpose!r}).",
        "failed": f"The hub tried to send it on {channel} ({purpose!r}); it failed.",
        "held": f"Held (not sent yet) on {channel} ({purpose!r}).",
        "sending": f"Being sent on {channel} ({purpose!r}).",
        "queued": f"Queued on {channel} ({purpose!r}); the dispatcher has not decided yet.",
    }[outcome]
    if decided is None:
        if outcome == "queued":
            return head
        return head + " The hub did not record the basis of this decision (sent before it did)."
    parts = [head]
    if decided.refusal_reason:
        parts.append(f"Reason: {decided.refusal_reason}.")
    consent = decided.consent
    if consent is not None:
        state = "granted" if consent.granted else "not granted"
        if consent.entry is not None:
            how = (
                f"by the consent ledger entry {consent.entry.customer_id} v{consent.entry.version}"
            )
            if consent.entry.reason:
                how += f" ({consent.entry.reason})"
        else:
            how = "by the default rule for the purpose"
        parts.append(f"Consent for {purpose!r} on {channel}: {state}, {how}.")
    quiet = decided.quiet_hours
    if quiet is not None:
        local = quiet.local_time.strftime("%H:%M") if quiet.local_time else None
        parts.append(
            {
                "off": "No quiet hours were configured.",
                "no_zone": "Quiet hours did not apply: the customer's time zone was unknown.",
                "outside": f"Outside quiet hours ({local} in {quiet.zone}).",
                "held": f"Quiet hours ({local} in {quiet.zone}): held until "
                f"{quiet.held_until.isoformat() if quiet.held_until else '?'}.",
                "urgent_override": f"Quiet hours ({local} in {quiet.zone}), sent anyway: urgent.",
                "awake_override": f"Quiet hours ({local} in {quiet.zone}), sent anyway: the "
                f"customer had written within {quiet.awake_window_minutes:g} minutes.",
            }[quiet.effect]
        )
    window = decided.service_window
    if window is not None and window.hours is not None:
        if window.template:
            parts.append(f"{window.hours:g}-hour service window: an approved template was used.")
        elif window.open:
            parts.append(f"Within the {window.hours:g}-hour service window.")
        else:
            parts.append(f"Outside the {window.hours:g}-hour service window.")
    return " ".join(parts)


def lawfulness_in(events: EventStore[UUID], message_id: UUID) -> Lawfulness | None:
    """The answer for ``message_id`` read from the event store (None: no such message):
    the message's events, and the ledger entry that decided each recorded decision."""

    def event_at(aggregate_id: UUID, version: int) -> Any:
        return next(iter(events.get(aggregate_id, gt=version - 1, lte=version)), None)

    return lawfulness_of(events.get(message_id), event_at)
