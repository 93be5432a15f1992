"""The log follower in a process of its own: ``hub serve``'s default
(``HUB_PROJECTION_PROCESS``), so that recording (the server) and projecting (the child) each
get a core instead of sharing one interpreter lock.

The child opens the same store and views and runs a :class:`~hub.embedded.follower.LogFollower`
in its main thread. The server wakes it after a commit (a byte down a pipe) and supervises
it: :class:`FollowerProcess` starts it and waits until it has caught up, starts it again
(after a pause) if it dies, and stops it with the server. The child tells the server over a
second pipe when it has caught up and when it starts or stops failing; positions and lag are
read from the views database, as with the thread.

A commit while a wake-up is still pending writes nothing: the two share one byte of memory
(a mapped temporary file), set by the server when it writes and cleared by the child just
before each read of the log, so what was committed while it was set is in that read. Under
load the server writes once a round of the child instead of once a commit (each write gave
the interpreter lock away, and the child's reader thread took its own to take the byte).

The wake-up pipe is also how the child learns that it should stop: its end of file, which
comes when the server closes it or when the server dies however it died. Nothing else is
shared but that byte, so a child killed at any moment cannot leave a lock held that the
server would wait on.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import mmap
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from typing import Any

from hub.config import Settings
from hub.embedded.follower import LogFollower
from hub.runtime.views import open_views
from hub.store import open_store

__all__ = ["FollowerProcess", "ProjectionProcessFailed"]

log = logging.getLogger(__name__)

#: Seconds between the supervisor's looks at the child.
_LOOK_SECONDS = 0.5


class ProjectionProcessFailed(RuntimeError):
    """The projection process ended before it had caught up with the log."""


class FollowerProcess:
    """The server's side of the projection process: what ``EmbeddedRuntime`` needs of a
    follower (``wake``, ``stop``, ``alive``, ``error``), plus :meth:`start`, which returns
    once the child has caught up."""

    def __init__(self, settings: Settings, *, restart_seconds: float = 1.0) -> None:
        self._settings = settings
        self._restart_seconds = restart_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # between a restart and a stop
        #: The child now running, and the server's end of its report pipe.
        self._child: tuple[subprocess.Popen[bytes], Connection] | None = None
        #: The server's end of the child's wake-up pipe (a file descriptor; -1: none),
        #: written and replaced under ``_wake_lock`` (a closed number may be reused at once).
        self._wake_fd = -1
        #: The byte the server and the child share: 1 while a wake-up is pending.
        self._pending: mmap.mmap | None = None
        self._wake_lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        #: Why the projections are not being applied, if they are not (for /readyz).
        self.error: str | None = None
        #: How many times the child was started again after it died.
        self.restarts = 0
        #: Events the child applied to catch up when it started (the first time).
        self.caught_up = 0

    def wake(self, _position: int = 0) -> None:
        """Something was recorded: the child applies it now (called from any thread). A
        pending wake-up covers it (the child clears the flag before it reads); a full pipe
        means one is waiting already; a closed one, a child being replaced."""
        with self._wake_lock, contextlib.suppress(OSError):
            if self._pending is not None:
                if self._pending[0]:
                    return
                self._pending[0] = 1
            os.write(self._wake_fd, b"\0")

    def start(self) -> None:
        """Start the child; return once it has caught up with the log (raise
        :class:`ProjectionProcessFailed` if it ended first)."""
        process, conn = self._spawn()
        while True:
            try:
                if conn.poll(_LOOK_SECONDS) and self._receive(conn.recv()):
                    break
            except (EOFError, OSError):
                _wait(process, _LOOK_SECONDS)
            if process.poll() is not None:
                raise ProjectionProcessFailed(
                    f"the projection process exited with code {process.returncode} "
                    f"before it caught up{': ' + self.error if self.error else ''}"
                )
        self._supervisor = threading.Thread(
            target=self._supervise, name="projection-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (it ends after the batch it is applying) and its supervision."""
        with self._lock:  # no new child after this
            self._stopping.set()
            self._close_wake()  # the child's end of file: it stops after its batch
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if self._child is not None:
            process, conn = self._child
            if not _wait(process, timeout):
                log.warning("the projection process did not stop in %.0fs; killing it", timeout)
                process.kill()
                _wait(process, timeout)
            conn.close()

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child[0].poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`)."""
        return self._child[0].pid if self._child is not None else None

    # -- the server's side -------------------------------------------------------------------

    def _close_wake(self) -> None:
        with self._wake_lock:
            if self._wake_fd >= 0:
                os.close(self._wake_fd)
                self._wake_fd = -1
            if self._pending is not None:
                self._pending.close()
                self._pending = None

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Connection]:
        """Start a child (a new interpreter: the server's threads and connections are not
        inherited), with its two pipes; its settings go down its standard input."""
        woken, wake_fd = os.pipe()
        receiving, sending = os.pipe()
        with tempfile.TemporaryFile() as flag:  # owner-only, and no name once created
            flag.write(b"\0")
            flag.flush()
            pending = mmap.mmap(flag.fileno(), 1)
            try:
                process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                    [sys.executable, "-m", __name__, str(woken), str(sending), str(flag.fileno())],
                    stdin=subprocess.PIPE,
                    pass_fds=(woken, sending, flag.fileno()),
                )
            except OSError:
                pending.close()
                for fd in (wake_fd, receiving):
                    os.close(fd)
                raise
            finally:
                # The child's ends: each side sees the end of file once the other is gone.
                os.close(woken)
                os.close(sending)
        os.set_blocking(wake_fd, False)
        self._close_wake()
        with self._wake_lock:
            self._wake_fd = wake_fd
            self._pending = pending
        if self._child is not None:
            self._child[1].close()
        self._child = process, Connection(receiving, writable=False)
        assert process.stdin is not None
        # A child that died at once breaks this pipe: the supervisor sees it gone and
        # starts another.
        with contextlib.suppress(BrokenPipeError), process.stdin:
            level = logging.getLogger().level
            pickle.dump((self._settings, gc.get_threshold(), level), process.stdin)
        return self._child

    def _receive(self, message: tuple[str, Any]) -> bool:
        """Handle a message of the child; True when it says it has caught up."""
        kind, value = message
        if kind == "error":
            self.error = value and f"projection process: {value}"
            return False
        if kind == "ready":
            if not self.restarts:
                self.caught_up = int(value)
            self.error = None
            return True
        raise ValueError(f"unknown message from the projection process: {kind!r}")

    def _supervise(self) -> None:
        """Read the child's messages; start it again when it dies (until stopped)."""
        while not self._stopping.is_set():
            assert self._child is not None
            process, conn = self._child
            try:
                if conn.poll(_LOOK_SECONDS):
                    self._receive(conn.recv())
                    continue
            except (EOFError, OSError):  # the child is gone, or going
                _wait(process, _LOOK_SECONDS)
            if process.poll() is None or self._stopping.is_set():
                continue
            self.error = f"the projection process exited with code {process.returncode}"
            log.error("%s; starting it again in %.0fs", self.error, self._restart_seconds)
            if self._stopping.wait(self._restart_seconds):
                break
            with self._lock:
                if self._stopping.is_set():
                    break
                try:
                    self._spawn()
                except OSError as exc:  # out of processes or files: the next look retries
                    self.error = f"the projection process could not start: {exc}"
                    log.error("%s", self.error)
                    continue
                self.restarts += 1


def _wait(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to end; whether it has."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    return process.poll() is not None


# -- the child's side ----------------------------------------------------------------------


class _Wakeup(threading.Event):
    """The follower's wake-up in the child: clearing it (the follower does, before each read
    of the log) also clears the byte it shares with the server, which then writes again for
    the next commit."""

    def __init__(self, pending: mmap.mmap) -> None:
        super().__init__()
        self._pending = pending

    def clear(self) -> None:
        self._pending[0] = 0
        super().clear()


def follow(settings: Settings, woken: int, report: Connection, pending: mmap.mmap) -> None:
    """The projection process: catch up, say so, then follow the log until the wake-up
    pipe (file descriptor ``woken``) ends: the server closed it, or is gone. ``pending`` is
    the byte shared with the server (see the module's docstring)."""
    # A stop signal to the whole process group (Ctrl-C in a terminal, a service manager)
    # is the server's to act on: it stops the child in turn, after the child's batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    wakeup, stopping = _Wakeup(pending), threading.Event()
    threading.Thread(
        target=_listen, args=(woken, wakeup, stopping), name="wake-ups", daemon=True
    ).start()

    def send(kind: str, value: Any) -> None:
        with contextlib.suppress(OSError):  # the server is gone: the loop ends by itself
            report.send((kind, value))

    store = open_store(settings)
    try:
        follower = LogFollower(
            store,
            open_views(settings, store),
            batch_size=settings.projection_batch_size,
            poll_interval=settings.projection_poll_interval,
            coalesce=settings.projection_coalesce_ms / 1000,
            wakeup=wakeup,
            stopping=stopping,
            on_error=lambda error: send("error", error),
        )
        try:
            caught_up = follower.catch_up()
        except Exception as exc:
            send("error", f"{type(exc).__name__}: {exc}")
            raise
        if caught_up:
            log.info("projections caught up %d events from the store", caught_up)
        send("ready", caught_up)
        follower.follow()
    finally:
        store.close()


def _listen(woken: int, wakeup: threading.Event, stopping: threading.Event) -> None:
    """Turn the wake-up pipe's bytes into ``wakeup``, and its end into ``stopping``."""
    with contextlib.suppress(OSError):
        while os.read(woken, 4096):
            wakeup.set()
    stopping.set()
    wakeup.set()


def _main() -> None:
    """``python -m hub.embedded.process WAKE_FD REPORT_FD FLAG_FD``, settings pickled on
    stdin (only :class:`FollowerProcess` starts it)."""
    woken, report, flag = (int(arg) for arg in sys.argv[1:4])
    settings, gc_thresholds, log_level = pickle.load(sys.stdin.buffer)  # noqa: S301 (our parent)
    gc.set_threshold(*gc_thresholds)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pending = mmap.mmap(flag, 1)
    os.close(flag)  # the mapping stays
    follow(settings, woken, Connection(report, readable=False), pending)


if __name__ == "__main__":
    _main()
