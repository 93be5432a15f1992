"""The embedded runtime's files: owner-only from creation (0600, the data directory 0700), a
data directory left open by an older hub made private on start, and SQLite's secure deletion
on every connection, so deleted rows do not linger in free pages."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from hub.config import Settings
from hub.embedded.runtime import EmbeddedRuntime
from hub.store.keys import SqlKeyStore, data_keys
from tests.support.store import SettingsFactory, inbound, opened


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a process (022: files 0644), so that the hub's own
    modes are what the tests see, not a strict umask of the machine running them."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(directory: Path) -> dict[str, int]:
    """The permission bits of the directory and of everything in it, by relative name."""
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _run(settings: Settings) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(settings)
    runtime.start()
    runtime.record_now([inbound(f"m-{uuid.uuid4()}", text="Alice's new address")])
    assert runtime.wait_visible(runtime.store_position(), timeout=10)
    return runtime


def test_every_file_of_the_data_dir_is_owner_only(make_settings: SettingsFactory) -> None:
    settings = make_settings("sqlite")
    runtime = _run(settings)
    try:
        running = modes(settings.data_dir)  # with the -wal and -shm files of open databases
    finally:
        runtime.stop()
    stopped = modes(settings.data_dir)

    expected = {"events.db", "views.db", "master.key", "pepper.key"}
    assert expected | {"events.db-wal", "views.db-wal"} <= set(running)
    for found in (running, stopped):
        assert found.pop(".") == 0o700
        assert found == dict.fromkeys(found, 0o600), found


def test_a_data_dir_open_to_others_is_made_private_on_start(
    make_settings: SettingsFactory,
) -> None:
    """A hub upgraded from a data directory that older versions created 0755 with 0644 files."""
    settings = make_settings("sqlite")
    _run(settings).stop()
    settings.data_dir.chmod(0o755)
    for path in settings.data_dir.iterdir():
        path.chmod(0o644)

    runtime = _run(settings)
    try:
        found = modes(settings.data_dir)
    finally:
        runtime.stop()

    assert found.pop(".") == 0o700
    assert found == dict.fromkeys(found, 0o600), found


@pytest.fixture
def secure_delete_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite as most builds have it: Debian's is compiled with SQLITE_SECURE_DELETE, so
    without this the tests would pass whether or not the hub turns it on."""
    connect = sqlite3.connect

    def connect_as_usual(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    # eventsourcing looks sqlite3.connect up when it connects, SQLAlchemy sqlite3.dbapi2's.
    monkeypatch.setattr(sqlite3, "connect", connect_as_usual)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect_as_usual)


def _secure_delete(engine: Engine) -> int:
    with engine.connect() as conn:
        value: int = conn.exec_driver_sql("PRAGMA secure_delete").scalar_one()
    return value


@pytest.mark.usefixtures("secure_delete_off_by_default")
def test_secure_delete_is_on_for_views_state_and_event_store(
    make_settings: SettingsFactory,
) -> None:
    with opened(make_settings("sqlite")) as store:
        assert _secure_delete(store.views_engine) == 1
        assert _secure_delete(store.state_engine) == 1
        with store.app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA secure_delete")
            assert cursor.fetchone()[0] == 1


def _checkpointed_bytes(engine: Engine, database: Path) -> bytes:
    """The database file's bytes once the WAL is written back into it and emptied."""
    engine.dispose()  # no other connection keeps a snapshot that holds the checkpoint back
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        assert busy == 0
    engine.dispose()
    return database.read_bytes()


@pytest.mark.usefixtures("secure_delete_off_by_default")
def test_deleted_rows_leave_nothing_in_the_files(make_settings: SettingsFactory) -> None:
    """A destroyed data key (erasure) and a deleted view row are overwritten, not just
    unlinked from the b-tree."""
    settings = make_settings("sqlite")
    marker = f"plaintext-{uuid.uuid4().hex}"
    key_id = uuid.uuid4()
    with opened(settings) as store:
        keys = SqlKeyStore(store.state_engine, os.urandom(32))
        keys.save({key_id: os.urandom(32)})
        with store.state_engine.connect() as conn:
            wrapped = conn.scalar(data_keys.select().with_only_columns(data_keys.c.wrapped_key))
        assert wrapped
        with store.views_engine.begin() as conn:
            conn.execute(text("CREATE TABLE scratch (body TEXT)"))
            conn.execute(text("INSERT INTO scratch VALUES (:body)"), {"body": marker})
        events_db = Path(settings.data_dir / "events.db")
        views_db = Path(settings.data_dir / "views.db")
        assert wrapped in _checkpointed_bytes(store.state_engine, events_db)
        assert marker.encode() in _checkpointed_bytes(store.views_engine, views_db)

        keys.destroy(key_id)
        with store.views_engine.begin() as conn:
            conn.execute(text("DELETE FROM scratch"))

        key_lingers = wrapped in _checkpointed_bytes(store.state_engine, events_db)
        row_lingers = marker.encode() in _checkpointed_bytes(store.views_engine, views_db)
        assert (key_lingers, row_lingers) == (False, False)
