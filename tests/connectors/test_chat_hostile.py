"""The web chat's guards against a real server and a real WebSocket client: anything a
visitor sends is refused with an error frame or scrubbed, never a crash; pages of other origins
are refused; new visitors, messages and code guesses are rate-limited. The guards as pure code:
test_chat_limits.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from hub.config import Settings
from tests.connectors.chat_widget import (
    Widget,
    customer_of,
    message_items,
    messages_recorded_since,
    socket_url,
    store_position,
)
from tests.peers.email_peers import SmtpSink
from tests.support.api import LiveServer, mailing_hub, serving, wait_for

# -- anything a visitor sends: refused with an error frame or scrubbed, never a crash -----------


def test_malformed_frames_get_error_frames_and_the_socket_goes_on(hub: LiveServer) -> None:
    before = store_position(hub)
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
    assert messages_recorded_since(hub, before) == 0


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

    # The reproduction: a lone surrogate in the name, then a message.
    tab = Widget(hub, name="Dana \ud800", language="nb-NO")
    ack = tab.say("n1", "Hello from Dana")
    assert tab.next("message")["text"] == "Hello from Dana"
    customer = customer_of(client, f"chat:{tab.welcome['visitor_id']}")
    assert customer["display_name"] == "Dana \ufffd"
    (message,) = wait_for(lambda: message_items(client, customer["customer_id"]) or None)
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
                connect(socket_url(hub), origin=origin),  # type: ignore[arg-type]
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
    with connect(socket_url(limited), origin="https://shop.example.com") as ws:  # type: ignore[arg-type]
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
    before = store_position(limited)
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
    after_two = store_position(limited)
    two.send(type="message", client_id="two-2", text="over the network's budget")
    assert two.next("error")["code"] == "rate_limited"
    two.send(type="ping")
    assert two.next("pong")["type"] == "pong"
    assert store_position(limited) == after_two
    assert messages_recorded_since(limited, before) == 2  # two's two, nothing refused


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
