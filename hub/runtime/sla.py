"""The SLA watcher: records ``conversation.sla_breached.v1`` when an open conversation's
target passes, whether or not anyone is looking (docs/analytics.md).

The active scheduler (``hub.runtime.scheduler``) calls it every half second; it reads the
targets that passed from the service projection and records each breach with its due time
as the time it happened. A breach's id derives from its conversation, target and clock start,
so a restart, a take-over or two schedulers racing record it once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from hub.domain.application import HubApplication
from hub.domain.service_levels import BreachSpec
from hub.projections.service_queries import due_breaches

__all__ = ["SlaWatcher"]


class SlaWatcher:
    """Records the breaches that are due (a ``hub.runtime.scheduler.Planner``)."""

    name = "SLA watcher"

    def __init__(self, app: HubApplication, views: Engine) -> None:
        self._app = app
        self._views = views

    def plan(self, now: datetime) -> int:
        """Record the breaches due by ``now`` (at most 500 a round); how many were new."""
        with self._views.connect() as conn:
            due = due_breaches(conn, now, limit=500)
        if not due:
            return 0
        specs = [
            BreachSpec(
                conversation_id=d.conversation_id,
                customer_id=d.customer_id,
                target=d.target,
                clock_started_at=d.clock_started_at,
                policy=d.policy,
                due_at=d.due_at,
                channel=d.channel,
            )
            for d in due
        ]
        return self._app.service_levels.record_breaches(specs)
