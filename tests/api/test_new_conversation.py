"""POST /v1/customers/{id}/conversations: an agent starts a conversation on a channel of their
choice; it is recorded with its first message, sent by the dispatcher (to Twilio's API on
loopback here), and refused as a reply is."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from tests.peers.twilio_peer import CUSTOMER, TwilioPeer, twilio_settings
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, wait_for
from tests.support.hostile import HOSTILE_TEXT

PHONE = f"phone:{CUSTOMER}"


@pytest.fixture
def api(backend: str, make_settings: Callable[..., Settings], twilio: TwilioPeer) -> Iterator[Api]:
    """The app of each backend, with SMS and WhatsApp sent to Twilio's API on loopback."""
    settings = make_settings(
        backend,
        admin_token=ADMIN_TOKEN,
        twilio=twilio_settings(twilio.url),
        dispatch={"quiet_hours_start": None, "retry_base_seconds": 0.05},
    )
    with running_app(settings) as api:
        yield api


@pytest.fixture
def sqlite_api(make_settings: Callable[..., Settings], twilio: TwilioPeer) -> Iterator[Api]:
    """The same app on SQLite alone (edge cases that do not depend on the backend)."""
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        twilio=twilio_settings(twilio.url),
        dispatch={"quiet_hours_start": None, "retry_base_seconds": 0.05},
    )
    with running_app(settings) as api:
        yield api


def start(api: Api, customer_id: str, expect: int = 202, **body: Any) -> dict[str, Any]:
    headers = body.pop("headers", None) or {}
    response = api.post(
        f"/v1/customers/{customer_id}/conversations",
        json={"channel": "sms", "text": "Your order shipped."} | body,
        headers=headers,
    )
    assert response.status_code == expect, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_new_conversation_is_recorded_and_sent(api: Api, twilio: TwilioPeer) -> None:
    customer = api.record(address=PHONE)
    cid = customer["customer_id"]
    first = start(api, cid, headers={"Idempotency-Key": "new-1"})
    assert first["status"] == "queued"
    assert first["customer_id"] == cid
    assert first["conversation_id"] != customer["conversation_id"]
    again = start(api, cid, expect=200, headers={"Idempotency-Key": "new-1"})
    assert again == first | {"status": "duplicate"}

    sent = wait_for(lambda: twilio.messages)
    assert len(sent) == 1
    assert (sent[0]["body"], sent[0]["to"]) == ("Your order shipped.", CUSTOMER)
    api.wait_caught_up()
    conversation = api.conversation(first["conversation_id"])
    assert conversation["channel"] == "sms"
    assert conversation["customer_id"] == cid
    items = {m["item_id"]: m for m in api.messages(cid)}
    assert items[first["message_id"]]["text"] == "Your order shipped."


def test_what_is_refused_and_why(api: Api, twilio: TwilioPeer) -> None:
    cid = api.record(address=PHONE)["customer_id"]
    # No email address, no email connector; an email needs its subject.
    assert_error(
        api.post(f"/v1/customers/{cid}/conversations", json={"channel": "email", "text": "x"}),
        422,
        "invalid_command",
    )
    assert_error(
        api.post(
            f"/v1/customers/{cid}/conversations",
            json={"channel": "sms", "text": "x", "purpose": "gossip"},
        ),
        422,
        "unknown_purpose",
    )
    api.wait_caught_up()
    withdrawn = {"channel": "sms", "granted": False}
    assert api.put(f"/v1/customers/{cid}/consent", json=withdrawn).status_code == 200
    assert_error(
        api.post(f"/v1/customers/{cid}/conversations", json={"channel": "sms", "text": "x"}),
        409,
        "consent_revoked",
    )
    unknown = "0190a0a0-0000-7000-8000-000000000000"
    assert_error(
        api.post(f"/v1/customers/{unknown}/conversations", json={"channel": "sms", "text": "x"}),
        404,
        "not_found",
    )
    api.post(f"/v1/customers/{cid}/erase", json={"reason": "data_subject_request"})
    assert_error(
        api.post(f"/v1/customers/{cid}/conversations", json={"channel": "sms", "text": "x"}),
        410,
        "customer_erased",
    )
    assert twilio.messages == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(text=HOSTILE_TEXT, subject=st.one_of(st.none(), HOSTILE_TEXT))
def test_any_text_is_refused_or_recorded_and_readable(
    sqlite_api: Api, text: str, subject: str | None
) -> None:
    cid = _customer_of(sqlite_api)
    body = {"channel": "sms", "text": text, "subject": subject}
    response = sqlite_api.send_hostile_json("POST", f"/v1/customers/{cid}/conversations", body)
    if response is None:
        return
    assert response.status_code == 202
    found = response.json()
    # What JSON carries: two escaped halves of a surrogate pair arrive as one character.
    sent = json.loads(json.dumps(body))
    sqlite_api.wait_caught_up()
    items = {m["item_id"]: m for m in sqlite_api.messages(cid)}
    assert items[found["message_id"]]["text"] == sent["text"]


_CUSTOMERS: dict[int, str] = {}


def _customer_of(api: Api) -> str:
    key = id(api)
    if key not in _CUSTOMERS:
        _CUSTOMERS[key] = api.record(address="phone:+4915112349998")["customer_id"]
    return _CUSTOMERS[key]
