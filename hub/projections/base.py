"""What every projection is: a class that folds published events into its SQL tables.

A projection declares the event types it handles and its tables. ``apply`` gets a batch of
envelopes in store order inside the transaction that also records the projection's position,
so a crash never leaves a view ahead of or behind its position (``hub.projections.views``).
Projections read only ``hub.events``: both runtimes feed them the same envelopes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.events import Envelope


class Projection(ABC):
    """One read model: its name, the event types it handles, its tables, its fold."""

    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    tables: ClassVar[tuple[Table, ...]]

    @abstractmethod
    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Fold ``events`` (store order, all of a handled type) into the tables."""


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows; a row whose key is already there is left as it is (replays are normal)."""
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write. The ``hub_write`` option makes SQLite take its write
    lock at the start (see ``hub.store.database``); other databases ignore it."""
    with engine.connect().execution_options(hub_write=True) as conn, conn.begin():
        yield conn


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, or overwrite the row with the same primary key (the latest fact wins)."""
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    changes = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes), rows)


def utc(value: datetime) -> datetime:
    """Datetimes go into the views in UTC (SQLite keeps no offset)."""
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Datetimes from the views, aware again whatever the backend returns."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
