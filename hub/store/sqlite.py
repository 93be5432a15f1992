"""eventsourcing's SQLite module with the hub's connection settings (WAL durability level,
secure deletion), and the owner-only file mode every SQLite file of the hub is created with."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

from hub import memory

SYNCHRONOUS = "HUB_SQLITE_SYNCHRONOUS"
#: Page cache per connection (SQLite's default is 2 MiB): big stores keep their index pages.
PAGE_CACHE_KIB = 16 * 1024
#: SQLite's memory in this process, its connections' page caches mostly, under one soft limit
#: (``PRAGMA soft_heap_limit`` is process-wide): past it SQLite reuses its least recently used
#: pages instead of taking more, however many connections the pools hold. An entry is a page.
PAGES = memory.Part("sqlite pages", share=0.25, entry_bytes=4096)
#: Deleted rows are overwritten with zeros, so an erased customer's view rows, chat mailbox
#: or dead letters, or a destroyed data key, do not linger in free pages of the file.
SECURE_DELETE = "PRAGMA secure_delete=ON"

_umask_lock = threading.RLock()


def memory_pragmas() -> tuple[str, str]:
    """The page cache of a new connection, and SQLite's limit for the whole process (set on
    every connection, so the budget :func:`hub.memory.configure` set last holds; 0 would
    lift the limit, so no budget is one byte)."""
    limit = max(1, PAGES.entries * PAGES.entry_bytes)
    return f"PRAGMA cache_size=-{PAGE_CACHE_KIB}", f"PRAGMA soft_heap_limit={limit}"


@contextmanager
def private_files() -> Iterator[None]:
    """Files and directories created meanwhile are the owner's only (umask 077: 0600 and
    0700), from the moment they exist, so no window lets others open them before a chmod.
    SQLite gives a database's -wal and -shm files the database file's own mode.

    The umask is per process: one thread at a time changes it (re-entrant)."""
    with _umask_lock:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


class _Pool(SQLiteConnectionPool):
    synchronous = "NORMAL"

    def _create_connection(self) -> SQLiteConnection:
        with private_files():  # the first connection creates the database file
            connection = super()._create_connection()
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        for pragma in memory_pragmas():
            raw.execute(pragma)
        raw.execute(SECURE_DELETE)
        return connection


class HubSQLiteFactory(SQLiteFactory):
    """Like ``eventsourcing.sqlite.Factory``, plus the hub's pragmas on every connection."""

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
