"""Processes under test: ``hub serve`` (or the baseline app) on a free loopback port.

A server runs as a subprocess with its own temporary data directory and admin token, is waited
for on ``/healthz``, measured through ``/proc/<pid>/status`` and stopped with SIGTERM.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from tests.support.processes import HOST, Started, free_port, stop_process

ADMIN_TOKEN = "bench-admin-token"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM...), 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


@dataclass(frozen=True)
class ProcessSample:
    at: float  # seconds since the load began
    rss_kib: int
    fds: int
    sockets: int  # of the fds: the clients' connections among them
    files: int  # of the fds: files (databases, their journals, logs)
    threads: int
    processes: int
    #: Of ``rss_kib``: the top process's own (``hub serve``'s, without its projection child).
    top_rss_kib: int = 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def open_fds(pid: int) -> Counter[str]:
    """The open file descriptors of a process by kind: ``socket``, ``file`` or ``other``
    (pipes, eventfds, epoll...)."""
    kinds: Counter[str] = Counter()
    try:
        entries = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return kinds
    for entry in entries:
        try:
            target = str(entry.readlink())
        except (FileNotFoundError, ProcessLookupError):
            continue  # closed meanwhile
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith("/"):
            kinds["file"] += 1
        else:
            kinds["other"] += 1
    return kinds


def sample_processes(pid: int, at: float) -> ProcessSample:
    pids = process_tree(pid)
    fds: Counter[str] = Counter()
    for p in pids:
        fds.update(open_fds(p))
    return ProcessSample(
        at=at,
        rss_kib=sum(proc_status_kib(p, "VmRSS") for p in pids),
        fds=fds.total(),
        sockets=fds["socket"],
        files=fds["file"],
        threads=sum(proc_status_kib(p, "Threads") for p in pids),  # a count, not kB
        processes=len(pids),
        top_rss_kib=proc_status_kib(pid, "VmRSS"),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone or not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hub_command() -> list[str]:
    """``hub`` as installed next to this interpreter, else the same entry point via ``-c``."""
    script = Path(sys.executable).with_name("hub")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from hub.cli import main; main()"]


def process_env(hub: dict[str, str]) -> dict[str, str]:
    """The environment of a child process: this one's without its ``HUB_*`` settings, plus
    ``hub`` (so a developer's own settings never leak into a measurement)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | hub


def hub_variables(settings: dict[str, str]) -> dict[str, str]:
    """``{"twilio__auth_token": v}`` -> ``{"HUB_TWILIO__AUTH_TOKEN": v}``."""
    return {f"HUB_{k.upper()}": v for k, v in settings.items()}


class ServerProcess(Started):
    """A server subprocess on ``127.0.0.1:<port>``; a context manager that always stops it."""

    def __init__(
        self,
        command: list[str],
        *,
        port: int,
        env: dict[str, str] | None = None,
        log_path: Path,
        health_path: str = "/healthz",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.command = command
        self.port = port
        self.env = env or {}
        self.log_path = log_path
        self.health_path = health_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.cwd = Path(__file__).resolve().parents[1]  # the repository: ``-m bench...`` works

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Self:
        env = process_env(self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.process.returncode}: {self.log_tail()}"
                    )
                try:
                    if client.get(self.health_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server not healthy after {self.start_timeout}s: {self.log_tail()}")

    def rss_kib(self) -> int:
        """Resident memory of the server and its children (``hub serve``'s projection
        process) now."""
        return sum(proc_status_kib(pid, "VmRSS") for pid in process_tree(self.pid))

    def peak_rss_kib(self) -> int:
        """The kernel's high-water marks of resident memory since each process of the
        server's tree started, added up (at least the peak of their sum)."""
        return sum(proc_status_kib(pid, "VmHWM") for pid in process_tree(self.pid))

    def cpu_seconds(self) -> float:
        """User + system CPU time the server and its children have used so far."""
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))

    def stop(self) -> None:
        stop_process(self.process, STOP_TIMEOUT)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def hub_server(data_dir: Path, *, log_level: str = "WARNING", **env: str) -> ServerProcess:
    """``hub serve`` on a free port with ``data_dir`` and the bench admin token.

    Logging at WARNING: uvicorn's per-request access log would otherwise be part of every
    figure (the baseline app runs at the same level).
    """
    port = free_port()
    settings_env = {
        "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
        "HUB_LOG_LEVEL": log_level,
        **hub_variables(env),
    }
    return ServerProcess(
        [*hub_command(), "serve", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)],
        port=port,
        env=settings_env,
        log_path=data_dir.parent / f"hub-serve-{port}.log",
    )


def baseline_server(
    workdir: Path, *options: str, env: dict[str, str] | None = None
) -> ServerProcess:
    """The trivial FastAPI app of :mod:`bench.baseline_app` under uvicorn, like ``hub serve``
    (``options``: more of its command-line options; ``env``: ``HUB_*`` settings it reads)."""
    port = free_port()
    return ServerProcess(
        [sys.executable, "-m", "bench.baseline_app", "--host", HOST, "--port", str(port), *options],
        port=port,
        env=env,
        log_path=workdir / f"baseline-{port}.log",
    )


def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class TempDir:
    """A temporary directory removed afterwards unless ``keep`` (for post-mortems)."""

    def __init__(self, prefix: str, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"hub-bench-{prefix}-"))
        self.keep = keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except FileNotFoundError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "cpu": cpu,
        "platform": platform.platform(),
    }
