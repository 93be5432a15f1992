"""GET /v1/events/stream: Server-Sent Events from a real uvicorn server, resumable."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from typer.testing import CliRunner

from hub.api import request_shutdown
from hub.cli import app as cli_app
from hub.config import Settings
from hub.runtime import Runtime
from tests.support.api import (
    ADMIN_TOKEN,
    Api,
    LiveServer,
    assert_error,
    interaction,
    serving,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Stream:
    """An open SSE response, read one event at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (comments are kept aside); fails when none comes in time."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            line = next(self.lines)  # the client's read timeout bounds each wait
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line == "":
                if "data" in fields:
                    return {"id": fields.get("id"), "event": fields.get("event")} | {
                        "data": json.loads(fields["data"])
                    }
                fields = {}
            else:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise AssertionError(f"no event within {timeout}s")

    def wait_connected(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while "connected" not in self.comments:
            assert time.monotonic() < deadline, "no ': connected' comment"
            line = next(self.lines)
            if line.startswith(":"):
                self.comments.append(line[1:].strip())

    def until(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Events up to and including the first that matches."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            event = self.next_event(max(deadline - time.monotonic(), 0.01))
            seen.append(event)
            if predicate(event):
                return seen


@contextmanager
def stream(
    server: LiveServer, headers: dict[str, str] | None = None, params: dict[str, int] | None = None
) -> Iterator[Stream]:
    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0)) as client,
        client.stream(
            "GET", "/v1/events/stream", headers=AUTH | (headers or {}), params=params
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def _post(server: LiveServer, **overrides: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/interactions", json=interaction(**overrides), headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _received(message_id: str) -> Any:
    def match(event: dict[str, Any]) -> bool:
        return bool(
            event["event"] == "interaction.received.v1"
            and event["data"]["data"]["message_id"] == message_id
        )

    return match


def test_stream_delivers_new_events_and_resumes_after_last_event_id(
    live_server: LiveServer,
) -> None:
    with stream(live_server) as events:
        events.wait_connected()
        started = time.monotonic()
        first = _post(live_server, address="phone:+15550115001")
        seen = events.until(_received(first["message_id"]), timeout=5)
        assert time.monotonic() - started < 5
    assert [e["event"] for e in seen] == [
        "customer.created.v1",
        "conversation.opened.v1",
        "interaction.received.v1",
    ]
    for event in seen:
        assert event["id"] == str(event["data"]["position"])
        assert event["event"] == event["data"]["type"]
        assert event["data"]["customer_id"] == first["customer_id"]
    last_id = seen[-1]["id"]

    # While nobody listens, more happens; a reconnect with Last-Event-ID gets exactly that.
    second = _post(live_server, address="phone:+15550115001", channel="whatsapp")
    third = _post(live_server, address="phone:+15550115002")
    with stream(live_server, headers={"Last-Event-ID": last_id}) as events:
        resumed = events.until(_received(third["message_id"]))
    assert all(int(e["id"]) > int(last_id) for e in resumed)
    assert [e["event"] for e in resumed] == [
        "conversation.opened.v1",
        "interaction.received.v1",
        "customer.created.v1",
        "conversation.opened.v1",
        "interaction.received.v1",
    ]
    assert resumed[1]["data"]["data"]["message_id"] == second["message_id"]
    positions = [int(e["id"]) for e in seen + resumed]
    assert positions == sorted(set(positions))


def test_stream_starts_at_the_end_unless_told(live_server: LiveServer) -> None:
    old = _post(live_server, address="phone:+15550115003")
    with stream(live_server) as events:
        events.wait_connected()
        new = _post(live_server, address="phone:+15550115004")
        seen = events.until(_received(new["message_id"]))
    assert {e["data"]["customer_id"] for e in seen} == {new["customer_id"]}

    with stream(live_server, params={"after": 0}) as events:
        replayed = events.until(_received(new["message_id"]))
    assert replayed[0]["data"]["position"] == 1
    assert replayed[0]["data"]["customer_id"] == old["customer_id"]


def test_stream_needs_the_events_scope(sqlite_api: Api) -> None:
    assert sqlite_api.runtime is not None
    _, agent = sqlite_api.runtime.tokens.create("agent", "a")
    assert_error(sqlite_api.get("/v1/events/stream", token=None), 401, "unauthorized")
    assert_error(sqlite_api.get("/v1/events/stream", token=agent), 403, "forbidden")


def test_request_shutdown_ends_open_streams(live_server: LiveServer) -> None:
    with stream(live_server) as events:
        events.wait_connected()
        request_shutdown(live_server.app)
        started = time.monotonic()
        rest = list(events.lines)  # ends when the server finishes the response
    assert time.monotonic() - started < 2
    assert "data" not in "".join(rest)


# -- the stream ends with its token ------------------------------------------------------------


@pytest.fixture
def rechecking_server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    """A live hub whose streams check their credential again every 0.3 s."""
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, stream_recheck_seconds=0.3)
    with serving(settings) as server:
        yield server


def _service_token(server: LiveServer) -> tuple[UUID, str]:
    runtime: Runtime = server.app.state.runtime
    return runtime.tokens.create("service", "downstream")


def _rest(events: Stream, timeout: float) -> str:
    """Everything the server still sends until it ends the response (fails if it does not
    end within ``timeout``)."""
    deadline = time.monotonic() + timeout
    lines = []
    for line in events.lines:
        lines.append(line)
        assert time.monotonic() < deadline, f"the stream did not end: {lines}"
    return "\n".join(lines)


def _final_error(rest: str) -> dict[str, Any]:
    """The stream's last event: ``error``, with the API's error model as its data."""
    blocks = [b for b in rest.split("\n\n") if b.strip() and not b.startswith(":")]
    fields = dict(line.partition(": ")[::2] for line in blocks[-1].splitlines())
    assert fields["event"] == "error", rest
    body: dict[str, Any] = json.loads(fields["data"])
    assert body["error"]["code"] == "unauthorized"
    return body


def test_revoking_the_token_ends_its_stream_before_the_next_event(
    rechecking_server: LiveServer,
) -> None:
    token_id, token = _service_token(rechecking_server)
    with stream(rechecking_server, headers={"Authorization": f"Bearer {token}"}) as events:
        events.wait_connected()
        before = _post(rechecking_server, address="phone:+15550115010")
        events.until(_received(before["message_id"]))
        runtime: Runtime = rechecking_server.app.state.runtime
        assert runtime.tokens.revoke(token_id)
        started = time.monotonic()
        after = _post(rechecking_server, address="phone:+15550115011", text="secret")
        rest = _rest(events, timeout=5)
    assert time.monotonic() - started < 2
    _final_error(rest)
    assert after["customer_id"] not in rest
    assert "secret" not in rest


def test_a_token_revoked_by_another_process_ends_the_stream_within_the_interval(
    rechecking_server: LiveServer, tmp_path: Path
) -> None:
    token_id, token = _service_token(rechecking_server)
    with stream(rechecking_server, headers={"Authorization": f"Bearer {token}"}) as events:
        events.wait_connected()
        # `hub tokens revoke` opens its own runtime on the data directory: the server's
        # process learns of it only from the database.
        revoked = CliRunner().invoke(
            cli_app, ["tokens", "revoke", str(token_id), "--data-dir", str(tmp_path / "data")]
        )
        assert revoked.exit_code == 0, revoked.output
        started = time.monotonic()
        rest = _rest(events, timeout=5)
    assert time.monotonic() - started < 0.3 + 1.5  # the interval, and time to notice
    _final_error(rest)


def test_an_admin_token_stream_stays_open_across_rechecks(rechecking_server: LiveServer) -> None:
    with stream(rechecking_server) as events:
        events.wait_connected()
        time.sleep(1.0)  # three re-checks
        new = _post(rechecking_server, address="phone:+15550115012")
        events.until(_received(new["message_id"]))
