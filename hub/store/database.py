"""SQLAlchemy engines for the hub's own tables (read models, data keys, API tokens)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from hub.store.sqlite import PAGE_CACHE_KIB, SECURE_DELETE, private_files


def sqlalchemy_url(url: str) -> str:
    """Map a hub database URL to the SQLAlchemy driver the hub uses."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str, *, synchronous: str = "NORMAL", **kwargs: Any) -> Engine:
    """An engine; SQLite files are created owner-only and get WAL mode, the durability
    level, a busy timeout and secure deletion."""
    engine = create_engine(
        sqlalchemy_url(url),
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kwargs,
    )
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "do_connect")
        def _connect_privately(
            dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any
        ) -> Any:
            with private_files():  # the first connection creates the database file
                return dialect.connect(*cargs, **cparams)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")
            dbapi_conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute(SECURE_DELETE)
            # Let SQLAlchemy, not the driver, open transactions (next hook).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front, so one that reads and then
            # writes never meets another writer in between (no lock upgrade, no SQLITE_BUSY).
            # Reads stay deferred: in WAL mode they see a snapshot and block nobody.
            # ``hub_write`` is set by hub.projections.base.write_transaction.
            write = conn.get_execution_options().get("hub_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


#: Key of the PostgreSQL advisory lock taken while a process creates the hub's tables.
SCHEMA_LOCK_KEY = 0x48_55_42_5F_53_43  # "HUB_SC"


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Serialise table creation across processes starting together on one PostgreSQL database
    (``CREATE TABLE IF NOT EXISTS`` races there); nothing to do for SQLite files."""
    if make_url(url).drivername.startswith("sqlite"):
        yield
        return
    engine = create_db_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({SCHEMA_LOCK_KEY})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({SCHEMA_LOCK_KEY})")
    finally:
        engine.dispose()
