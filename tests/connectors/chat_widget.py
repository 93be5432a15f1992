"""A chat widget as a test drives it: a real WebSocket client (the ``websockets`` library)
speaking the protocol exactly as hub/connectors/chat/widget.js does (hello with token and last
seq, messages with client ids, receipts, identify and verify), and reads of what the hub made
of it through the API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

import httpx
from websockets.sync.client import ClientConnection, connect

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, mailing_hub, wait_for

#: The page origin a test widget runs on (the test hubs allow it besides their own).
SHOP = "https://shop.example.com"


@contextmanager
def chat_hub(
    make_settings: Callable[..., Settings], sink: SmtpSink, **chat: Any
) -> Iterator[LiveServer]:
    """A live hub whose chat allows :data:`SHOP`'s pages and mails codes to ``sink``."""
    with mailing_hub(make_settings, sink.port, chat={"allowed_origins": [SHOP], **chat}) as hub:
        yield hub


class Served(Protocol):
    """A hub serving HTTP: a server in this process, or a hub process."""

    @property
    def url(self) -> str: ...


class Widget:
    """One browser tab of the widget: a WebSocket and the frames it received."""

    def __init__(
        self,
        hub: Served,
        token: str | None = None,
        after: Any = 0,
        origin: str = SHOP,
        **hello: Any,
    ) -> None:
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(socket_url(hub), origin=origin)  # type: ignore[arg-type]
        )
        self.ws.send(json.dumps({"type": "hello", "token": token, "after": after, **hello}))
        self.welcome = self.next("welcome")
        self.token: str = self.welcome["token"]
        self.seen: list[dict[str, Any]] = []

    def next(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame of ``kind`` (message frames received meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            frame: dict[str, Any] = json.loads(self.ws.recv(deadline - time.monotonic()))
            if frame["type"] == kind:
                if kind == "message":
                    self.seen.append(frame)
                return frame
            if frame["type"] == "message":
                self.seen.append(frame)

    def say(self, client_id: str, text: str) -> dict[str, Any]:
        self.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
        return self.next("ack")

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def close(self) -> None:
        self._stack.close()


def socket_url(hub: Served) -> str:
    return hub.url.replace("http://", "ws://") + "/chat/ws"


def store_position(hub: Served) -> int:
    return int(httpx.get(f"{hub.url}/readyz", timeout=5).json()["store_position"])


def customer_of(client: httpx.Client, address: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = client.get("/v1/customers", params={"address": address}, headers=ADMIN).json()
        return items["items"][0] if items["items"] else None

    customer: dict[str, Any] = wait_for(found)
    return customer


def message_items(client: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/customers/{customer_id}/timeline", headers=ADMIN)
    assert page.status_code == 200, page.text
    return [i for i in page.json()["items"] if i["kind"] == "message"]


def messages_recorded_since(hub: Served, position: int) -> int:
    page = httpx.get(
        f"{hub.url}/v1/events", params={"after": position, "limit": 1000}, headers=ADMIN
    ).json()
    return sum(1 for e in page["events"] if e["type"] == "interaction.received.v1")
