"""What follows from turning a rule or campaign off: the occurrences it planned that still
wait are cancelled (as the views know them: one planned a moment ago may still fire)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Engine

from hub.domain.application import HubApplication
from hub.domain.errors import Conflict, NotFound
from hub.projections.automations import pending_of

__all__ = ["cancel_pending"]


def cancel_pending(
    app: HubApplication, views: Engine, automation_id: UUID, actor: str | None
) -> int:
    """Cancel the waiting occurrences of the rule or campaign; how many were."""
    cancelled = 0
    while True:
        with views.connect() as conn:
            waiting = pending_of(conn, automation_id, limit=500)
        done = 0
        for oid in waiting:
            try:
                done += app.schedules.cancel(oid, actor)
            except (Conflict, NotFound):  # fired meanwhile; the views catch up
                continue
        cancelled += done
        if len(waiting) < 500 or not done:
            return cancelled
