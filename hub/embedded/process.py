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
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from hub.config import Settings
from hub.embedded.follower import LogFollower
from hub.runtime.children import ChildProcess, child_report, configure_logging
from hub.runtime.views import open_views
from hub.store import open_store

__all__ = ["FollowerProcess"]

log = logging.getLogger(__name__)


class FollowerProcess(ChildProcess):
    """The server's side of the projection process: what ``EmbeddedRuntime`` needs of a
    follower (``wake``, ``stop``, ``alive``, ``error``), plus :meth:`start`, which returns
    once the child has caught up."""

    module = __name__
    name = "projection process"

    def __init__(self, settings: Settings, *, restart_seconds: float = 1.0) -> None:
        super().__init__(
            (settings, gc.get_threshold(), logging.getLogger().level),
            restart_seconds=restart_seconds,
        )
        #: The server's end of the child's wake-up pipe (a file descriptor; -1: none),
        #: written and replaced under ``_wake_lock`` (a closed number may be reused at once).
        self._wake_fd = -1
        #: The byte the server and the child share: 1 while a wake-up is pending.
        self._pending: mmap.mmap | None = None
        self._wake_lock = threading.Lock()

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

    def _open_channel(self) -> tuple[list[int], Callable[[], None]]:
        """The wake-up pipe, and the byte shared in a mapped temporary file (owner-only, and
        no name once created)."""
        woken, wake_fd = os.pipe()
        flag = tempfile.TemporaryFile()  # noqa: SIM115 (closed once the child has it)
        flag.write(b"\0")
        flag.flush()
        pending = mmap.mmap(flag.fileno(), 1)
        os.set_blocking(wake_fd, False)
        self._close_channel()
        with self._wake_lock:
            self._wake_fd = wake_fd
            self._pending = pending

        def close_childs() -> None:
            os.close(woken)
            flag.close()

        return [woken, flag.fileno()], close_childs

    def _close_channel(self) -> None:
        with self._wake_lock:
            if self._wake_fd >= 0:
                os.close(self._wake_fd)
                self._wake_fd = -1
            if self._pending is not None:
                self._pending.close()
                self._pending = None


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


def follow(
    settings: Settings, woken: int, send: Callable[[str, Any], None], pending: mmap.mmap
) -> None:
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
    """``python -m hub.embedded.process REPORT_FD WAKE_FD FLAG_FD``, settings pickled on
    stdin (only :class:`FollowerProcess` starts it)."""
    report, woken, flag = (int(arg) for arg in sys.argv[1:4])
    settings, gc_thresholds, log_level = pickle.load(sys.stdin.buffer)  # noqa: S301 (our parent)
    gc.set_threshold(*gc_thresholds)
    configure_logging(log_level)
    pending = mmap.mmap(flag, 1)
    os.close(flag)  # the mapping stays
    follow(settings, woken, child_report(report), pending)


if __name__ == "__main__":
    _main()
