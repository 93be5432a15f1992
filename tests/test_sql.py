"""The SQL seam (hub/sql.py) on both backends: the same calls, the same rows."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Uuid, select

from hub.config import Settings
from hub.sql import insert, insert_ignoring_duplicates, lock_keys, upsert, write_transaction
from hub.store.database import create_db_engine
from tests.support.store import SettingsFactory

metadata = MetaData()
things = Table(
    "sql_seam_things",
    metadata,
    Column("key", String(16), primary_key=True),
    Column("value", String(16), nullable=False),
    Column("count", Integer, nullable=False),
)


@pytest.fixture
def engine(make_settings: SettingsFactory, backend: str) -> Iterator[Engine]:
    settings: Settings = make_settings(backend)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.resolved_store_url())
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _rows(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(things).order_by(things.c.key))]  # type: ignore[misc]


def test_insert_ignoring_duplicates_keeps_the_first_row(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        insert_ignoring_duplicates(conn, things, [{"key": "a", "value": "first", "count": 1}])
        insert_ignoring_duplicates(
            conn,
            things,
            [{"key": "a", "value": "second", "count": 2}, {"key": "b", "value": "b", "count": 1}],
        )
        insert_ignoring_duplicates(conn, things, [])  # nothing to do is fine
    assert _rows(engine) == [("a", "first", 1), ("b", "b", 1)]


def test_upsert_lets_the_latest_row_win(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        upsert(conn, things, [{"key": "a", "value": "first", "count": 1}])
        upsert(conn, things, [{"key": "a", "value": "latest", "count": 5}])
    assert _rows(engine) == [("a", "latest", 5)]


def test_insert_builds_the_dialects_on_conflict(engine: Engine) -> None:
    """For an update that is not "the new row wins": adding to a counter."""
    with write_transaction(engine) as conn:
        for _ in range(3):
            statement = insert(conn, things)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"], set_={"count": things.c.count + 1}
                ),
                [{"key": "n", "value": "n", "count": 1}],
            )
    assert _rows(engine) == [("n", "n", 3)]


def test_lock_keys_holds_other_transactions_until_commit(engine: Engine) -> None:
    """On PostgreSQL a second transaction locking an overlapping set waits for the first;
    SQLite needs no lock (its write transaction holds the one write lock)."""
    if engine.dialect.name != "postgresql":
        with write_transaction(engine) as conn:
            lock_keys(conn, "tests", [1, 2])  # a no-op that must not fail
        return
    locked = threading.Event()
    second_done = threading.Event()

    def second() -> None:
        locked.wait(10)
        with write_transaction(engine) as conn:
            lock_keys(conn, "tests", [2, 3])
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with write_transaction(engine) as conn:
        lock_keys(conn, "tests", [1, 2])
        locked.set()
        assert not second_done.wait(0.5), "the second transaction got the lock while held"
    thread.join(10)
    assert second_done.is_set()


typed = Table(
    "sql_seam_typed",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", String(16)),
    Column("tries", Integer, nullable=False, default=0),  # filled in Python when left out
)


def test_the_writes_are_compiled_once_and_bind_values_by_the_columns_types(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLAlchemy 2.0 compiles its dialects' ON CONFLICT inserts on every execution; the
    # helpers' statements come from its cache after the first.
    ids = [uuid.uuid4() for _ in range(4)]
    at = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    with (
        caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"),
        write_transaction(engine) as conn,
    ):
        for n in range(2):
            row = {"id": ids[n], "at": at, "note": "é", "tries": 1}
            insert_ignoring_duplicates(conn, typed, [row])
            upsert(conn, typed, [row | {"note": "ž"}])
    inserts = [r.getMessage() for r in caplog.records if "[cached since" in r.getMessage()]
    assert len(inserts) == 2  # the second insert and the second upsert
    with write_transaction(engine) as conn:  # a Python default left out: still filled in
        insert_ignoring_duplicates(conn, typed, [{"id": ids[2], "at": at}])
        upsert(conn, typed, [{"id": ids[3], "at": at, "note": None}])
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(typed))}
    expected = [("ž", 1), ("ž", 1), (None, 0), (None, 0)]
    assert [(rows[i].note, rows[i].tries) for i in ids] == expected
    assert all(r.at.replace(tzinfo=UTC) == at for r in rows.values())
