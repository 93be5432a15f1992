"""The web chat against a real uvicorn server on loopback, spoken to by a real WebSocket client
(the ``websockets`` library), with an aiosmtpd sink receiving the verification codes.

The visitor side is driven exactly as the widget drives it (hub/connectors/chat/widget.js):
hello with token and last seq, messages with client ids, receipts, identify and verify.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, Protocol

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, mailing_hub, serving, wait_for


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    chat = {"allowed_origins": ["https://shop.example.com"], "max_text": 500}
    with mailing_hub(make_settings, sink.port, chat=chat) as server:
        yield server


@pytest.fixture
def client(hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url) as http:
        yield http


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
        origin: str = "https://shop.example.com",
        **hello: Any,
    ) -> None:
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(_socket_url(hub), origin=origin)  # type: ignore[arg-type]
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


def _socket_url(hub: Served) -> str:
    return hub.url.replace("http://", "ws://") + "/chat/ws"


def _position(hub: Served) -> int:
    return int(httpx.get(f"{hub.url}/readyz", timeout=5).json()["store_position"])


def _customer_of(client: httpx.Client, address: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = client.get("/v1/customers", params={"address": address}, headers=ADMIN).json()
        return items["items"][0] if items["items"] else None

    customer: dict[str, Any] = wait_for(found)
    return customer


def _timeline(client: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/customers/{customer_id}/timeline", headers=ADMIN)
    assert page.status_code == 200, page.text
    return [i for i in page.json()["items"] if i["kind"] == "message"]


def test_a_visitor_chats_with_an_agent_and_resumes_after_a_reconnect(
    client: httpx.Client, hub: LiveServer
) -> None:
    tab = Widget(hub)
    assert tab.welcome["resumed"] is False
    visitor = tab.welcome["visitor_id"]

    ack = tab.say("c1", "Hello, is my order shipped?")
    assert ack["duplicate"] is False
    echo = tab.next("message")
    assert (echo["direction"], echo["text"], echo["client_id"]) == (
        "inbound",
        "Hello, is my order shipped?",
        "c1",
    )
    # The widget resends what it did not see acknowledged: recorded once.
    again = tab.say("c1", "Hello, is my order shipped?")
    assert again["duplicate"] is True
    assert again["message_id"] == ack["message_id"]

    customer = _customer_of(client, f"chat:{visitor}")
    (message,) = wait_for(lambda: _timeline(client, customer["customer_id"]) or None)
    assert message["channel"] == "chat"
    assert message["item_id"] == ack["message_id"]

    reply = client.post(
        f"/v1/conversations/{message['conversation_id']}/messages",
        json={"text": "Yes, it left this morning."},
        headers={**ADMIN, "Idempotency-Key": "chat-reply-1"},
    )
    assert reply.status_code == 202, reply.text
    pushed = tab.next("message")
    assert (pushed["direction"], pushed["text"]) == ("outbound", "Yes, it left this morning.")
    assert pushed["message_id"] == reply.json()["message_id"]
    tab.send(type="received", message_id=pushed["message_id"])

    def delivered() -> bool:
        items = _timeline(client, customer["customer_id"])
        return any(i["delivery_status"] == "delivered" for i in items)

    wait_for(delivered)
    last_seq = pushed["seq"]
    tab.close()

    # While the visitor is away the agent writes again; the next visit resumes from last_seq.
    second = client.post(
        f"/v1/conversations/{message['conversation_id']}/messages",
        json={"text": "Tracking: 1Z999."},
        headers={**ADMIN, "Idempotency-Key": "chat-reply-2"},
    )
    assert second.status_code == 202, second.text
    back = Widget(hub, token=tab.token, after=last_seq)
    assert back.welcome["resumed"] is True
    assert back.welcome["visitor_id"] == visitor
    resumed = back.next("message")
    assert (resumed["text"], resumed["seq"] > last_seq) == ("Tracking: 1Z999.", True)
    back.close()

    # From the start, the whole transcript in order.
    fresh = Widget(hub, token=tab.token, after=0)
    texts = [fresh.next("message")["text"] for _ in range(3)]
    assert texts == [
        "Hello, is my order shipped?",
        "Yes, it left this morning.",
        "Tracking: 1Z999.",
    ]
    fresh.close()


def test_two_tabs_of_one_visitor_see_each_others_messages(hub: LiveServer) -> None:
    first = Widget(hub)
    second = Widget(hub, token=first.token)
    first.say("tab1-1", "written in the first tab")
    assert second.next("message")["text"] == "written in the first tab"
    first.close()
    second.close()


def test_a_forged_or_foreign_token_gets_a_new_visitor(hub: LiveServer) -> None:
    real = Widget(hub)
    visitor, token = real.welcome["visitor_id"], real.token
    real.close()
    body = token.rsplit(".", 1)[0]
    for forged in [
        body + ".AAAA",
        f"{'f' * 32}.{body.split('.')[1]}.{token.rsplit('.', 1)[1]}",
        "x",
    ]:
        tab = Widget(hub, token=forged)
        assert tab.welcome["resumed"] is False
        assert tab.welcome["visitor_id"] != visitor
        tab.close()


def test_an_email_given_in_the_chat_is_verified_by_a_mailed_code(
    client: httpx.Client, hub: LiveServer, sink: SmtpSink
) -> None:
    # The email already belongs to a customer who wrote by email.
    email_item = {
        "channel": "email",
        "direction": "inbound",
        "address": "email:dana@example.org",
        "provider_message_id": "<dana-1@example.org>",
        "occurred_at": "2026-11-30T10:00:00Z",
        "text": "About my invoice",
    }
    assert client.post("/v1/interactions", json=email_item, headers=ADMIN).status_code == 202
    dana = _customer_of(client, "email:dana@example.org")

    tab = Widget(hub)
    visitor = tab.welcome["visitor_id"]
    assert tab.welcome["verification"] is True
    tab.say("d1", "Hi, it's Dana")
    tab.send(type="identify", email="Dana@Example.org", name="Dana")
    identity = tab.next("identity")
    # Someone else owns the address: nothing is linked without proof.
    assert identity == {
        "type": "identity",
        "email": "dana@example.org",
        "verified": False,
        "linked": False,
        "code_sent": True,
    }
    mail = wait_for(lambda: sink.requests[-1] if sink.requests else None)
    assert mail.rcpt_tos == ["dana@example.org"]
    code = re.search(r"\b(\d{6})\b", mail.message.get_content()).group(1)  # type: ignore[union-attr]
    chat_customer = _customer_of(client, f"chat:{visitor}")
    assert chat_customer["customer_id"] != dana["customer_id"]

    wrong = "000000" if code != "000000" else "111111"
    tab.send(type="verify", code=wrong)
    refused = tab.next("error")
    assert (refused["code"], refused["attempts_left"]) == ("invalid_code", 4)

    tab.send(type="verify", code=code)
    verified = tab.next("identity")
    assert (verified["verified"], verified["merged"]) == (True, True)

    def merged() -> dict[str, Any] | None:
        found = _customer_of(client, f"chat:{visitor}")
        return found if found["customer_id"] == dana["customer_id"] else None

    group = wait_for(merged)
    assert group["merged_customer_ids"] == [chat_customer["customer_id"]]
    identities = {i["address"]: i["verified"] for i in group["identities"]}
    assert identities["email:dana@example.org"] is True
    assert f"chat:{visitor}" in identities
    texts = {m["text"] for m in _timeline(client, dana["customer_id"])}
    assert texts == {"About my invoice", "Hi, it's Dana"}
    merge = next(
        i
        for i in client.get(f"/v1/customers/{dana['customer_id']}/timeline", headers=ADMIN).json()[
            "items"
        ]
        if i["kind"] == "merged"
    )
    assert merge["data"]["reason"] == "verification"
    tab.close()


def test_an_unknown_email_is_linked_unverified_at_once(
    client: httpx.Client, hub: LiveServer
) -> None:
    tab = Widget(hub)
    visitor = tab.welcome["visitor_id"]
    tab.send(type="identify", email="new.person@example.net")
    identity = tab.next("identity")
    assert (identity["linked"], identity["verified"]) == (True, False)
    customer = _customer_of(client, "email:new.person@example.net")
    assert {i["address"]: i["verified"] for i in customer["identities"]} == {
        f"chat:{visitor}": False,
        "email:new.person@example.net": False,
    }
    tab.close()


def test_bad_frames_get_clear_errors_and_record_nothing(
    client: httpx.Client, hub: LiveServer
) -> None:
    before = client.get("/readyz").json()["store_position"]
    tab = Widget(hub)
    tab.ws.send("not json")
    assert tab.next("error")["code"] == "invalid_json"
    tab.send(type="launch")
    assert tab.next("error")["code"] == "unknown_type"
    tab.send(type="message", client_id="has space", text="x")
    assert tab.next("error")["code"] == "invalid_message"
    tab.send(type="message", client_id="ok", text="x" * 501)
    assert tab.next("error")["code"] == "invalid_message"
    tab.send(type="message", client_id="ok", text="nul \x00 inside")
    assert tab.next("error")["code"] == "invalid_text"
    tab.send(type="verify", code="123456")
    assert tab.next("error")["code"] == "nothing_to_verify"
    tab.send(type="identify", email="not an email")
    assert tab.next("error")["code"] == "invalid_email"
    tab.send(type="ping")
    assert tab.next("pong")["type"] == "pong"
    tab.close()
    assert client.get("/readyz").json()["store_position"] == before


def test_the_first_frame_must_be_hello_and_the_origin_allowed(hub: LiveServer) -> None:
    url = hub.url.replace("http://", "ws://") + "/chat/ws"
    with connect(url, origin="https://shop.example.com") as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "message", "client_id": "a", "text": "hi"}))
        assert json.loads(ws.recv(5))["code"] == "hello_expected"
        with pytest.raises(ConnectionClosed):
            ws.recv(5)
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(url, origin="https://evil.example.net"),  # type: ignore[arg-type]
    ):
        pass
    assert refused.value.response.status_code == 403
    # The hub's own pages (/chat/) may always open it, besides the listed origins.
    assert Widget(hub, origin=hub.url).welcome["type"] == "welcome"


def test_the_widget_script_and_demo_page_are_served(client: httpx.Client, hub: LiveServer) -> None:
    script = client.get("/chat/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/chat/ws" in script.text
    assert "localStorage" in script.text
    page = client.get("/chat/")
    assert page.status_code == 200
    assert '<script src="/chat/widget.js"' in page.text
    ready = client.get("/readyz").json()
    assert ready["channels"]["chat"] == "on"


# -- anything a visitor sends: refused with an error frame or scrubbed, never a crash -----------


def test_malformed_frames_get_error_frames_and_the_socket_goes_on(hub: LiveServer) -> None:
    before = _position(hub)
    tab = Widget(hub)
    refusals: list[tuple[str | bytes, str]] = [
        (b"\x00binary", "invalid_json"),
        ("[" * 100_000, "invalid_json"),  # nested deeper than the JSON decoder recurses
        ('{"type":"ping","n":1' + "0" * 5000 + "}", "invalid_json"),  # over 4300 digits
        ('["type","message"]', "invalid_json"),
        (json.dumps({"type": ["message"]}), "unknown_type"),
        (json.dumps({"type": "message", "client_id": "ok\n", "text": "x"}), "invalid_message"),
        (json.dumps({"type": "message", "client_id": "ok", "text": "x\ud800"}), "invalid_text"),
        (json.dumps({"type": "received", "message_id": {"a": 1}}), "invalid_message_id"),
        (json.dumps({"type": "identify", "email": "a\ud800@example.com"}), "invalid_email"),
        (json.dumps({"type": "identify", "email": None}), "invalid_email"),
    ]
    for frame, code in refusals:
        tab.ws.send(frame)
        error = tab.next("error")
        assert error["code"] == code, (frame[:80], error)
        assert error["message"]
    tab.send(type="identify", email="pat@example.net")
    tab.next("identity")
    for code in ("\u00e9", "\uff11\uff12\uff13\uff14\uff15\uff16", "\u00b2" * 6):  # é, fullwidth
        tab.send(type="verify", code=code)
        assert tab.next("error")["code"] == "invalid_code"
    tab.send(type="ping")
    assert tab.next("pong")["type"] == "pong"
    tab.close()
    # The identify linked the address (that is recorded); no message was.
    assert _messages_recorded_since(hub, before) == 0


def _messages_recorded_since(hub: Served, position: int) -> int:
    page = httpx.get(
        f"{hub.url}/v1/events", params={"after": position, "limit": 1000}, headers=ADMIN
    ).json()
    return sum(1 for e in page["events"] if e["type"] == "interaction.received.v1")


def test_a_hello_with_hostile_fields_is_welcomed_and_its_name_scrubbed(
    client: httpx.Client, hub: LiveServer
) -> None:
    hostile_hellos: list[dict[str, Any]] = [
        {"token": "a.\u00b2.b"},  # "²".isdigit() is true, int() refuses it
        {"token": "\u00e9.1.\u00e9"},  # non-ASCII: hmac.compare_digest raises
        {"token": "a." + "9" * 5000 + ".b"},
        {"after": 10**30},
        {"after": True},
        {"language": "x\ud800", "name": None},
    ]
    for hello in hostile_hellos:
        tab = Widget(hub, **hello)
        assert tab.welcome["resumed"] is False
        tab.ws.send(json.dumps({"type": "ping"}))
        assert tab.next("pong")
        tab.close()

    # The issue's reproduction: a lone surrogate in the name, then a message.
    tab = Widget(hub, name="Dana \ud800", language="nb-NO")
    ack = tab.say("n1", "Hello from Dana")
    assert tab.next("message")["text"] == "Hello from Dana"
    customer = _customer_of(client, f"chat:{tab.welcome['visitor_id']}")
    assert customer["display_name"] == "Dana \ufffd"
    (message,) = wait_for(lambda: _timeline(client, customer["customer_id"]) or None)
    assert message["item_id"] == ack["message_id"]
    assert message["data"]["metadata"] == {"language": "nb-NO"}
    tab.close()


# -- origins and rate limits -------------------------------------------------------------------


def test_by_default_only_the_hubs_own_pages_may_open_the_chat(
    make_settings: Callable[..., Settings],
) -> None:
    with serving(make_settings("sqlite")) as hub:
        assert Widget(hub, origin=hub.url).welcome["type"] == "welcome"
        for origin in ("https://attacker.example", "null", None):
            with (
                pytest.raises(InvalidStatus) as refused,
                connect(_socket_url(hub), origin=origin),  # type: ignore[arg-type]
            ):
                pass
            assert refused.value.response.status_code == 403, origin


@pytest.fixture
def limited(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    chat = {
        "allowed_origins": ["https://shop.example.com"],
        "visitors_per_ip_per_minute": 2,
        "messages_per_visitor_per_minute": 3,
        "messages_per_ip_per_minute": 5,
    }
    with mailing_hub(make_settings, sink.port, chat=chat) as server:
        yield server


def test_new_visitors_per_client_network_are_limited(limited: LiveServer) -> None:
    first, _second = Widget(limited), Widget(limited)
    with connect(_socket_url(limited), origin="https://shop.example.com") as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello"}))
        refused = json.loads(ws.recv(5))
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
        assert 1 <= refused["retry_after"] <= 30  # 2 a minute: one more in 30 s
        assert "try again in" in refused["message"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013  # try again later
    # A returning visitor is no new visitor.
    assert Widget(limited, token=first.token).welcome["resumed"] is True


def test_messages_per_visitor_and_per_client_network_are_limited(limited: LiveServer) -> None:
    one = Widget(limited)
    for n in range(3):
        one.say(f"one-{n}", f"message {n}")
    before = _position(limited)
    one.send(type="message", client_id="one-3", text="one too many")
    refused = one.next("error")
    assert refused == {
        "type": "error",
        "code": "rate_limited",
        "message": refused["message"],
        "retry_after": refused["retry_after"],
        "client_id": "one-3",
    }
    assert 15 <= refused["retry_after"] <= 20  # 3 a minute: one more every 20 s
    assert refused["message"].endswith(f"try again in {refused['retry_after']} s")
    one.send(type="identify", email="one@example.net")  # it would mail: counted too
    assert one.next("error")["code"] == "rate_limited"

    two = Widget(limited)  # the same network: 5 a minute for all its visitors
    two.say("two-0", "first")
    two.say("two-1", "second")
    after_two = _position(limited)
    two.send(type="message", client_id="two-2", text="over the network's budget")
    assert two.next("error")["code"] == "rate_limited"
    two.send(type="ping")
    assert two.next("pong")["type"] == "pong"
    assert _position(limited) == after_two
    assert _messages_recorded_since(limited, before) == 2  # two's two, nothing refused


def test_code_guesses_per_address_survive_identify_and_reconnects(
    make_settings: Callable[..., Settings], sink: SmtpSink
) -> None:
    """Five wrong codes per identify, and identify again: without a budget per visitor and
    address, a six-digit code could be guessed slowly. The budget holds across a new identify
    and a new socket; another address has its own."""
    chat = {"allowed_origins": ["https://shop.example.com"], "code_guesses_per_hour": 3}
    with mailing_hub(make_settings, sink.port, chat=chat) as hub:
        tab = Widget(hub)
        tab.send(type="identify", email="erin@example.org")
        tab.next("identity")
        for left in (4, 3):
            tab.send(type="verify", code="000000")
            assert tab.next("error")["attempts_left"] == left
        tab.close()

        again = Widget(hub, token=tab.token)
        again.send(type="identify", email="erin@example.org")  # resets the per-socket count
        again.next("identity")
        again.send(type="verify", code="000000")
        assert again.next("error")["code"] == "invalid_code"  # the third guess of the hour
        again.send(type="verify", code="000000")
        refused = again.next("error")
        assert refused["code"] == "too_many_attempts"
        assert 60 <= refused["retry_after"] <= 1200  # 3 an hour: the next in ~20 minutes

        again.send(type="identify", email="frank@example.org")
        again.next("identity")
        again.send(type="verify", code="000000")
        assert again.next("error")["code"] == "invalid_code"
        again.close()
