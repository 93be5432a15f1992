"""Child processes a server starts, watches and starts again: ``hub serve``'s projection
process (``hub.embedded.process``) and ``hub run all``'s stream roles (``hub.stream.child``).

A child is a new interpreter (``python -m <module> <file descriptors>``: the server's threads
and connections are not inherited) that gets what it needs pickled on its standard input. It
reports to the server over a pipe: ``("ready", value)`` once it serves, ``("error", text or
None)`` when it starts or stops failing. The server keeps the other end of a channel down to
the child, whose end of file tells the child to stop: it comes when the server closes it, or
when the server dies however it died, so no child outlives its server.

:class:`ChildProcess` does the rest: it starts the child and waits until it is ready, starts it
again (after a pause) when it dies, and stops it with the server. Subclasses open the channel
(:meth:`ChildProcess._open_channel`) and say what the child runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["ChildFailed", "ChildProcess", "child_report", "configure_logging", "wait"]

log = logging.getLogger(__name__)

#: Seconds between the supervisor's looks at the child.
LOOK_SECONDS = 0.5


class ChildFailed(RuntimeError):
    """The child ended before it was ready."""


class ChildProcess:
    """The server's side of a supervised child process."""

    #: The module the child runs (``python -m``), and what logs call it.
    module: str
    name: str

    def __init__(self, payload: Any, *, restart_seconds: float = 1.0) -> None:
        self._payload = payload
        self._restart_seconds = restart_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # between a restart and a stop
        #: The child now running, and the server's end of its report pipe.
        self._child: tuple[subprocess.Popen[bytes], Connection] | None = None
        self._supervisor: threading.Thread | None = None
        #: Why the child is not doing its work, if it is not (for /readyz).
        self.error: str | None = None
        #: How many times the child was started again after it died.
        self.restarts = 0

    # -- what subclasses say -----------------------------------------------------------------

    def _open_channel(self) -> tuple[list[int], Callable[[], None]]:
        """Open the server's side of a new child's downward channel (closing the previous
        one); return the child's file descriptors and what closes them once the child has
        them."""
        raise NotImplementedError

    def _close_channel(self) -> None:
        """Close the server's side of the downward channel: the child stops after what it is
        doing."""
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child; return once it is ready (raise :class:`ChildFailed` if it ended
        first)."""
        process, conn = self._spawn()
        while True:
            try:
                if conn.poll(LOOK_SECONDS) and self._receive(conn.recv()):
                    break
            except (EOFError, OSError):
                wait(process, LOOK_SECONDS)
            if process.poll() is not None:
                raise ChildFailed(
                    f"the {self.name} exited with code {process.returncode} before it was "
                    f"ready{': ' + self.error if self.error else ''}"
                )
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"{self.name} supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (it ends after what it is doing) and its supervision."""
        with self._lock:  # no new child after this
            self._stopping.set()
            self._close_channel()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if self._child is not None:
            process, conn = self._child
            if not wait(process, timeout):
                log.warning("the %s did not stop in %.0fs; killing it", self.name, timeout)
                process.kill()
                wait(process, timeout)
            conn.close()

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child[0].poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`)."""
        return self._child[0].pid if self._child is not None else None

    # -- the server's side -------------------------------------------------------------------

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Connection]:
        """Start a child with its two channels; its payload goes down its standard input."""
        receiving, sending = os.pipe()
        try:
            fds, close_childs = self._open_channel()
        except BaseException:
            os.close(receiving)
            os.close(sending)
            raise
        try:
            process = subprocess.Popen(  # noqa: S603 (this interpreter, a module of the hub)
                [sys.executable, "-m", self.module, str(sending), *map(str, fds)],
                stdin=subprocess.PIPE,
                pass_fds=(sending, *fds),
            )
        except OSError:
            self._close_channel()
            os.close(receiving)
            raise
        finally:
            # The child's ends: each side sees the end of file once the other is gone.
            os.close(sending)
            close_childs()
        if self._child is not None:
            self._child[1].close()
        self._child = process, Connection(receiving, writable=False)
        assert process.stdin is not None
        # A child that died at once breaks this pipe: the supervisor sees it gone and
        # starts another.
        with contextlib.suppress(BrokenPipeError), process.stdin:
            pickle.dump(self._payload, process.stdin)
        return self._child

    def _receive(self, message: tuple[str, Any]) -> bool:
        """Handle a message of the child; True when it says it is ready."""
        kind, value = message
        if kind == "error":
            self.error = value and f"{self.name}: {value}"
            return False
        if kind == "ready":
            self.error = None
            return True
        raise ValueError(f"unknown message from the {self.name}: {kind!r}")

    def _supervise(self) -> None:
        """Read the child's messages; start it again when it dies (until stopped)."""
        while not self._stopping.is_set():
            assert self._child is not None
            process, conn = self._child
            try:
                if conn.poll(LOOK_SECONDS):
                    self._receive(conn.recv())
                    continue
            except (EOFError, OSError):  # the child is gone, or going
                wait(process, LOOK_SECONDS)
            if process.poll() is None or self._stopping.is_set():
                continue
            self.error = f"the {self.name} exited with code {process.returncode}"
            log.error("%s; starting it again in %.0fs", self.error, self._restart_seconds)
            if self._stopping.wait(self._restart_seconds):
                break
            with self._lock:
                if self._stopping.is_set():
                    break
                try:
                    self._spawn()
                except OSError as exc:  # out of processes or files: the next look retries
                    self.error = f"the {self.name} could not start: {exc}"
                    log.error("%s", self.error)
                    continue
                self.restarts += 1


def wait(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to end; whether it has."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    return process.poll() is not None


def child_report(fd: int) -> Callable[[str, Any], None]:
    """The child's side of the report pipe: ``send(kind, value)``, which does nothing once
    the server is gone (the child's channel ends then too, and it stops)."""
    report = Connection(fd, readable=False)
    lock = threading.Lock()

    def send(kind: str, value: Any) -> None:
        with lock, contextlib.suppress(OSError):
            report.send((kind, value))

    return send


def configure_logging(level: int | str) -> None:
    """Logging of a hub process: its lines on standard error, at ``level``."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO: a webhook endpoint's URL may carry its
    # receiver's credentials in the path or query. The hub logs its own outcomes, by id.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
