"""Helpers of the HTTP API tests: request bodies, an authenticated client, a live server."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from hub.config import Settings
from hub.embedded.runtime import EmbeddedRuntime
from hub.runtime import Runtime
from hub.server import build_app
from tests.support.servers import ThreadedUvicorn

ADMIN_TOKEN = "test-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_ids = itertools.count(1)


def unique(prefix: str = "pm") -> str:
    """A provider message id no other interaction of the test run uses."""
    return f"{prefix}-{next(_ids)}-{time.monotonic_ns()}"


def interaction(**overrides: Any) -> dict[str, Any]:
    """A valid body for POST /v1/interactions (an inbound SMS a minute ago), with overrides."""
    body: dict[str, Any] = {
        "channel": "sms",
        "direction": "inbound",
        "address": "phone:+15550100001",
        "provider_message_id": unique(),
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "text": "hello",
    }
    body.update(overrides)
    return body


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


class Api:
    """A client of one running app, authenticated as the admin unless told otherwise."""

    def __init__(self, client: httpx.Client, runtime: Runtime | None = None) -> None:
        self.client = client
        self.runtime = runtime

    @staticmethod
    def auth(token: str | None = ADMIN_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, url: str, *, token: str | None = ADMIN_TOKEN, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.auth(token), **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def send_hostile_json(
        self, method: str, url: str, body: dict[str, Any]
    ) -> httpx.Response | None:
        """Send ``body`` as JSON text (its escapes carry what UTF-8 cannot, a lone
        surrogate): an answer below 500, and a refusal is ``validation_error`` (None then)."""
        response = self.request(
            method, url, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.json()["error"]["code"] == "validation_error"
            return None
        return response

    # -- helpers over the API ------------------------------------------------------------

    def record(self, expect: int = 202, **overrides: Any) -> dict[str, Any]:
        """POST one interaction and return the response body, checking the status."""
        response = self.post("/v1/interactions", json=interaction(**overrides))
        assert response.status_code == expect, response.text
        body: dict[str, Any] = response.json()
        return body

    def readiness(self, timeout: float = 15.0) -> dict[str, Any]:
        """/readyz's body. A busy machine may make its probe miss its own 2 s deadline
        (503 ``not_ready``): asked again until ``timeout``, since these tests want its figures."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get("/readyz")
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def store_position(self) -> int:
        return int(self.readiness()["store_position"])

    def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Poll /readyz until every projection has applied everything recorded so far
        (projections follow the store asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get("/readyz")  # 503 while recovering from an outage
            ready = response.json()
            if (
                response.status_code == 200
                and ready["lag"] == 0
                and all(p == ready["store_position"] for p in ready["projections"].values())
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"projections not caught up after {timeout}s: {ready}")
            time.sleep(0.02)

    def all_events(self, after: int = 0) -> list[dict[str, Any]]:
        return read_event_feed(self.get, after)

    def timeline(self, customer_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every timeline item of a customer (newest first), waiting for the projections."""
        self.wait_caught_up()
        response = self.get(
            f"/v1/customers/{customer_id}/timeline", params={"limit": 200, **params}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["next_cursor"] is None, "more than 200 items: page through them"
        items: list[dict[str, Any]] = page["items"]
        return items

    def messages(self, customer_id: str) -> list[dict[str, Any]]:
        return [i for i in self.timeline(customer_id) if i["kind"] == "message"]

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        self.wait_caught_up()
        response = self.get(f"/v1/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error model with this status and machine-readable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@contextmanager
def running_app(settings: Settings) -> Iterator[Api]:
    """The app with its lifespan (runtime started, stopped on exit) behind a TestClient."""
    app = build_app(EmbeddedRuntime(settings))
    with TestClient(app) as client:
        yield Api(client, app.state.runtime)


class LiveServer:
    """The app served by a real uvicorn server on a loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = build_app(EmbeddedRuntime(settings))
        self._uvicorn = ThreadedUvicorn(self.app, timeout_graceful_shutdown=2)
        self.server = self._uvicorn.server
        self.port = self._uvicorn.port
        self.url = self._uvicorn.url

    def start(self) -> None:
        self._uvicorn.start()

    def stop(self) -> None:
        assert self._uvicorn.stop(15), "uvicorn did not stop"


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """The app served by uvicorn on a loopback port for the duration of the block."""
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def mailing_hub(
    make_settings: Callable[..., Settings], smtp_port: int, **extra: Any
) -> Iterator[LiveServer]:
    """A live SQLite hub as the end-to-end tests use it: the admin token, email sent to the
    SMTP server on ``smtp_port``, no quiet hours (replies go at once), and ``extra`` settings."""
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        dispatch={"quiet_hours_start": None},
        email=smtp_to(smtp_port),
        **extra,
    )
    with serving(settings) as server:
        yield server


def smtp_to(port: int, domain: str = "support.example.com", **extra: Any) -> dict[str, Any]:
    """Email settings that send to an SMTP server on a loopback ``port`` (the tests' sink)."""
    return {
        "from_address": f"help@{domain}",
        "from_name": "Example Support",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        **extra,
    }


def read_event_feed(get: Callable[..., Any], after: int = 0) -> list[dict[str, Any]]:
    """Every event of ``GET /v1/events`` after ``after``, page by page, with ``get`` a test
    client's or an ``httpx.Client``'s."""
    events: list[dict[str, Any]] = []
    while True:
        response = get("/v1/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        if page["next_after"] == after:
            return events
        after = page["next_after"]
