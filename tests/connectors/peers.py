"""Loopback peers for connector tests: a provider's API as a small Starlette app served by a
real uvicorn server on 127.0.0.1, recording every request and able to fail on demand."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class SeenRequest:
    """One request a peer received, as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None


Handler = Callable[[Request, SeenRequest], Awaitable[Response]]


class Peer:
    """A provider API on loopback. Routes are ``(method, path template, handler)``; every
    request is recorded in :attr:`requests`; :meth:`fail_next` makes the next requests
    answer with a given status and body instead (an outage, a refusal, a rate limit)."""

    def __init__(self, routes: list[tuple[str, str, Handler]]) -> None:
        self.requests: list[SeenRequest] = []
        self._failures: list[tuple[int, Any, dict[str, str]]] = []
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[Route(path, self._wrap(h), methods=[m]) for m, path, h in routes]
        )
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def fail_next(
        self, status: int, body: Any = None, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self._failures += [(status, body, headers or {})] * times

    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            seen = SeenRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            kind = request.headers.get("content-type", "")
            if kind.startswith("application/x-www-form-urlencoded"):
                seen.form = parse_qs(body.decode(), keep_blank_values=True)
            elif kind.startswith("application/json") and body:
                seen.json = await request.json()
            with self._lock:
                self.requests.append(seen)
                failure = self._failures.pop(0) if self._failures else None
            if failure is not None:
                status, payload, headers = failure
                return JSONResponse(payload or {"error": "injected"}, status, headers=headers)
            return await handler(request, seen)

        return endpoint

    def start(self) -> Peer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("peer did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


@contextmanager
def running(peer: Peer) -> Iterator[Peer]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def closed_port() -> str:
    """A loopback URL nothing listens on (a provider that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
