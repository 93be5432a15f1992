"""What every projection is: a class that folds published events into its SQL tables.

A projection declares the event types it handles and its tables. ``apply`` gets a batch of
envelopes in store order inside the transaction that also records the projection's position,
so a crash never leaves a view ahead of or behind its position (``hub.projections.views``).
Projections read only ``hub.events``: both runtimes feed them the same envelopes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import Connection, Table

from hub.events import Envelope


class Projection(ABC):
    """One read model: its name, the event types it handles, its tables, its fold."""

    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    tables: ClassVar[tuple[Table, ...]]

    @abstractmethod
    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Fold ``events`` (store order, all of a handled type) into the tables."""


def utc(value: datetime) -> datetime:
    """Datetimes go into the views in UTC (SQLite keeps no offset)."""
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Datetimes from the views, aware again whatever the backend returns."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
