"""The event rules' planner: follows the published events in the store's log and schedules,
for each event that matches an enabled rule, one occurrence (``rule:{rule_id}:{event id}``)
due ``delay`` after the event occurred.

Its position in the log is a named row of its own (``hub.store.lease``, ``automation-events``),
moved after each batch is scheduled: a crash schedules that batch again, which finds the keys
already there. While no event rule is enabled the position jumps to the log's head, so a new
rule starts from about when it was defined; events recorded before a rule was defined never
trigger it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from hub.domain.automation import OccurrenceSpec
from hub.domain.automations import EVENT, AutomationRecord, Definition
from hub.domain.consent import ConsentRules
from hub.domain.errors import NotFound
from hub.events import Envelope
from hub.events.segments import Filter
from hub.projections.segment_filter import FilterContext
from hub.runtime.automation.audience import in_segment
from hub.runtime.automation.specs import event_key, plan_of, schedule, source_of
from hub.runtime.automation.timing import GRACE
from hub.store import Store
from hub.store.lease import LeaseLost, LogLease

__all__ = ["LEASE_NAME", "EventRulePlanner", "event_matches"]

log = logging.getLogger(__name__)

LEASE_NAME = "automation-events"
#: Longer than a planning round: a second scheduler's planner waits this long to take over.
LEASE_SECONDS = 120.0


def _at(data: Any, path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(data, dict) or name not in data:
            return None
        data = data[name]
    return data


def event_matches(definition: Definition, envelope: Envelope, body: dict[str, Any]) -> bool:
    """Whether the event (``body``: its JSON form) triggers the rule: its type, and each
    condition of ``match`` (a list holds the value, anything else equals it)."""
    if envelope.type != definition.event_type or envelope.erased:
        return False
    for path, expected in definition.match.items():
        value = _at(body, path.split("."))
        if isinstance(value, list):
            if expected not in value:
                return False
        elif value != expected:
            return False
    return True


class EventRulePlanner:
    """Schedules the occurrences of event rules as their events arrive (a
    ``hub.runtime.scheduler.Planner``)."""

    name = "event rules"

    def __init__(
        self,
        store: Store,
        views: Engine,
        consent: ConsentRules,
        *,
        batch_size: int = 500,
        max_batches: int = 20,
        grace: timedelta = GRACE,
    ) -> None:
        self._store = store
        self._app = store.app
        self._views = views
        self._granted_by_contact = consent.granted_by_contact
        self._batch_size = batch_size
        self._max_batches = max_batches
        self._grace = grace
        owner = f"{LEASE_NAME}-{uuid.uuid4().hex[:12]}"
        self._lease = LogLease(store.state_engine, LEASE_NAME, owner, LEASE_SECONDS)
        #: The last round stopped at ``max_batches`` with events still to read: the
        #: scheduler runs it again at once rather than after its interval.
        self.behind = False

    def plan(self, now: datetime) -> int:
        try:
            return self._plan(now)
        except LeaseLost:  # another scheduler's planner took over meanwhile
            return 0

    def _plan(self, now: datetime) -> int:
        self.behind = False
        if not self._lease.acquire():
            return 0
        rules = [r for r in self._app.automations.all(EVENT) if r.definition.enabled]
        position = self._lease.position()
        if not rules:
            head = self._app.recorder.max_notification_id() or 0
            self._lease.advance(max(head, position))
            return 0
        new = 0
        self.behind = True
        for _ in range(self._max_batches):
            envelopes, last = self._store.read_envelopes(position, self._batch_size)
            if last == position:
                self.behind = False
                break
            new += schedule(self._app, self.specs(rules, envelopes, now))
            self._lease.advance(last)
            position = last
        return new

    def specs(
        self, rules: Sequence[AutomationRecord], envelopes: Sequence[Envelope], now: datetime
    ) -> list[OccurrenceSpec]:
        """The occurrences these events trigger."""
        wanted = {r.definition.event_type for r in rules}
        found: list[tuple[AutomationRecord, Envelope, dict[str, Any]]] = []
        for envelope in envelopes:
            if envelope.type not in wanted or envelope.erased:
                continue
            body = envelope.model_dump(mode="json")
            for rule in rules:
                d = rule.definition
                due = envelope.occurred_at + d.delay
                if (
                    envelope.recorded_at >= rule.created_at
                    and due >= now - self._grace
                    and event_matches(d, envelope, body)
                ):
                    found.append((rule, envelope, body))
        allowed = self._in_segments(found, now)
        specs = []
        for rule, envelope, body in found:
            if (rule.automation_id, envelope.customer_id) not in allowed:
                continue
            conversation = _at(body, ("data", "conversation_id"))
            specs.append(
                OccurrenceSpec(
                    key=event_key(rule.automation_id, envelope.id),
                    customer_id=envelope.customer_id,
                    due_at=envelope.occurred_at + rule.definition.delay,
                    plan=plan_of(rule),
                    source=source_of(rule),
                    conversation_id=UUID(conversation) if isinstance(conversation, str) else None,
                    event=body,
                )
            )
        return specs

    def _in_segments(
        self, found: Sequence[tuple[AutomationRecord, Envelope, dict[str, Any]]], now: datetime
    ) -> set[tuple[UUID, UUID]]:
        """(rule, customer) of the matches whose customer meets the rule's segment, if any."""
        allowed: set[tuple[UUID, UUID]] = set()
        by_rule: dict[UUID, tuple[AutomationRecord, set[UUID]]] = {}
        for rule, envelope, _ in found:
            if rule.definition.segment_id is None:
                allowed.add((rule.automation_id, envelope.customer_id))
            else:
                by_rule.setdefault(rule.automation_id, (rule, set()))[1].add(envelope.customer_id)
        ctx = FilterContext(now=now, granted_by_contact=self._granted_by_contact)
        for rule_id, (rule, customers) in by_rule.items():
            tree = self._segment(rule)
            if tree is None:
                continue
            with self._views.connect() as conn:
                allowed.update((rule_id, c) for c in in_segment(conn, tree, ctx, customers))
        return allowed

    def _segment(self, rule: AutomationRecord) -> Filter | None:
        segment_id = rule.definition.segment_id
        assert segment_id is not None
        try:
            return self._app.segments.get(segment_id).tree
        except NotFound:
            log.warning("event rule %s: its segment %s is gone", rule.automation_id, segment_id)
            return None
