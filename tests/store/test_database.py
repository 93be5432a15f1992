"""hub.store.database, the one module that tells the backends apart: which URLs name a SQLite
file, where an embedded store keeps its secrets, which databases can be LISTENed on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from hub.config import ConfigurationError, Settings
from hub.store.database import database_file, database_files, listen_conninfo, store_file
from hub.store.store import secret_file


def test_a_sqlite_url_names_a_file_and_its_side_files() -> None:
    assert database_file("sqlite:////srv/hub/events.db") == Path("/srv/hub/events.db")
    assert database_files("sqlite:////srv/hub/events.db") == [
        Path("/srv/hub/events.db"),
        Path("/srv/hub/events.db-wal"),
        Path("/srv/hub/events.db-shm"),
        Path("/srv/hub/events.db-journal"),
    ]


@pytest.mark.parametrize("url", ["postgresql://hub@db/hub", "sqlite://", "sqlite:///:memory:"])
def test_a_database_server_or_memory_has_no_file(url: str) -> None:
    assert database_file(url) is None
    assert database_files(url) == []


def test_an_embedded_store_keeps_its_secrets_in_the_data_directory(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path)
    assert store_file(embedded) == (tmp_path / "events.db").resolve()
    assert secret_file(embedded, "master.key") == tmp_path / "master.key"
    server = Settings(data_dir=tmp_path, store_url="postgresql://hub@db/hub")
    assert store_file(server) is None
    assert secret_file(server, "master.key") is None


def test_a_store_url_the_hub_cannot_open_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unsupported scheme"):
        store_file(Settings(data_dir=tmp_path, store_url="mysql://hub@db/hub"))


def test_only_postgresql_can_be_listened_on() -> None:
    url = make_url("postgresql+psycopg://hub:secret@db:5433/hub")
    assert listen_conninfo(url) == "postgresql://hub:secret@db:5433/hub"
    assert listen_conninfo(make_url("sqlite:////srv/hub/events.db")) is None
