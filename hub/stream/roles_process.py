"""``hub run all``'s stream roles in a process of their own (``HUB_STREAM_ROLES_PROCESS``), so
that the roles that answer requests (ingest, api, dispatch) and those that follow the topics
and the log (process, relay, project, webhooks) each get a core instead of sharing one
interpreter lock.

:class:`RolesProcess` is the server's side: it starts the child (``hub.stream.roles_child``)
and waits until its roles have started, starts it again if it dies, and stops it with the
server (``hub.runtime.children``). The two talk over one duplex pipe: the server asks, the child
answers: its roles' problems for /readyz, its metrics for /metrics. The pipe's end of file is
how the child learns that it should stop.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from hub.config import Settings
from hub.runtime.children import ChildProcess

__all__ = ["STREAM_ROLES", "RolesProcess"]

#: The roles ``hub run all`` runs in its child process.
STREAM_ROLES = ("process", "relay", "project", "webhooks")


class RolesProcess(ChildProcess):
    """The server's side of the stream roles' process."""

    module = "hub.stream.roles_child"
    name = "stream roles process"

    def __init__(
        self, settings: Settings, roles: Sequence[str], *, restart_seconds: float = 1.0
    ) -> None:
        super().__init__(
            (settings, tuple(roles), logging.getLogger().level), restart_seconds=restart_seconds
        )
        #: The server's end of the pipe (None between two children), and the number of the
        #: last question asked on it: an answer that comes after its asker gave up is
        #: dropped by the next asker.
        self._conn: Connection | None = None
        self._asked = 0
        self._ask_lock = threading.Lock()

    def ask(self, question: str, timeout: float) -> Any:
        """The child's answer to ``question`` (``problems``, ``metrics``), or None when it
        does not answer within ``timeout`` seconds (it is being started again, or busy)."""
        with self._ask_lock:
            conn = self._conn
            if conn is None or not self.alive:
                return None
            self._asked += 1
            asked = self._asked
            deadline = time.monotonic() + timeout
            try:
                conn.send((question, asked))
                while conn.poll(max(deadline - time.monotonic(), 0)):
                    answered, value = conn.recv()
                    if answered == asked:
                        return value
            except (EOFError, OSError):  # the child is gone, or being replaced
                return None
            return None

    def _open_channel(self) -> tuple[list[int], Callable[[], None]]:
        mine, childs = multiprocessing.Pipe(duplex=True)
        self._close_channel()
        with self._ask_lock:
            self._conn = mine
        return [childs.fileno()], childs.close

    def _close_channel(self) -> None:
        # Under the asker's lock: a file descriptor closed while another thread waits on it
        # may be reused at once by the next pipe.
        with self._ask_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
