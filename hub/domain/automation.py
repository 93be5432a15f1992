"""Scheduled and automated messages, the model: every planned send is an :class:`Occurrence`
whose id derives from a deterministic key (docs/automation.md lists the keys), so planning it
again, a replay, a restart or a second scheduler finds the one already there. What is done
with occurrences (scheduling, firing, cancelling, dry runs) is ``hub.domain.scheduling``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

if TYPE_CHECKING:
    from hub.domain.rendering import Rendered

__all__ = [
    "ACTIONS",
    "AUTO_PREFIX",
    "SOURCE_KINDS",
    "FrequencyCap",
    "Occurrence",
    "OccurrenceSpec",
    "Outcome",
    "Plan",
    "Source",
    "cap_id",
    "occurrence_id",
]

_NAMESPACE = UUID("5d0f3c2e-8a41-4f7b-b7f3-1c9e0a6d2b84")
#: What an occurrence does when it fires.
ACTIONS = ("send", "reopen")
#: Why an occurrence exists.
SOURCE_KINDS = ("api", "rule", "campaign", "followup", "reminder", "survey")
#: The provider id prefix of automated messages (after ``REPLY_PREFIX``: they are the hub's).
AUTO_PREFIX = "auto:"


def occurrence_id(key: str) -> UUID:
    """The id of the occurrence with this key: the same key is always the same occurrence."""
    return uuid5(_NAMESPACE, key)


def cap_id(customer_id: UUID) -> UUID:
    """The id of the customer's :class:`FrequencyCap`."""
    return uuid5(_NAMESPACE, f"frequency-cap:{customer_id}")


@dataclass(frozen=True)
class Source:
    """Why a message exists: an API call, a rule, a campaign, a follow-up, a reminder or a
    survey (``id``: its kind, csat or nps)."""

    kind: str
    id: str
    name: str | None = None


@dataclass(frozen=True)
class Plan:
    """What to send: a template or a text, for a purpose, on the first channel of
    ``channels`` that reaches the customer (or, ``action="reopen"``, no message at all: the
    conversation comes back to the queue)."""

    purpose: str = "service"
    channels: tuple[str, ...] = ()
    template: str | None = None
    text: str | None = None
    subject: str | None = None
    action: str = "send"


@dataclass(frozen=True)
class OccurrenceSpec:
    """One occurrence to schedule. ``key`` makes it unique (docs/automation.md lists the
    keys of each kind); ``due_at`` is aware."""

    key: str
    customer_id: UUID
    due_at: datetime
    plan: Plan
    source: Source
    conversation_id: UUID | None = None
    #: Follow-ups: skipped if the customer wrote after this time.
    unless_replied_since: datetime | None = None
    #: The triggering event's envelope (``{{ event.data... }}`` in templates).
    event: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What firing an occurrence did (or, in a dry run, would do)."""

    decision: str  # "send", "reopen", "skip", or "none" (it had fired, or was cancelled)
    channel: str | None = None
    code: str | None = None
    reason: str | None = None
    message_id: UUID | None = None
    rendered: Rendered | None = None


class Occurrence(Aggregate):
    """One planned send (internal bookkeeping is its state; its events are published as
    ``scheduled_message.*.v1`` on the customer's timeline)."""

    @staticmethod
    def create_id(key: str, **_: Any) -> UUID:
        return occurrence_id(key)

    @event("Scheduled")
    def __init__(
        self,
        key: str,
        customer_id: UUID,
        due_at: datetime,
        plan: dict[str, Any],
        source: dict[str, Any],
        conversation_id: UUID | None,
        unless_replied_since: datetime | None,
        context: str | None,
        actor: str | None,
        correlation_id: UUID,
    ) -> None:
        """``plan``: :class:`Plan` as a dict, its ``text`` and ``subject`` encrypted with the
        customer's key; ``context``: the triggering event, encrypted JSON."""
        self.key = key
        self.customer_id = customer_id
        self.due_at = due_at
        self.plan = plan
        self.source = source
        self.conversation_id = conversation_id
        self.unless_replied_since = unless_replied_since
        self.context = context
        self.state = "scheduled"
        self.message_id: UUID | None = None
        #: Skipped: why (a code and words); queued: the channel it went out on.
        self.code: str | None = None
        self.reason: str | None = None
        self.channel: str | None = None

    @event("Cancelled")
    def cancel(self, actor: str | None, customer_id: UUID, correlation_id: UUID) -> None:
        self.state = "cancelled"

    @event("Skipped")
    def skip(
        self,
        code: str,
        reason: str,
        occurred_at: datetime,
        source: dict[str, Any],
        customer_id: UUID,
        correlation_id: UUID,
    ) -> None:
        self.state = "skipped"
        self.code = code
        self.reason = reason

    @event("Queued")
    def queue(
        self,
        message_id: UUID | None,
        channel: str | None,
        template_version: int | None,
        occurred_at: datetime,
        source: dict[str, Any],
        customer_id: UUID,
        correlation_id: UUID,
    ) -> None:
        """Fired: ``message_id`` is the message the dispatcher now sends (None for a
        reminder, which reopened the conversation instead)."""
        self.state = "queued"
        self.message_id = message_id
        self.channel = channel

    @property
    def pending(self) -> bool:
        return self.state == "scheduled"


class FrequencyCap(Aggregate):
    """The marketing messages an occurrence queued for one customer lately: the cap is
    counted here, and two schedulers queuing for the same customer at once conflict on its
    version, so neither passes the cap (internal)."""

    @staticmethod
    def create_id(customer_id: UUID, **_: Any) -> UUID:
        return cap_id(customer_id)

    @event("Started")
    def __init__(self, customer_id: UUID) -> None:
        self.sent: list[datetime] = []

    @event("Counted")
    def count(self, at: datetime, keep_after: datetime) -> None:
        self.sent = [t for t in self.sent if t > keep_after] + [at]

    def within(self, since: datetime) -> int:
        return sum(1 for t in self.sent if t > since)
