"""The date rules' planner: each round schedules the birthday, anniversary and date-attribute
messages whose local send time falls within ``[now - GRACE, now + HORIZON]``, one occurrence
per rule, customer and local day (``rule:{rule_id}:{customer_id}:{YYYY-MM-DD}``), so rounds
that overlap, restarts and two planners schedule each once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from hub.domain.application import HubApplication
from hub.domain.automation import OccurrenceSpec
from hub.domain.automations import DATE, AutomationRecord
from hub.runtime.automation.audience import date_candidates
from hub.runtime.automation.specs import date_key, plan_of, schedule, source_of
from hub.runtime.automation.timing import (
    GRACE,
    HORIZON,
    candidate_days,
    local_due,
    occurs_on,
    within,
)

__all__ = ["DatePlanner", "date_specs"]


def date_specs(
    engine: Engine,
    rule: AutomationRecord,
    days: Sequence[date],
    default_zone: str | None,
) -> list[OccurrenceSpec]:
    """The occurrences of ``rule`` on local ``days`` (every one; the planner keeps those
    within its window)."""
    d = rule.definition
    assert d.date_field is not None
    assert d.local_time is not None
    with engine.connect() as conn:
        candidates = date_candidates(
            conn, d.date_field, days, d.offset_days, d.yearly_date, default_zone
        )
    plan, source = plan_of(rule), source_of(rule)
    specs = []
    for candidate in candidates:
        for day in days:
            if occurs_on(candidate.value, day, d.offset_days, d.yearly_date):
                specs.append(
                    OccurrenceSpec(
                        key=date_key(rule.automation_id, candidate.customer_id, day),
                        customer_id=candidate.customer_id,
                        due_at=local_due(day, d.local_time, candidate.zone),
                        plan=plan,
                        source=source,
                    )
                )
    return specs


class DatePlanner:
    """Schedules the date rules' occurrences ahead (a ``hub.runtime.scheduler.Planner``)."""

    name = "date rules"

    def __init__(
        self,
        app: HubApplication,
        views: Engine,
        default_zone: str | None,
        *,
        grace: timedelta = GRACE,
        horizon: timedelta = HORIZON,
    ) -> None:
        self._app = app
        self._views = views
        self._default_zone = default_zone
        self._grace = grace
        self._horizon = horizon
        #: Keys this process scheduled (or found scheduled), by due time: not asked again.
        self._done: dict[str, datetime] = {}

    def plan(self, now: datetime) -> int:
        rules = [r for r in self._app.automations.all(DATE) if r.definition.enabled]
        return self.plan_rules(rules, now)

    def plan_rules(self, rules: Sequence[AutomationRecord], now: datetime) -> int:
        """Schedule the occurrences of ``rules`` within the window around ``now``."""
        days = candidate_days(now, self._grace, self._horizon)
        new = 0
        for rule in rules:
            # Nothing due before the rule was defined or last changed (enabled again, say).
            since = max(now - self._grace, rule.updated_at)
            specs = [
                s
                for s in date_specs(self._views, rule, days, self._default_zone)
                if s.key not in self._done
                and s.due_at >= since
                and within(s.due_at, now, self._grace, self._horizon)
            ]
            new += schedule(self._app, specs)
            self._done.update((s.key, s.due_at) for s in specs)
        past = now - self._grace
        self._done = {k: due for k, due in self._done.items() if due >= past}
        return new
