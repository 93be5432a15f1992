"""What the automation planner tests share: a store with its views, customers recorded with a
profile, and the occurrences scheduled read back by key."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.automation import Occurrence, occurrence_id
from hub.projections import Views
from hub.store import Store
from tests.projections.helpers import project
from tests.support.store import T0, inbound


class Hub:
    """A store, its views kept up to date by :meth:`project`, and customers on it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.app = store.app
        self.views = Views(store.views_engine)
        self.views.create()
        self._n = 0

    def customer(self, *, address: str | None = None, at: datetime = T0, **profile: Any) -> UUID:
        """A new customer (first contact at ``at``) with these profile fields."""
        self._n += 1
        given = address or f"phone:+3706004{self._n:04d}"  # Lithuania: Europe/Vilnius
        (recorded,) = self.app.record_interactions(
            [inbound(f"m-{self._n}", channel=_channel(given), address=given, occurred_at=at)]
        )
        if profile:
            self.app.profile.update(recorded.customer_id, profile, actor="ana")
        return recorded.customer_id

    def project(self) -> None:
        project(self.store, self.views)

    def occurrence(self, key: str) -> Occurrence | None:
        return self.app.schedules.find(occurrence_id(key))


def _channel(address: str) -> str:
    return {"email": "email", "chat": "chat"}.get(address.partition(":")[0], "sms")
