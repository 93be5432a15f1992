"""Agents' replies, end to end through the hub's own webhooks and dispatcher: an SMS arrives
at /webhooks/twilio/sms signed as Twilio signs it, the agent replies, the dispatcher sends it
to a Twilio Messages API on loopback, Twilio's status callback settles it; STOP withdraws
consent and the next reply is refused with its reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from hub.config import Settings
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    CUSTOMER,
    TwilioPeer,
    incoming_params,
    status_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, wait_for

PUBLIC = "https://hub.example.test"


@pytest.fixture
def api(backend: str, make_settings: Callable[..., Settings], twilio: TwilioPeer) -> Iterator[Api]:
    settings = make_settings(
        backend,
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        twilio=twilio_settings(twilio.url),
        dispatch={"quiet_hours_start": None, "retry_base_seconds": 0.05},
    )
    with running_app(settings) as api:
        yield api


def post_signed(api: Api, path: str, params: list[tuple[str, str]], **headers: str) -> Any:
    signature = twilio_signature(AUTH_TOKEN, PUBLIC + path, params)
    return api.client.post(
        path,
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
            **headers,
        },
    )


def sms_in(api: Api, body: str, sid: str) -> dict[str, Any]:
    response = post_signed(api, "/webhooks/twilio/sms", incoming_params(body, sid))
    assert response.status_code == 200, response.text
    assert b"<Response" in response.content
    api.wait_caught_up()
    found = api.get("/v1/customers", params={"address": f"phone:{CUSTOMER}"}).json()
    customer: dict[str, Any] = found["items"][0]
    return customer


def test_reply_goes_out_through_twilio_and_the_callback_settles_it(
    api: Api, twilio: TwilioPeer
) -> None:
    customer = sms_in(api, "Where is my order?", "SM" + "a" * 32)
    (message,) = api.messages(customer["customer_id"])
    conversation = message["conversation_id"]

    reply = api.post(
        f"/v1/conversations/{conversation}/messages",
        json={"text": "It ships today."},
        headers={"Idempotency-Key": "reply-1"},
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["status"] == "queued"
    again = api.post(
        f"/v1/conversations/{conversation}/messages",
        json={"text": "It ships today."},
        headers={"Idempotency-Key": "reply-1"},
    )
    assert again.status_code == 200
    assert again.json()["message_id"] == reply.json()["message_id"]

    sent = wait_for(lambda: twilio.messages)
    assert len(sent) == 1  # the repeated request was not sent twice
    assert sent[0]["body"] == "It ships today."
    assert sent[0]["to"] == CUSTOMER
    mid = reply.json()["message_id"]

    def provider_id() -> str | None:
        api.wait_caught_up()
        items = {m["item_id"]: m for m in api.messages(customer["customer_id"])}
        found: str | None = items[mid]["provider_message_id"]
        return found if found and not found.startswith("hub:") else None

    sid = wait_for(provider_id)
    assert sid == sent[0]["sid"]
    callback = twilio.requests[-1].form["StatusCallback"][0]
    assert callback == f"{PUBLIC}/webhooks/twilio/status?message_id={mid}"

    path = callback.removeprefix(PUBLIC)
    response = post_signed(api, path, status_params(sid, "delivered"))
    assert response.status_code == 200, response.text
    api.wait_caught_up()
    items = {m["item_id"]: m for m in api.messages(customer["customer_id"])}
    assert items[mid]["delivery_status"] == "delivered"
    assert items[mid]["direction"] == "outbound"


def test_stop_withdraws_consent_and_the_next_reply_is_refused(api: Api, twilio: TwilioPeer) -> None:
    customer = sms_in(api, "hello", "SM" + "b" * 32)
    sms_in(api, "STOP", "SM" + "c" * 32)
    conversation = api.messages(customer["customer_id"])[0]["conversation_id"]
    before = api.store_position()
    refused = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Hi?"})
    error = assert_error(refused, 409, "consent_revoked")
    assert "sms" in error["message"]
    assert api.store_position() == before  # nothing recorded
    kinds = [i["kind"] for i in api.timeline(customer["customer_id"])]
    assert "consent_changed" in kinds

    sms_in(api, "START", "SM" + "d" * 32)
    accepted = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Welcome back"})
    assert accepted.status_code == 202, accepted.text
    wait_for(lambda: twilio.messages)


def test_a_provider_refusal_is_recorded_with_its_reason(api: Api, twilio: TwilioPeer) -> None:
    customer = sms_in(api, "hi", "SM" + "e" * 32)
    conversation = api.messages(customer["customer_id"])[0]["conversation_id"]
    twilio.fail_next(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})
    reply = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "x"})
    mid = reply.json()["message_id"]

    def failed() -> dict[str, Any] | None:
        api.wait_caught_up()
        item = {m["item_id"]: m for m in api.messages(customer["customer_id"])}[mid]
        return item if item["delivery_status"] == "failed" else None

    item = wait_for(failed)
    assert item["data"]["error_code"] == "21610"


def test_a_retryable_failure_is_retried(api: Api, twilio: TwilioPeer) -> None:
    customer = sms_in(api, "hi", "SM" + "f" * 32)
    conversation = api.messages(customer["customer_id"])[0]["conversation_id"]
    twilio.fail_next(503, {"code": 20500, "message": "Internal Server Error"}, times=2)
    api.post(f"/v1/conversations/{conversation}/messages", json={"text": "third time lucky"})
    sent = wait_for(lambda: twilio.messages)
    assert sent[0]["body"] == "third time lucky"
    assert len([r for r in twilio.requests if r.method == "POST"]) == 3


def test_unsigned_webhooks_record_nothing(api: Api) -> None:
    before = api.store_position()
    params = incoming_params("forged", "SM" + "9" * 32)
    unsigned = api.client.post(
        "/webhooks/twilio/sms",
        content=urlencode(params),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(unsigned, 401, "invalid_signature")
    wrong = post_signed(api, "/webhooks/twilio/sms", [*params[:-1], ("From", "+15550009999")])
    assert wrong.status_code == 200  # signed for what it says: a different sender, accepted
    forged = api.client.post(
        "/webhooks/twilio/sms",
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature("not-the-token", PUBLIC + "/x", params),
        },
    )
    assert_error(forged, 403, "invalid_signature")
    api.wait_caught_up()
    assert api.store_position() > before  # only the properly signed one


def test_a_webhook_of_a_connector_that_is_off_is_not_found(api: Api) -> None:
    assert_error(api.client.post("/webhooks/telegram", content=b"{}"), 404, "not_found")
    channels = api.readiness()["channels"]
    assert channels == {
        "sandbox": "off",  # only with HUB_SANDBOX or hub serve --demo
        "twilio": "on",
        "email": "off",
        "meta": "off",
        "telegram": "off",
        "chat": "on",
    }
