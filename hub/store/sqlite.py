"""eventsourcing's SQLite module with the hub's connection settings (WAL durability level)."""

from __future__ import annotations

import sqlite3

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

SYNCHRONOUS = "HUB_SQLITE_SYNCHRONOUS"
#: Page cache per connection (SQLite's default is 2 MiB): big stores keep their index pages.
PAGE_CACHE_KIB = 16 * 1024


class _Pool(SQLiteConnectionPool):
    synchronous = "NORMAL"

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        raw.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        return connection


class HubSQLiteFactory(SQLiteFactory):
    """Like ``eventsourcing.sqlite.Factory``, plus ``PRAGMA synchronous`` on every connection."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        level = (self.env.get(SYNCHRONOUS) or "NORMAL").upper()
        if level not in {"OFF", "NORMAL", "FULL"}:
            raise OSError(f"invalid {SYNCHRONOUS} {level!r}")
        old = self.datastore.pool
        pool = _Pool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
        )
        pool.synchronous = level
        self.datastore.pool = pool
        old.close()
