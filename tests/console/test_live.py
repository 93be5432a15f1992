"""The console's live feeds (a customer's timeline, the queue) end with the session: after a
sign-out or a revocation of the session's token they send one ``error`` event and stop, and
nothing recorded afterwards reaches them. Against a real uvicorn server, as a browser's
EventSource reads them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from hub.config import Settings
from hub.runtime import Runtime
from hub.runtime.core import POSITIONS_MAX_AGE
from hub.store.sessions import console_sessions
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving
from tests.support.console import csrf_of, sign_in

RECHECK = 0.3


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, stream_recheck_seconds=RECHECK)
    with serving(settings) as live:
        yield live


def _runtime(server: LiveServer) -> Runtime:
    runtime: Runtime = server.app.state.runtime
    return runtime


def _record(server: LiveServer, **overrides: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/interactions", json=interaction(**overrides), headers=ADMIN, timeout=10
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


class Feed:
    """An open console feed, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def wait_for(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return
            assert time.monotonic() < deadline, f"no {text!r} in time"

    def rest(self, timeout: float = 5.0) -> str:
        """What the server sends until it ends the response, which it must within ``timeout``
        (the client's read timeout fails a feed that stays open and silent)."""
        deadline = time.monotonic() + timeout
        lines = []
        for line in self.lines:
            lines.append(line)
            assert time.monotonic() < deadline, f"the feed did not end: {lines}"
        return "\n".join(lines)


@contextmanager
def feed(client: httpx.Client, path: str) -> Iterator[Feed]:
    with client.stream("GET", path) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = Feed(response)
        opened.wait_for(": connected")
        yield opened


def _ended_with_error(rest: str) -> None:
    blocks = [b for b in rest.split("\n\n") if b.strip() and not b.startswith(":")]
    assert blocks, rest
    fields = dict(line.partition(": ")[::2] for line in blocks[-1].splitlines())
    assert fields["event"] == "error", rest
    assert json.loads(fields["data"])["error"]["code"] == "unauthorized"


@contextmanager
def agent(server: LiveServer, token: str = ADMIN_TOKEN) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=httpx.Timeout(10.0)) as client:
        assert sign_in(client, token).status_code == 303
        yield client


def _customer_feed(server: LiveServer, client: httpx.Client) -> tuple[dict[str, Any], str]:
    first = _record(server, address="phone:+15550116001", text="first")
    position = _runtime(server).store_position()
    return first, f"/customers/{first['customer_id']}/live?after={position}"


def test_signing_out_ends_the_customers_live_feed(server: LiveServer) -> None:
    with agent(server) as client:
        first, path = _customer_feed(server, client)
        with feed(client, path) as live:
            shown = _record(server, address="phone:+15550116001", text="still signed in")
            live.wait_for(shown["message_id"])
            csrf = csrf_of(client, f"/customers/{first['customer_id']}")
            assert client.post("/logout", data={"csrf": csrf}).status_code == 303
            started = time.monotonic()
            _record(server, address="phone:+15550116001", text="after sign-out")
            rest = live.rest()
    assert time.monotonic() - started < 2
    _ended_with_error(rest)
    assert "after sign-out" not in rest
    assert "event: item" not in rest


@pytest.mark.parametrize("path", ["customer", "queue"])
def test_revoking_the_sessions_token_ends_the_live_feeds(server: LiveServer, path: str) -> None:
    runtime = _runtime(server)
    token_id, token = runtime.tokens.create("agent", "Sam")
    with agent(server, token) as client:
        _, customer_path = _customer_feed(server, client)
        with feed(client, customer_path if path == "customer" else "/queue/live") as live:
            assert runtime.tokens.revoke(token_id)
            started = time.monotonic()
            _record(server, address="phone:+15550116001", text="after revocation")
            rest = live.rest()
    assert time.monotonic() - started < 2
    _ended_with_error(rest)
    assert "after revocation" not in rest
    assert "event: item" not in rest
    assert "event: changed" not in rest


def test_an_expired_session_ends_the_feed_within_the_interval(server: LiveServer) -> None:
    runtime = _runtime(server)
    with agent(server) as client:
        _, path = _customer_feed(server, client)
        with feed(client, path) as live:
            # Expire every session in the database: the process hears of it only from there.
            with runtime.store.state_engine.begin() as conn:
                conn.execute(
                    console_sessions.update().values(expires_at=console_sessions.c.created_at)
                )
            started = time.monotonic()
            rest = live.rest()
    assert time.monotonic() - started < RECHECK + 1.5
    _ended_with_error(rest)


def test_a_scheduled_messages_new_status_reaches_the_customers_feed(server: LiveServer) -> None:
    with agent(server) as client:
        first, path = _customer_feed(server, client)
        due = "2030-01-01T09:00:00+00:00"
        scheduled = httpx.post(
            f"{server.url}/v1/customers/{first['customer_id']}/scheduled-messages",
            json={"text": "See you then", "channels": ["sms"], "send_at": due},
            headers=ADMIN,
            timeout=10,
        )
        assert scheduled.status_code == 201, scheduled.text
        occurrence = scheduled.json()["id"]
        with feed(client, path) as opened:
            opened.wait_for(f'id="item-{occurrence}"')  # the new item
            cancelled = httpx.delete(
                f"{server.url}/v1/customers/{first['customer_id']}/scheduled-messages/{occurrence}",
                headers=ADMIN,
                timeout=10,
            )
            assert cancelled.status_code == 204
            opened.wait_for("event: update")
            opened.wait_for("cancelled")


def test_the_queue_feeds_share_one_read_of_the_positions(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every open queue feed polls the positions while the views catch up: they share one
    read every 50 ms however many feeds poll, and a read after that sees what was recorded."""
    runtime = _runtime(server)
    reads: list[float] = []
    store_position = runtime.store_position

    def counting() -> int:
        reads.append(time.monotonic())
        return store_position()

    monkeypatch.setattr(runtime, "store_position", counting)
    calls = 0
    stop = time.monotonic() + 0.5

    def poll() -> None:
        nonlocal calls
        while time.monotonic() < stop:
            runtime.shared_positions()
            calls += 1

    pollers = [threading.Thread(target=poll) for _ in range(8)]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()
    assert calls > 100  # eight feeds polling without pause
    assert 1 <= len(reads) <= 0.5 / POSITIONS_MAX_AGE + 2  # one read per 50 ms at most
    before = runtime.shared_positions()["store"]
    _record(server, address="phone:+15550116009", text="new")
    time.sleep(POSITIONS_MAX_AGE)
    assert runtime.shared_positions()["store"] > before
