"""Slow clients (slow-loris) against a real uvicorn server on loopback with the protocol
``hub serve`` uses (``hub.api.timeouts``), with one-second read timeouts: raw sockets that
trickle a request head or body are answered 408 and closed in time, while normal requests,
a slow but steady upload, an event stream and the chat WebSocket are not affected. The last
test checks that ``hub serve`` itself has the guard."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from hub.api.timeouts import slow_client_protocol
from hub.config import Settings
from hub.embedded.runtime import EmbeddedRuntime
from hub.server import build_app
from tests.support.api import ADMIN, ADMIN_TOKEN, interaction
from tests.support.hub_process import HubProcess
from tests.support.servers import ThreadedUvicorn

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MIN_RATE = 1000.0  # bytes a second after the first BODY_TIMEOUT
SLACK = 1.0  # scheduling slack on a loaded machine


class GuardedHub:
    """The app served as ``hub serve`` serves it, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = build_app(EmbeddedRuntime(settings))
        self._uvicorn = ThreadedUvicorn(
            self.app, http=slow_client_protocol(settings), timeout_graceful_shutdown=2
        )
        self.port = self._uvicorn.port
        self.url = self._uvicorn.url

    def __enter__(self) -> GuardedHub:
        self._uvicorn.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._uvicorn.stop(15), "uvicorn did not stop"

    def store_position(self) -> int:
        return int(httpx.get(f"{self.url}/readyz", timeout=5).json()["store_position"])


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[GuardedHub]:
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        request_head_timeout=HEAD_TIMEOUT,
        request_body_timeout=BODY_TIMEOUT,
        request_body_min_rate=MIN_RATE,
    )
    with GuardedHub(settings) as server:
        yield server


def _open(hub: GuardedHub | HubProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    sock.setblocking(False)
    return sock


def _trickle(
    socks: list[socket.socket], first: bytes, then: Callable[[int], bytes], every: float
) -> dict[socket.socket, tuple[float, bytes]]:
    """Send ``first`` on every socket, then ``then(n)`` every ``every`` seconds, until the
    server closes each; returns when each closed (seconds after ``first``) and what it got."""
    started = time.monotonic()
    got: dict[socket.socket, bytearray] = {s: bytearray() for s in socks}
    closed: dict[socket.socket, tuple[float, bytes]] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.sendall(first)
            selector.register(sock, selectors.EVENT_READ)
        n, next_send = 0, started + every
        while len(closed) < len(socks) and time.monotonic() - started < 10:
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    got[sock] += data
                else:
                    closed[sock] = (time.monotonic() - started, bytes(got[sock]))
                    selector.unregister(sock)
            if time.monotonic() >= next_send:
                n += 1
                next_send += every
                for sock in socks:
                    if sock not in closed:
                        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                            sock.send(then(n))
    for sock in socks:
        sock.close()
    assert len(closed) == len(socks), f"{len(socks) - len(closed)} connections still open"
    return closed


def _error_of(response: bytes) -> dict[str, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), response
    assert b"content-type: application/json" in head.lower(), head
    assert b"connection: close" in head.lower(), head
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed) == {"error"}, parsed
    assert parsed["error"]["code"] == "request_timeout"
    return parsed["error"]


def test_connections_trickling_their_headers_are_answered_408_and_closed(
    hub: GuardedHub,
) -> None:
    socks = [_open(hub) for _ in range(50)]
    closed = _trickle(
        socks,
        b"GET /healthz HTTP/1.1\r\nHost: hub\r\n",
        lambda n: f"X-Slow-{n}: 1\r\n".encode(),
        every=0.2,
    )
    for after, response in closed.values():
        # Counted from connecting, a moment before the first header line went out.
        assert HEAD_TIMEOUT / 2 <= after <= HEAD_TIMEOUT + SLACK, after
        assert _error_of(response)["details"] == {"timeout_seconds": HEAD_TIMEOUT}


def test_a_connection_that_sends_nothing_is_closed(hub: GuardedHub) -> None:
    (after, response), *_ = _trickle([_open(hub)], b"", lambda _: b"", every=5).values()
    assert after <= HEAD_TIMEOUT + SLACK
    assert response == b""  # nothing was asked: nothing to answer


def _post_head(length: int) -> bytes:
    return (
        "POST /v1/interactions HTTP/1.1\r\nHost: hub\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_stalled_body_is_answered_408_and_nothing_is_recorded(hub: GuardedHub) -> None:
    before = hub.store_position()
    body = json.dumps(interaction()).encode()
    half = len(body) // 2
    (after, response), *_ = _trickle(
        [_open(hub)], _post_head(len(body)) + body[:half], lambda _: b"", every=5
    ).values()
    assert BODY_TIMEOUT - 0.1 <= after <= BODY_TIMEOUT + SLACK, after
    _error_of(response)
    assert hub.store_position() == before


def test_a_body_trickled_byte_by_byte_is_cut_off_although_it_never_pauses_long(
    hub: GuardedHub,
) -> None:
    before = hub.store_position()
    body = json.dumps(interaction()).encode()
    (after, response), *_ = _trickle(
        [_open(hub)], _post_head(len(body)), lambda n: body[n - 1 : n], every=0.1
    ).values()
    # Each pause is 0.1 s, far below the body timeout; the average rate is what fails.
    assert after <= BODY_TIMEOUT + SLACK, after
    _error_of(response)
    assert hub.store_position() == before


def test_normal_requests_and_a_slow_but_steady_upload_go_through(hub: GuardedHub) -> None:
    with httpx.Client(base_url=hub.url, headers=ADMIN, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(0.5)  # a kept-alive connection's next request gets a fresh head timeout
        assert client.get("/healthz").status_code == 200

    # 3000 bytes over ~2 s: longer than the body timeout, faster than the minimum rate.
    body = json.dumps(interaction()).encode().ljust(3000)
    chunks = [body[i : i + 300] for i in range(0, len(body), 300)]

    def steady() -> Iterator[bytes]:
        for chunk in chunks:
            time.sleep(0.2)
            yield chunk

    response = httpx.post(
        f"{hub.url}/v1/interactions",
        content=steady(),
        headers={**ADMIN, "Content-Type": "application/json", "Content-Length": "3000"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def test_an_event_stream_and_the_chat_socket_outlive_the_timeouts(hub: GuardedHub) -> None:
    quiet = HEAD_TIMEOUT + BODY_TIMEOUT + SLACK
    with (
        httpx.Client(base_url=hub.url, headers=ADMIN, timeout=10) as client,
        client.stream("GET", "/v1/events/stream") as events,
        connect(
            hub.url.replace("http://", "ws://") + "/chat/ws",
            origin=hub.url,  # type: ignore[arg-type]
        ) as chat,
    ):
        assert events.status_code == 200
        chat.send(json.dumps({"type": "hello"}))
        assert json.loads(chat.recv(5))["type"] == "welcome"
        time.sleep(quiet)

        chat.send(json.dumps({"type": "ping"}))
        assert json.loads(chat.recv(5)) == {"type": "pong"}
        recorded = httpx.post(
            f"{hub.url}/v1/interactions", json=interaction(), headers=ADMIN, timeout=10
        )
        assert recorded.status_code == 202, recorded.text
        message_id = recorded.json()["message_id"]
        for line in events.iter_lines():
            if line.startswith("data:") and message_id in line:
                break


@pytest.mark.e2e
def test_hub_serve_answers_a_slow_request_head_408(tmp_path: Path) -> None:
    process = HubProcess(
        tmp_path / "data",
        tmp_path / "hub.log",
        env={"HUB_REQUEST_HEAD_TIMEOUT": str(HEAD_TIMEOUT)},
    )
    try:
        process.start()
        (after, response), *_ = _trickle(
            [_open(process)],
            b"GET /healthz HTTP/1.1\r\n",
            lambda n: f"X-Slow-{n}: 1\r\n".encode(),
            every=0.2,
        ).values()
        assert after <= HEAD_TIMEOUT + SLACK, after
        _error_of(response)
        assert process.http.get("/healthz").status_code == 200
    finally:
        process.cleanup()
