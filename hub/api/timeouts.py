"""Read timeouts of the HTTP server, so that a slow client (slow-loris) costs nothing.

uvicorn has no header or body read timeout of its own (``timeout_keep_alive`` only covers the
idle time between requests, and any byte resets it), and ASGI middleware runs only once the
request head is complete, so the guard is uvicorn's httptools protocol with deadlines added:

- the request head (request line and headers) must be complete within ``head_timeout`` of
  the connection opening, or of the first byte of a later request on the same connection;
  otherwise the client is answered 408 and disconnected (a connection that sent nothing at
  all is just closed);
- a request body may pause for at most ``body_timeout`` seconds, and after its first
  ``body_timeout`` seconds it must average ``body_min_rate`` bytes a second (so one byte
  every few seconds does not hold a connection either); otherwise it is answered 408 in the
  API's error shape and the application sees the client as gone, so nothing is recorded.

Responses are not timed: once a request has arrived, an event stream or a WebSocket (which
leaves this protocol at the upgrade) lasts as long as it needs. Time the server waits on
itself (reading paused by back-pressure, a body held back until the application asks for it
with ``Expect: 100-continue``) is not counted against the client.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.config import Settings
from hub.web.errors import error_response

_Phase = Literal["open", "head", "body", "idle"]


def _timeout_response(message: str, seconds: float) -> bytes:
    """A complete ``408`` response in the API's error shape that closes the connection."""
    response = error_response(408, "request_timeout", message, {"timeout_seconds": seconds})
    head = [b"HTTP/1.1 408 Request Timeout"]
    head += [name + b": " + value for name, value in response.raw_headers]
    head += [b"connection: close", b"", b""]
    return b"\r\n".join(head) + response.body


class SlowClientGuard(HttpToolsProtocol):
    """uvicorn's httptools protocol with request head and body deadlines (class attributes,
    set by :func:`slow_client_protocol`)."""

    head_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    body_min_rate: ClassVar[float] = 500.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: _Phase = "open"
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_bytes = 0
        self._last_chunk = 0.0

    # -- the deadlines -----------------------------------------------------------------------

    def _arm(self, deadline: float) -> None:
        """One timer per connection, set at each phase's start; a body's chunks move its
        deadline later without touching the timer, which re-arms itself when it fires."""
        self._disarm()
        self._deadline = deadline
        self._timer = self.loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        self._deadline = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _body_deadline(self) -> float:
        paused = self._last_chunk + self.body_timeout
        too_slow = self._body_started + self.body_timeout + self._body_bytes / self.body_min_rate
        return min(paused, too_slow)

    def _server_is_waiting(self) -> bool:
        """Whether the server, not the client, holds the request up just now."""
        cycle = self.cycle
        return self.flow.read_paused or (
            self._phase == "body" and cycle is not None and cycle.waiting_for_100_continue
        )

    def _expired(self) -> None:
        self._timer = None
        now = self.loop.time()
        if self._server_is_waiting():
            # Restart the allowance: the client cannot send while we do not read.
            self._last_chunk = self._body_started = now
            self._body_bytes = 0
            self._arm(now + (self.body_timeout if self._phase == "body" else self.head_timeout))
            return
        if self._phase == "body":
            self._deadline = self._body_deadline()
        if now < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._expired)
            return
        if self.transport.is_closing():
            return
        if self._phase == "head":
            message = f"the request head did not arrive within {self.head_timeout:g} s"
            self.transport.write(_timeout_response(message, self.head_timeout))
        elif self._phase == "body":
            self._end_body()
        self.transport.close()  # buffered bytes (the 408) are still sent first

    def _end_body(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            message = (
                f"the request body stalled: none for {self.body_timeout:g} s, or slower than "
                f"{self.body_min_rate:g} bytes a second"
            )
            self.transport.write(_timeout_response(message, self.body_timeout))
        if cycle is not None:
            # The application's receive() now returns http.disconnect (its body read fails
            # before anything is recorded), and whatever it still sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()

    # -- uvicorn's callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.loop.time() + self.head_timeout)  # also a client that sends nothing

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "open":  # a later request on a kept-alive connection
            self._arm(self.loop.time() + self.head_timeout)
        self._phase = "head"

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            self._phase = "idle"  # a WebSocket: this protocol is about to hand over
            return
        now = self.loop.time()
        self._phase = "body"
        self._body_started = self._last_chunk = now
        self._body_bytes = 0
        self._arm(now + self.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)
        self._last_chunk = self.loop.time()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = "idle"  # until the next request: timeout_keep_alive's part
        super().on_message_complete()


def slow_client_protocol(settings: Settings) -> type[SlowClientGuard]:
    """The protocol class to give uvicorn (``http=``) with ``settings``' read timeouts."""

    class Configured(SlowClientGuard):
        head_timeout = settings.request_head_timeout
        body_timeout = settings.request_body_timeout
        body_min_rate = settings.request_body_min_rate

    return Configured
