"""A downstream service's webhook endpoint on loopback: a real HTTP server (uvicorn, in a
thread) that records every request, whose Standard Webhooks signatures the tests check with
the specification's reference library (``standardwebhooks``, not the hub's code:
:meth:`Received.verifies`). It answers as told: a status (500, 410, 503 with ``Retry-After``,
a redirect), slowly, with an endless body, for every request or for one customer's events
only; it can also go down (connections refused) and come back up on the same port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.processes import free_port


@dataclass
class Received:
    """One request as it arrived; its signatures are checked with the reference library."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int = 200  # what it was answered

    def verifies(self, secret: str) -> bool:
        """Whether the reference library accepts the request with ``secret``."""
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True

    def signatures_with(self, secret: str) -> int:
        """How many of the request's signatures verify on their own with ``secret`` (the
        reference library given each one as if it were alone)."""
        count = 0
        for signature in self.headers.get("webhook-signature", "").split(" "):
            alone = Received(
                self.path, {**self.headers, "webhook-signature": signature}, self.body, self.at
            )
            count += alone.verifies(secret)
        return count

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def customer(self) -> str | None:
        value = self.json.get("customer_id")
        return str(value) if value is not None else None


@dataclass
class Rule:
    """How to answer: ``status`` (``None``: 200 after the delay), ``times`` left (None:
    always), only for ``customer``'s events when given."""

    status: int | None = None
    times: int | None = None
    customer: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    endless: bool = False  # stream a body that never ends


class WebhookReceiver:
    """``with WebhookReceiver() as receiver``: serving on ``receiver.url`` until the end."""

    def __init__(self) -> None:
        self.requests: list[Received] = []  # answered, in the order of their answers
        self.arrivals: list[Received] = []  # as they arrived (before any delay)
        self._rules: list[Rule] = []
        self._changed = threading.Condition()
        # A port of free_port()'s, not the OS's pick: under pytest-xdist nobody else is
        # given it while down() has it closed (the outage tests bring it back up).
        self._socket = self._bind(free_port())
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[Route("/{path:path}", self._receive, methods=["POST", "GET", "PUT"])]
        )

    # -- control -----------------------------------------------------------------------

    def answer(
        self,
        status: int | None = None,
        *,
        times: int | None = None,
        customer: str | None = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
        endless: bool = False,
    ) -> Rule:
        """Answer the matching requests this way (the first matching rule applies)."""
        rule = Rule(status, times, customer, delay, headers or {}, endless)
        with self._changed:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Answer 200 at once again."""
        with self._changed:
            self._rules.clear()

    def start(self) -> WebhookReceiver:
        if self._socket.fileno() == -1:  # after down(): the same port again
            self._socket = self._bind(self.port)
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            assert self._thread.is_alive(), "the receiver did not start"
            assert time.monotonic() < deadline, "the receiver did not start in time"
            time.sleep(0.01)
        return self

    def down(self) -> None:
        """Stop serving: connections to the port are refused until :meth:`start`."""
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self._socket.fileno() != -1:
            self.down()

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    # -- reading -----------------------------------------------------------------------

    def wait(
        self,
        check: Callable[[list[Received]], Any],
        timeout: float = 15.0,
        *,
        arrived: bool = False,
    ) -> Any:
        """``check(requests)`` once it is truthy (checked on every request answered, or
        with ``arrived`` on every request as it arrives); fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := check(list(self.arrivals if arrived else self.requests))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout}s; {len(self.requests)} requests"
                    )
                self._changed.wait(min(left, 0.5))
        return found

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx, in arrival order."""
        with self._changed:
            return [r for r in self.requests if 200 <= r.status < 300]

    # -- serving -------------------------------------------------------------------------

    def _rule_for(self, received: Received) -> Rule | None:
        customer = None
        with suppress(ValueError, AttributeError):
            customer = received.customer
        for rule in self._rules:
            if rule.customer is not None and rule.customer != customer:
                continue
            if rule.times is not None:
                if rule.times <= 0:
                    continue
                rule.times -= 1
            return rule
        return None

    async def _receive(self, request: Request) -> Response:
        received = Received(
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            at=time.monotonic(),
        )
        with self._changed:
            self.arrivals.append(received)
            self._changed.notify_all()
            rule = self._rule_for(received)
        status = rule.status if rule is not None and rule.status is not None else 200
        received.status = status
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        if rule is not None and rule.endless:
            return StreamingResponse(_endless(), status, media_type="text/plain")
        headers = rule.headers if rule is not None else {}
        return Response(f"answered {status}\r\n\tok\x00", status, headers=headers)


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 1024
        await asyncio.sleep(0.01)
