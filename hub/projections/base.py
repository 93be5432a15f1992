"""What every projection is: a class that folds published events into its SQL tables, and the
small pieces the projections share (UTC times, rows to records, a timestamp that only moves on).

A projection declares the event types it handles and its tables. ``apply`` gets a batch of
envelopes in store order inside the transaction that also records the projection's position,
so a crash never leaves a view ahead of or behind its position (``hub.projections.views``).
Projections read only ``hub.events``: both runtimes feed them the same envelopes.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Connection, Table, case
from sqlalchemy.sql.elements import ColumnElement

from hub.events import Envelope, InteractionQueued, InteractionReceived, InteractionSent

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")
K = TypeVar("K")
V = TypeVar("V")

#: The events that put a message on a customer's timeline: one came in, one went out, one is
#: queued to go out.
MessageEvent = InteractionReceived | InteractionSent | InteractionQueued


class Projection(ABC):
    """One read model: its name, the event types it handles, its tables, its fold."""

    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    tables: ClassVar[tuple[Table, ...]]

    @abstractmethod
    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Fold ``events`` (store order, all of a handled type) into the tables."""

    def batch_begins(self, position: int) -> None:  # noqa: B027 (optional hook)
        """``Views.apply`` is about to give the projection a batch (perhaps none of its
        events) while its tables stand at ``position``. With :meth:`batch_ends`, this lets a
        projection keep in memory what one batch wrote for the next batch of the same
        follower (a rebuild reads back less): what it kept holds only while its tables still
        stand where that batch left them. Every other write (``purge``, ``drop``, an
        ``apply`` outside these two calls) must not trust what was kept."""

    def batch_ends(self, position: int | None) -> None:  # noqa: B027 (optional hook)
        """The batch :meth:`batch_begins` announced was committed with the tables at
        ``position``; None: it was not (rolled back), so nothing kept from it holds."""

    def create(self, conn: Connection) -> None:  # noqa: B027 (optional hook)
        """Create what ``Table.create`` cannot, once the tables exist (a full-text index, its
        triggers, SQL functions), idempotently; most projections have nothing to add."""

    def drop(self, conn: Connection) -> None:  # noqa: B027 (optional hook)
        """Drop what :meth:`create` made, before the tables are dropped (a rebuild)."""

    def expire_bodies_before(self, conn: Connection, cutoff: datetime) -> int:
        """Blank the message bodies (text, subjects, attachments, metadata) this view holds of
        messages that happened before ``cutoff``, keeping the fact that they existed (retention
        by age, docs/retention.md); how many rows changed. A view without bodies has none."""
        return 0

    @abstractmethod
    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Delete every row that holds personal data of these (erased) customers (a
        projection that holds none says so with an empty body) (``Views.erase`` calls it at the
        erasure, and again after any later batch that touches these customers)."""


class KeptRows(Generic[K, V]):
    """What a projection keeps in memory from one batch for the next batch of the same
    follower (``Projection.batch_begins``): rows by key as the batch wrote them, the latest
    last, at most ``limit`` (the projection's part of the cache budget: hub/memory.py). Valid
    only while the tables stand at the position the batch that kept them committed; a batch
    that does not commit, or a write by any other path, leaves nothing kept.

    :meth:`forget` may come from another thread (an erasure's ``purge`` in an API thread)
    while a batch is under way: that batch then keeps nothing when it ends, since what it
    folded may hold rows the other write changed."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._rows: dict[K, V] = {}
        self._at: int | None = None
        #: What the batch under way leaves (None: no batch of ``Views.apply`` under way).
        self._keeping: dict[K, V] | None = None
        #: Moves on at every :meth:`forget`; a batch keeps its rows only if it did not move
        #: while the batch ran.
        self._generation = 0
        self._began = 0
        self._lock = threading.Lock()

    def begins(self, position: int) -> None:
        with self._lock:
            if position != self._at:
                self._rows = {}
            self._keeping = self._rows
            self._began = self._generation

    def take(self) -> dict[K, V] | None:
        """The rows kept, for the fold of a batch ``Views.apply`` announced (None: any other
        apply, which must read everything). Set aside until the batch commits: the fold
        changes them in place."""
        with self._lock:
            rows = self._keeping
            self._rows, self._at, self._keeping = {}, None, None
            return rows

    def keep(self, rows: dict[K, V], written: Mapping[K, V]) -> None:
        """After the fold of the batch whose rows :meth:`take` gave: ``rows`` with what it
        wrote added, kept when the batch commits."""
        for key, row in written.items():
            rows.pop(key, None)  # the latest last: the oldest go first
            rows[key] = row
        for key in list(itertools.islice(rows, max(0, len(rows) - self.limit))):
            del rows[key]
        with self._lock:
            self._keeping = rows

    def ends(self, position: int | None) -> None:
        with self._lock:
            if position is None or self._keeping is None or self._generation != self._began:
                self._forget()
            else:
                self._rows, self._at, self._keeping = self._keeping, position, None

    def forget(self) -> None:
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self._generation += 1
        self._rows, self._at, self._keeping = {}, None, None


class KeepingProjection(Projection):
    """A projection that keeps what a batch wrote for the follower's next batch in
    :attr:`kept` (its fold reads it with ``kept.take()`` and leaves it with ``kept.keep()``)."""

    kept: KeptRows[Any, Any]

    def batch_begins(self, position: int) -> None:
        self.kept.begins(position)

    def batch_ends(self, position: int | None) -> None:
        self.kept.ends(position)

    def drop(self, conn: Connection) -> None:
        self.kept.forget()


def utc(value: datetime) -> datetime:
    """Datetimes go into the views in UTC (SQLite keeps no offset)."""
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Datetimes from the views, aware again whatever the backend returns."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def record_from_row(cls: type[R], row: Mapping[str, Any], times: Sequence[str]) -> R:
    """A record (a dataclass) from a view's row: its fields by name (the row may carry more
    columns), the datetimes named in ``times`` aware again."""
    values = {f.name: row[f.name] for f in fields(cls)}
    for name in times:
        if values[name] is not None:
            values[name] = as_utc(values[name])
    return cls(**values)


def id_list(customer_id: UUID | Sequence[UUID]) -> list[UUID]:
    """The ids a read takes: one customer, or every customer of a merged group."""
    return [customer_id] if isinstance(customer_id, UUID) else list(customer_id)


def later(
    column: ColumnElement[datetime], value: ColumnElement[datetime]
) -> ColumnElement[datetime]:
    """For an UPDATE: ``value`` where it is later than the column (or the column is empty),
    else the column as it is, so replays and late arrivals never move a time back."""
    return case(
        (column.is_(None), value),
        (column < value, value),
        else_=column,
    )
