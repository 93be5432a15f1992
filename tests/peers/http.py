"""Loopback peers for connector tests: a provider's API as a small Starlette app served by a
real uvicorn server on 127.0.0.1, recording every request and able to fail on demand."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.processes import free_port
from tests.support.servers import ThreadedUvicorn


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
        self._uvicorn = ThreadedUvicorn(self.app)
        self.port = self._uvicorn.port
        self.url = self._uvicorn.url

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
        self._uvicorn.start()
        return self

    def stop(self) -> None:
        self._uvicorn.stop(10)


@contextmanager
def running(peer: Peer) -> Iterator[Peer]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def closed_port() -> str:
    """A loopback URL nothing listens on (a provider that is down)."""
    return f"http://127.0.0.1:{free_port()}"
