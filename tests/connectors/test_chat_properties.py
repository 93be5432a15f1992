"""Property: any string as a chat visitor's hello name and message text yields either an
error frame or a message that is recorded and comes back from the timeline; the socket never
breaks, and the name is kept scrubbed. A real server and a real WebSocket client, one server
for every example, a bounded number of examples."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from websockets.sync.client import connect

from hub.config import Settings
from hub.events.common import check_text, scrub_text
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, serving
from tests.support.hostile import HOSTILE_TEXT

MAX_TEXT = 300
_ids = itertools.count()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    chat = {
        "max_text": MAX_TEXT,
        # Every example is a new visitor from 127.0.0.1: limits out of the way.
        "visitors_per_ip_per_minute": 100_000,
        "messages_per_ip_per_minute": 100_000,
    }
    data = tmp_path_factory.mktemp("chat-properties")
    with serving(Settings(data_dir=data, admin_token=ADMIN_TOKEN, chat=chat)) as server:
        yield server


def _next(ws: Any, *kinds: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(10))
        if frame["type"] in kinds:
            return frame


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=HOSTILE_TEXT, text=HOSTILE_TEXT)
@example(name="x\ud800", text="hello")  # the reproduction
@example(name="Dana", text="x\ud800")
@example(name="\x00", text="nul \x00 inside")
@example(name="n" * 1000, text="t" * (MAX_TEXT + 1))
def test_any_name_and_text_is_refused_with_an_error_frame_or_recorded(
    hub: LiveServer, name: str, text: str
) -> None:
    client_id = f"p{next(_ids)}"
    with connect(
        hub.url.replace("http://", "ws://") + "/chat/ws",
        origin=hub.url,  # type: ignore[arg-type]
    ) as ws:
        # Escaped JSON, as any client may send: "\ud800" decodes to a lone surrogate.
        ws.send(json.dumps({"type": "hello", "name": name}))
        assert _next(ws, "welcome", "error")["type"] == "welcome"
        ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
        answer = _next(ws, "ack", "error")
        if answer["type"] == "error":
            assert answer["code"] in ("invalid_message", "invalid_text"), answer
            assert answer["client_id"] == client_id
            ws.send(json.dumps({"type": "ping"}))
            assert _next(ws, "pong")  # the socket goes on
            return
        # What the hub received: JSON joins two escaped halves of a surrogate pair into one
        # character, which is valid.
        received = json.loads(json.dumps(text))
        check_text(received)  # only text every store and reader takes is recorded
        assert 0 < len(received) <= MAX_TEXT
        echoed = _next(ws, "message")  # read back from the timeline projection
        assert (echoed["message_id"], echoed["text"]) == (answer["message_id"], received)
    # The name is kept, scrubbed: readable through the API like the text.
    item = httpx.get(f"{hub.url}/v1/messages/{answer['message_id']}", headers=ADMIN, timeout=10)
    assert item.status_code == 200, item.text
    kept = scrub_text(json.loads(json.dumps(name))).strip()[:200].strip() or None
    assert item.json()["data"]["contact_name"] == kept
