"""Occurrences of rules and campaigns: their deterministic keys (docs/automation.md), what
they send, and scheduling them in batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from hub.domain.application import HubApplication
from hub.domain.automation import OccurrenceSpec, Plan, Source
from hub.domain.automations import CAMPAIGN, AutomationRecord

__all__ = ["BATCH", "campaign_key", "date_key", "event_key", "plan_of", "schedule", "source_of"]

#: Occurrences per store transaction.
BATCH = 250


def date_key(rule_id: UUID, customer_id: UUID, day: date) -> str:
    """A date rule's occurrence for a customer on a local day."""
    return f"rule:{rule_id}:{customer_id}:{day.isoformat()}"


def event_key(rule_id: UUID, event_id: UUID) -> str:
    """An event rule's occurrence for a triggering event."""
    return f"rule:{rule_id}:{event_id}"


def campaign_key(campaign_id: UUID, customer_id: UUID) -> str:
    return f"campaign:{campaign_id}:{customer_id}"


def plan_of(record: AutomationRecord) -> Plan:
    d = record.definition
    return Plan(purpose=d.purpose, channels=tuple(d.channels), template=d.template)


def source_of(record: AutomationRecord) -> Source:
    kind = "campaign" if record.kind == CAMPAIGN else "rule"
    return Source(kind=kind, id=str(record.automation_id), name=record.name)


def schedule(app: HubApplication, specs: Sequence[OccurrenceSpec]) -> int:
    """Schedule ``specs`` in batches; how many were new."""
    new = 0
    for start in range(0, len(specs), BATCH):
        results = app.schedules.schedule(specs[start : start + BATCH], actor=None)
        new += sum(1 for _, created in results if created)
    return new
