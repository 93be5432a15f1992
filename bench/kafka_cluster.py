"""The distributed runtime under test: ``hub run`` processes on a broker and PostgreSQL.

Two topologies: ``all`` (every role in one ``hub run all`` process) and ``roles`` (one process
per role: ingest, process, relay, project, api). Every process is a :class:`ServerProcess` on
a free loopback port with the same environment (keys, topic prefix, databases).

Also what the diagnosis needs: CPU seconds of every process involved (the roles, the broker
when the benchmark started it, the PostgreSQL backends of the run's databases, this client, the
whole machine) between two snapshots, and the roles' ``hub_role_items_total``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from bench.harness import ADMIN_TOKEN, ServerProcess, cpu_seconds, hub_command, process_env
from bench.kafka_broker import backend_pids, machine_busy
from tests.support.processes import HOST, Started, free_port

ROLES = ("ingest", "process", "relay", "project", "api")
TOPOLOGIES = ("roles", "all")
#: Partitions of the run's topics (the configuration default is 12; see docs/performance.md).
PARTITIONS = int(os.environ.get("HUB_BENCH_KAFKA_PARTITIONS", "6"))
READY_TIMEOUT = 90.0


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class HubEnv:
    """The environment every ``hub`` process of one run shares."""

    bootstrap: str
    store_url: str
    views_url: str
    partitions: int = PARTITIONS
    prefix: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:10]}.")
    master_key: str = field(default_factory=_key)
    pepper: str = field(default_factory=_key)
    log_level: str = "WARNING"  # no per-request access log, as for the embedded benchmarks
    #: More settings, as ``HUB_...`` environment variables (connectors, for instance).
    extra: dict[str, str] = field(default_factory=dict)

    def variables(self, data_dir: Path) -> dict[str, str]:
        return {
            "HUB_STORE_URL": self.store_url,
            "HUB_VIEWS_URL": self.views_url,
            "HUB_MASTER_KEY": self.master_key,
            "HUB_ADDRESS_PEPPER": self.pepper,
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_LOG_LEVEL": self.log_level,
            "HUB_DATA_DIR": str(data_dir),
            "HUB_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "HUB_KAFKA__TOPIC_PREFIX": self.prefix,
            "HUB_KAFKA__PARTITIONS": str(self.partitions),
            "HUB_KAFKA__REPLICATION_FACTOR": "1",
            "HUB_KAFKA__IDEMPOTENT_PRODUCER": "false",  # Tansu lacks it
            "HUB_KAFKA__REBALANCE_TIMEOUT": "2",  # Tansu waits this long when a group forms
            "HUB_KAFKA__SESSION_TIMEOUT": "6",
        } | self.extra

    def settings(self, data_dir: Path) -> Any:
        """The same configuration as a ``Settings`` object, for in-process work."""
        from hub.config import KafkaSettings, Settings

        return Settings(
            data_dir=data_dir,
            store_url=self.store_url,
            views_url=self.views_url,
            master_key=self.master_key,
            address_pepper=self.pepper,
            admin_token=ADMIN_TOKEN,
            kafka=KafkaSettings(
                bootstrap_servers=self.bootstrap,
                topic_prefix=self.prefix,
                partitions=self.partitions,
                replication_factor=1,
                idempotent_producer=False,
                rebalance_timeout=2.0,
                session_timeout=6.0,
            ),
        )

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def kafka_init(self, workdir: Path) -> None:
        """``hub kafka init``: the run's topics."""
        done = subprocess.run(
            [*hub_command(), "kafka", "init"],
            env=process_env(self.variables(workdir / "data")),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"hub kafka init failed: {done.stdout}{done.stderr}")


def role_server(hub_env: HubEnv, workdir: Path, role: str) -> ServerProcess:
    """``hub run ROLE`` (or ``all``) on a free port."""
    port = free_port()
    return ServerProcess(
        [*hub_command(), "run", role, "--host", HOST, "--port", str(port)],
        port=port,
        env=hub_env.variables(workdir / f"data-{role}"),
        log_path=workdir / f"hub-run-{role}-{port}.log",
    )


def wait_ready(server: ServerProcess, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Poll /readyz until 200 (store and broker reachable, workers in their groups)."""
    deadline = time.monotonic() + timeout
    last = ""
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                answer = client.get("/readyz")
                if answer.status_code == 200:
                    ready: dict[str, Any] = answer.json()
                    return ready
                last = answer.text[:300]
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    raise RuntimeError(f"{server.command[2:4]} not ready after {timeout}s: {last}")


class Cluster(Started):
    """The processes of one topology; a context manager that always stops them.

    ``roles`` starts api first and waits until it is ready, then the other four at once: before
    db5de3e, roles started together on an empty database raced to create the same tables
    (see docs/performance.md), and older commits stay measurable this way.
    """

    def __init__(
        self, topology: str, hub_env: HubEnv, workdir: Path, broker_pid: int | None = None
    ) -> None:
        if topology not in TOPOLOGIES:
            raise ValueError(topology)
        self.topology = topology
        self.hub_env = hub_env
        self.workdir = workdir
        self.broker_pid = broker_pid
        self.servers: dict[str, ServerProcess] = {}

    def pids(self) -> dict[str, int]:
        """Process ids by name (role, ``all``, ``broker`` when the benchmark started it)."""
        found = {name: server.pid for name, server in self.servers.items()}
        if self.broker_pid is not None:
            found["broker"] = self.broker_pid
        return found

    @property
    def ingest(self) -> ServerProcess:
        return self.servers["all" if self.topology == "all" else "ingest"]

    @property
    def api(self) -> ServerProcess:
        return self.servers["all" if self.topology == "all" else "api"]

    def start(self) -> Self:
        try:
            if self.topology == "all":
                self.servers["all"] = role_server(self.hub_env, self.workdir, "all").start()
            else:
                first = role_server(self.hub_env, self.workdir, "api").start()
                self.servers["api"] = first
                wait_ready(first)  # every table exists now
                rest = {r: role_server(self.hub_env, self.workdir, r) for r in ROLES if r != "api"}
                self.servers.update(rest)
                with ThreadPoolExecutor(len(rest)) as pool:
                    list(pool.map(ServerProcess.start, rest.values()))
            with ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(wait_ready, self.servers.values()))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        with ThreadPoolExecutor(max(1, len(self.servers))) as pool:
            list(pool.map(ServerProcess.stop, self.servers.values()))

    def role_items(self) -> dict[str, float]:
        """``hub_role_items_total`` by role, summed over the processes."""
        totals: dict[str, float] = {}
        for server in self.servers.values():
            for role, value in scrape_role_items(server.base_url).items():
                totals[role] = totals.get(role, 0.0) + value
        return totals


def scrape_role_items(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith('hub_role_items_total{role="'):
            labels, _, value = line.rpartition(" ")
            found[labels.split('"')[1]] = float(value)
    return found


@dataclass
class CpuMeter:
    """CPU seconds used between :meth:`start` and :meth:`stop` by the processes of a run.

    PostgreSQL backends are found by database (pg_stat_activity) at both ends; a backend seen
    only at the end counts in full, one gone before the end is missed (pools keep theirs).
    """

    processes: dict[str, int]  # name -> pid
    database_urls: list[str]
    started: dict[str, float] = field(default_factory=dict)
    backends: dict[int, float] = field(default_factory=dict)
    wall: float = 0.0
    machine: tuple[float, float] = (0.0, 0.0)
    client: float = 0.0

    def start(self) -> CpuMeter:
        self.started = {name: cpu_seconds(pid) for name, pid in self.processes.items()}
        self.backends = {pid: cpu_seconds(pid) for pid in backend_pids(self.database_urls)}
        self.machine = machine_busy()
        self.client = time.process_time()
        self.wall = time.perf_counter()
        return self

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        used = {name: cpu_seconds(pid) - self.started[name] for name, pid in self.processes.items()}
        postgres = 0.0
        for pid in backend_pids(self.database_urls):
            postgres += cpu_seconds(pid) - self.backends.get(pid, 0.0)
        used["postgres"] = postgres
        used["client"] = time.process_time() - self.client
        busy, total = machine_busy()
        cores = len(os.sched_getaffinity(0))
        return {
            "wall_seconds": wall,
            "cpu_seconds": used,
            "cpu_share": {name: seconds / wall for name, seconds in used.items()},
            "machine_busy": (busy - self.machine[0]) / max(total - self.machine[1], 1e-9),
            "cores": cores,
        }


def cpu_summary(cpu: dict[str, Any], top: int = 3) -> str:
    """'process 95%, project 60%, postgres 30%' (percent of one core over the window)."""
    shares = sorted(cpu["cpu_share"].items(), key=lambda kv: kv[1], reverse=True)
    return ", ".join(f"{name} {share * 100:.0f}%" for name, share in shares[:top])


def cpu_per_item(cpu: dict[str, Any], items: int, top: int = 4) -> str:
    """'process 0.71, project 0.90, ... ms' of CPU per item, the costliest first, and the sum."""
    costs = sorted(cpu["cpu_seconds"].items(), key=lambda kv: kv[1], reverse=True)
    total = sum(seconds for _, seconds in costs) / items * 1000
    shown = ", ".join(f"{name} {seconds / items * 1000:.2f}" for name, seconds in costs[:top])
    return f"{shown}; all {total:.2f} ms"
