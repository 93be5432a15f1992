"""The web chat against a real uvicorn server on loopback, spoken to by a real WebSocket client
(``tests.connectors.chat_widget``), with an aiosmtpd sink receiving the verification codes: a
visitor's conversation with an agent, resumes, tabs, tokens, proving an email, and the widget's
pages. What a visitor may not do: test_chat_hostile.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.connectors.chat_widget import (
    Widget,
    customer_of,
    message_items,
)
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, wait_for


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

    customer = customer_of(client, f"chat:{visitor}")
    (message,) = wait_for(lambda: message_items(client, customer["customer_id"]) or None)
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
        items = message_items(client, customer["customer_id"])
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
    dana = customer_of(client, "email:dana@example.org")

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
    chat_customer = customer_of(client, f"chat:{visitor}")
    assert chat_customer["customer_id"] != dana["customer_id"]

    wrong = "000000" if code != "000000" else "111111"
    tab.send(type="verify", code=wrong)
    refused = tab.next("error")
    assert (refused["code"], refused["attempts_left"]) == ("invalid_code", 4)

    tab.send(type="verify", code=code)
    verified = tab.next("identity")
    assert (verified["verified"], verified["merged"]) == (True, True)

    def merged() -> dict[str, Any] | None:
        found = customer_of(client, f"chat:{visitor}")
        return found if found["customer_id"] == dana["customer_id"] else None

    group = wait_for(merged)
    assert group["merged_customer_ids"] == [chat_customer["customer_id"]]
    identities = {i["address"]: i["verified"] for i in group["identities"]}
    assert identities["email:dana@example.org"] is True
    assert f"chat:{visitor}" in identities
    texts = {m["text"] for m in message_items(client, dana["customer_id"])}
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
    customer = customer_of(client, "email:new.person@example.net")
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
