"""The SQL seam: the one module that knows which database it talks to.

The hub runs on SQLite (embedded) and PostgreSQL (distributed). Both speak ``INSERT ... ON
CONFLICT``, but SQLAlchemy builds it with each dialect's own ``insert``; every other module
writes through the helpers here and never asks which dialect it has.
A leaf module (SQLAlchemy only): the store, the projections, the runtime
and the connectors that keep state all import it, and it imports none of them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Table, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement, TextClause

__all__ = [
    "driver_rows",
    "insert",
    "insert_ignoring_duplicates",
    "lock_keys",
    "upsert",
    "write_transaction",
]

_Insert = postgresql.Insert | sqlite.Insert


def insert(conn: Connection | Engine, table: Table) -> _Insert:
    """``INSERT`` into ``table`` with the dialect's ``on_conflict_do_*`` (for an upsert whose
    update is not "the new row wins", e.g. adding to a counter)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def driver_rows(conn: Connection, statement: Executable) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` as the database driver returns them, without SQLAlchemy's
    rows and types (about a microsecond a row: most of a report that reads 100,000s). Only
    for columns that are text or integers on both databases (casts, counts); a column of
    another type would come back as each driver has it (SQLite: times as text)."""
    result = conn.execute(statement)
    try:
        return list(result.cursor.fetchall())  # tuples with both drivers' defaults
    finally:
        result.close()


def insert_ignoring_duplicates(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows; a row whose key (or unique constraint) is already there is left as it is:
    replays and retries are normal."""
    if rows:
        _insert(conn, table, rows, update=False)


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows, or overwrite the row with the same primary key (the latest fact wins)."""
    if rows:
        _insert(conn, table, rows, update=True)


def _insert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, update: bool
) -> None:
    """``INSERT .. ON CONFLICT`` of ``rows``: ``DO UPDATE`` of every column but the primary
    key's when ``update``, else ``DO NOTHING``. The cached text statement of
    :func:`_text_insert` when the rows allow, else SQLAlchemy's."""
    plain = not any(isinstance(value, ClauseElement) for value in rows[0].values())
    statement: Executable | None = (
        _text_insert(conn.dialect, table, tuple(rows[0]), update=update) if plain else None
    )
    if statement is None:
        on_conflict = insert(conn, table)
        keys, others = _key_and_others(table)
        statement = (
            on_conflict.on_conflict_do_update(
                index_elements=keys, set_={c: on_conflict.excluded[c] for c in others}
            )
            if update
            else on_conflict.on_conflict_do_nothing()
        )
    conn.execute(statement, list(rows))


def _key_and_others(table: Table) -> tuple[list[str], list[str]]:
    """The names of ``table``'s primary key columns, and of the others."""
    keys = [c.name for c in table.primary_key.columns]
    return keys, [c.name for c in table.columns if c.name not in keys]


@lru_cache(maxsize=512)
def _text_insert(
    dialect: Dialect, table: Table, names: tuple[str, ...], *, update: bool
) -> TextClause | None:
    """The statement of :func:`_insert` as a text statement with typed parameters, built
    once per table and set of columns.

    SQLAlchemy 2.0 does not cache the statements its dialects' ``insert`` builds (their
    ``inherit_cache`` is false), so each execution compiled one again: a tenth of the
    projection process's time. A text statement is cached like any other, and its
    parameters carry the columns' types, so values are bound as the table's own insert
    binds them. None (use SQLAlchemy's statement) when the rows leave out a column the
    table fills in Python (a column ``default``), or name one it does not have."""
    columns = table.columns
    if any(name not in columns for name in names):
        return None
    if any(c.default is not None and c.name not in names for c in columns):
        return None
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "  # noqa: S608 (the table's own names, quoted)
        f"({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join(f':{name}' for name in names)}) ON CONFLICT"
    )
    keys, others = _key_and_others(table)
    if update and others:
        sql += f" ({', '.join(quote(k) for k in keys)}) DO UPDATE SET " + ", ".join(
            f"{quote(name)} = excluded.{quote(name)}" for name in others
        )
    else:
        sql += " DO NOTHING"
    return text(sql).bindparams(*(bindparam(name, type_=columns[name].type) for name in names))


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write. The ``hub_write`` option makes SQLite take its write
    lock at the start (see ``hub.store.database``); other databases ignore it."""
    with engine.connect().execution_options(hub_write=True) as conn, conn.begin():
        yield conn


def lock_keys(conn: Connection, space: str, keys: Sequence[int]) -> None:
    """Lock ``keys`` of the lock ``space`` until the transaction ends, in key order (two
    transactions locking overlapping sets cannot deadlock). PostgreSQL: transaction-scoped
    advisory locks (two-key ones, kept apart from one-key ones such as the schema lock).
    SQLite: nothing to do, a write transaction holds the database's one write lock."""
    if conn.dialect.name != "postgresql":
        return
    key = zlib.crc32(space.encode()) - 2**31  # a signed 32-bit int
    conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(:key, p)) "
            "FROM (SELECT unnest(CAST(:keys AS integer[])) AS p ORDER BY 1) AS wanted"
        ),
        {"key": key, "keys": list(keys)},
    )
