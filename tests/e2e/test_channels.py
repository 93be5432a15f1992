"""Channels through a real hub process, on both runtimes: ``hub serve``, and ``hub run all`` on
Kafka and PostgreSQL (where webhooks run in the ingest role and sending in the dispatch role).

A signed Twilio webhook comes in, the agent replies, the dispatcher sends it to a Twilio
Messages API on loopback and Twilio's signed status callback marks it delivered; a chat visitor
writes over the WebSocket and gets the agent's reply pushed; the agent merges the two
customers and every read shows them as one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.connectors.chat_widget import Widget
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    CUSTOMER,
    TwilioPeer,
    incoming_params,
    status_params,
    twilio_env,
    twilio_signature,
)
from tests.support.api import wait_for
from tests.support.hub_process import HubProcess

pytestmark = pytest.mark.e2e

PUBLIC = "https://hub.example.test"


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hub(hub_server: Callable[..., HubProcess], twilio: TwilioPeer) -> HubProcess:
    process = hub_server()
    process.env.update(
        {
            "HUB_PUBLIC_URL": PUBLIC,
            **twilio_env(twilio.url),
        }
    )
    return process.start()


def _signed_post(hub: HubProcess, path: str, params: list[tuple[str, str]]) -> Any:
    return hub.http.post(
        path,
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(AUTH_TOKEN, PUBLIC + path, params),
        },
    )


def _customer(hub: HubProcess, address: str) -> dict[str, Any] | None:
    found = hub.http.get("/v1/customers", params={"address": address}).json()["items"]
    return found[0] if found else None


def _messages(hub: HubProcess, customer_id: str) -> list[dict[str, Any]]:
    return [i for i in hub.timeline(customer_id) if i["kind"] == "message"]


def test_webhooks_dispatch_chat_and_merge_on_both_runtimes(
    hub: HubProcess, twilio: TwilioPeer
) -> None:
    channels = hub.http.get("/readyz").json()["channels"]
    assert (channels["twilio"], channels["chat"]) == ("on", "on")
    # An SMS through the signed webhook; a replay of it records nothing more.
    params = incoming_params("Is my order shipped?", "SM" + "7" * 32)
    assert _signed_post(hub, "/webhooks/twilio/sms", params).status_code == 200
    assert _signed_post(hub, "/webhooks/twilio/sms", params).status_code == 200
    sms_customer = wait_for(lambda: _customer(hub, f"phone:{CUSTOMER}"), timeout=30)
    (first,) = wait_for(lambda: _messages(hub, sms_customer["customer_id"]), timeout=30)

    # The agent's reply goes out through Twilio; the status callback settles it.
    reply = hub.http.post(
        f"/v1/conversations/{first['conversation_id']}/messages",
        json={"text": "Yes, this morning."},
        headers={"Idempotency-Key": "e2e-sms-reply"},
    )
    assert reply.status_code == 202, reply.text
    (sent,) = wait_for(lambda: twilio.messages, timeout=30)
    assert (sent["to"], sent["body"]) == (CUSTOMER, "Yes, this morning.")
    path = sent["status_callback"].removeprefix(PUBLIC)
    assert _signed_post(hub, path, status_params(sent["sid"], "delivered")).status_code == 200

    def delivered() -> bool:
        items = {m["item_id"]: m for m in _messages(hub, sms_customer["customer_id"])}
        mid = reply.json()["message_id"]
        return mid in items and items[mid]["delivery_status"] == "delivered"

    wait_for(delivered, timeout=30)

    # A chat visitor writes; the agent's reply is pushed to the open widget.
    tab = Widget(hub, origin=PUBLIC)  # a page of the hub's own public origin
    visitor = tab.welcome["visitor_id"]
    ack = tab.say("e2e-1", "Hello from the website")
    chat_customer = wait_for(lambda: _customer(hub, f"chat:{visitor}"), timeout=30)
    assert tab.next("message", timeout=30)["message_id"] == ack["message_id"]
    (chat_message,) = _messages(hub, chat_customer["customer_id"])
    answer = hub.http.post(
        f"/v1/conversations/{chat_message['conversation_id']}/messages",
        json={"text": "Hello! How can we help?"},
        headers={"Idempotency-Key": "e2e-chat-reply"},
    )
    assert answer.status_code == 202, answer.text
    pushed = tab.next("message", timeout=30)
    assert (pushed["direction"], pushed["text"]) == ("outbound", "Hello! How can we help?")
    tab.close()

    # The agent merges them: one customer, one timeline.
    merged = hub.http.post(
        f"/v1/customers/{sms_customer['customer_id']}/merge",
        json={"customer_id": chat_customer["customer_id"], "reason": "same person"},
    )
    assert merged.status_code == 200, merged.text

    def one() -> list[dict[str, Any]] | None:
        found = _customer(hub, f"chat:{visitor}")
        if found is None or found["customer_id"] != sms_customer["customer_id"]:
            return None
        items = _messages(hub, sms_customer["customer_id"])
        return items if len(items) == 4 else None

    texts = [m["text"] for m in reversed(wait_for(one, timeout=30))]
    assert texts == [
        "Is my order shipped?",
        "Yes, this morning.",
        "Hello from the website",
        "Hello! How can we help?",
    ]
