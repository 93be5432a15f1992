"""The two backends, SQLite and PostgreSQL, told apart: the eventsourcing environment of the
store, SQLAlchemy engines for the hub's own tables (read models, data keys, API tokens), the files
of a SQLite database, and what only PostgreSQL has (an advisory lock, commit notifications).

This is the one module of the hub that branches on the backend; everything else asks it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import URL, Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from hub.config import ConfigurationError, Settings
from hub.store.sqlite import SECURE_DELETE, memory_pragmas, private_files


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store URL."""
    url = make_url(settings.resolved_store_url())
    common = {"CREATE_TABLE": "y"}
    if url.drivername.startswith("sqlite"):
        if not url.database:
            raise ConfigurationError("HUB_STORE_URL: a sqlite URL needs a file path")
        return common | {
            "PERSISTENCE_MODULE": "hub.store.sqlite:HubSQLiteFactory",
            "SQLITE_DBNAME": url.database,
            "SQLITE_LOCK_TIMEOUT": "10",
            "HUB_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
            "APPLICATION_RECORDER_TOPIC": "hub.store.recorders:HubSQLiteApplicationRecorder",
        }
    if url.drivername.startswith("postgres"):
        return common | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "postgres",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_CONNECT_TIMEOUT": "5",  # the wait for a pooled connection
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_PRE_PING": "y",
            "APPLICATION_RECORDER_TOPIC": "hub.store.recorders:HubPostgresApplicationRecorder",
        }
    raise ConfigurationError(
        f"HUB_STORE_URL: unsupported scheme {url.drivername!r} (use sqlite:/// or postgresql://)"
    )


def store_file(settings: Settings) -> Path | None:
    """The SQLite file of an embedded event store; None for a PostgreSQL one. A store URL the
    hub cannot open is refused (:class:`ConfigurationError`), as by :func:`eventsourcing_env`."""
    name = eventsourcing_env(settings).get("SQLITE_DBNAME")
    return Path(name) if name is not None else None


def database_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for a database server or SQLite in memory."""
    parsed = make_url(url)
    name = parsed.database
    if not parsed.drivername.startswith("sqlite") or not name or name == ":memory:":
        return None
    return Path(name)


def database_files(url: str) -> list[Path]:
    """A SQLite database's file and the side files SQLite keeps beside it (none for a server)."""
    file = database_file(url)
    if file is None:
        return []
    return [file, *(Path(f"{file}{side}") for side in ("-wal", "-shm", "-journal"))]


def listen_conninfo(url: URL) -> str | None:
    """A libpq connection string to LISTEN on the database of ``url`` with a connection of its
    own; None for SQLite, which has no notifications."""
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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
            for pragma in memory_pragmas():
                dbapi_conn.execute(pragma)
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
