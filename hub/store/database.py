"""SQLAlchemy engines for the hub's own tables (read models, data keys, API tokens)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from hub.store.sqlite import PAGE_CACHE_KIB


def sqlalchemy_url(url: str) -> str:
    """Map a hub database URL to the SQLAlchemy driver the hub uses."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str, *, synchronous: str = "NORMAL", **kwargs: Any) -> Engine:
    """An engine; SQLite files get WAL mode, the durability level and a busy timeout."""
    engine = create_engine(
        sqlalchemy_url(url),
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kwargs,
    )
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")
            dbapi_conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
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
