"""A real uvicorn server on a free loopback port, in a thread: the hub under test
(``tests.support.api.LiveServer``) and the providers' APIs it talks to
(``tests.peers.http.Peer``) both run on it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class ThreadedUvicorn:
    """Serves ``app`` on 127.0.0.1 from :meth:`start` until :meth:`stop`."""

    def __init__(self, app: Any, **config: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 15) -> bool:
        """Ask the server to exit; returns whether its thread ended within ``timeout``."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
        return not self._thread.is_alive()
