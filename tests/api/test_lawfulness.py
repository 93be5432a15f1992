"""``GET /v1/messages/{id}/lawfulness`` end to end, on both backends: an SMS arrives signed as
Twilio signs it, the agent replies, the dispatcher sends it to a Twilio API on loopback, and
the answer about that send stays the same after the customer withdraws consent, is merged,
and the views are rebuilt and the hub restarted. A reply held for quiet hours shows the
customer's zone; when consent is withdrawn while it waits, the refusal says why. Every role
with ``read`` may ask; the reply's ``purpose`` is checked against consent and the known
purposes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from hub.domain.policy import time_zone_of
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    CUSTOMER,
    TwilioPeer,
    incoming_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN_TOKEN, Api, assert_error, interaction, running_app, wait_for

PUBLIC = "https://hub.example.test"
_sids = iter(range(10**6))


def hub_settings(
    make_settings: Callable[..., Settings], backend: str, twilio: TwilioPeer, **dispatch: Any
) -> Settings:
    return make_settings(
        backend,
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        twilio=twilio_settings(twilio.url),
        dispatch={"quiet_hours_start": None, "retry_base_seconds": 0.05, **dispatch},
        consent={"purposes": {"reminders": {}}},
    )


def sms_in(api: Api, body: str) -> dict[str, Any]:
    """The customer's SMS through the signed webhook; the customer it belongs to."""
    params = incoming_params(body, f"SM{next(_sids):032d}")
    path = "/webhooks/twilio/sms"
    response = api.client.post(
        path,
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(AUTH_TOKEN, PUBLIC + path, params),
        },
    )
    assert response.status_code == 200, response.text
    api.wait_caught_up()
    found = api.get("/v1/customers", params={"address": f"phone:{CUSTOMER}"}).json()
    customer: dict[str, Any] = found["items"][0]
    return customer


def lawfulness(api: Api, message_id: str, token: str | None = ADMIN_TOKEN) -> dict[str, Any]:
    response = api.get(f"/v1/messages/{message_id}/lawfulness", token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reply(api: Api, conversation: str, **body: Any) -> str:
    response = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Hi", **body})
    assert response.status_code == 202, response.text
    mid: str = response.json()["message_id"]
    return mid


def test_a_past_send_keeps_its_answer_through_withdrawal_merge_and_rebuild(
    make_settings: Callable[..., Settings], backend: str, twilio: TwilioPeer
) -> None:
    settings = hub_settings(make_settings, backend, twilio)
    with running_app(settings) as api:
        customer = sms_in(api, "Where is my order?")
        cid = customer["customer_id"]
        conversation = api.messages(cid)[0]["conversation_id"]
        mid = reply(api, conversation, text="It ships today.")
        wait_for(lambda: twilio.messages)
        before = wait_for(lambda: (b := lawfulness(api, mid))["outcome"] == "sent" and b)

        assert (before["sent_by_hub"], before["purpose"], before["channel"]) == (
            True,
            "service",
            "sms",
        )
        assert (before["customer_id"], before["conversation_id"]) == (cid, conversation)
        decided = before["decided"]
        assert decided["decision"] == "send"
        assert decided["consent"] == {
            "purpose": "service",
            "granted": True,
            "rule": "first_contact",
            "entry": None,
        }
        assert decided["quiet_hours"]["effect"] == "off"
        assert decided["service_window"]["hours"] is None
        assert before["requested_by"] == "admin (HUB_ADMIN_TOKEN)"

        # Today's state changes: STOP, then a merge into another customer.
        sms_in(api, "STOP")
        other = api.record(address="phone:+15550123456", text="me too")
        merged = api.post(f"/v1/customers/{other['customer_id']}/merge", json={"customer_id": cid})
        assert merged.status_code == 200, merged.text
        api.wait_caught_up()
        refused = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Hi"})
        assert_error(refused, 409, "consent_revoked")
        assert lawfulness(api, mid) == before
        assert api.runtime is not None
        for projection in api.runtime.views.projections:
            api.runtime.views.reset(projection.name)
    with running_app(settings) as api:  # a restart on the rebuilt views, caches empty
        api.wait_caught_up()
        assert lawfulness(api, mid) == before


def test_held_for_quiet_hours_then_refused_when_consent_was_withdrawn(
    make_settings: Callable[..., Settings], backend: str, twilio: TwilioPeer
) -> None:
    zone = time_zone_of(f"phone:{CUSTOMER}", None)
    assert zone is not None
    local = datetime.now(UTC).astimezone(zone)
    quiet = {  # quiet now in the customer's zone, for two hours either side
        "quiet_hours_start": (local - timedelta(hours=2)).time().replace(microsecond=0),
        "quiet_hours_end": (local + timedelta(hours=2)).time().replace(microsecond=0),
        "awake_window": 0,
    }
    settings = hub_settings(make_settings, backend, twilio, **quiet)
    with running_app(settings) as api:
        customer = sms_in(api, "hello")
        conversation = api.messages(customer["customer_id"])[0]["conversation_id"]
        mid = reply(api, conversation, text="Tomorrow then")
        held = wait_for(lambda: (b := lawfulness(api, mid))["outcome"] == "held" and b)
        hours = held["decided"]["quiet_hours"]
        assert (hours["zone"], hours["quiet"], hours["effect"]) == (zone.key, True, "held")
        at = datetime.fromisoformat(hours["local_time"])
        assert at.utcoffset() == local.utcoffset()  # the customer's local time, not UTC
        assert abs(at - local) < timedelta(minutes=5)
        assert datetime.fromisoformat(hours["held_until"]) > datetime.now(UTC)
        assert zone.key in held["summary"]
        assert not twilio.messages

        sms_in(api, "STOP")  # while the reply waits
    # The dispatcher of the restarted hub takes up the waiting reply again (once the stopped
    # one's lease ran out: it is not released on stop).
    with running_app(settings) as api:
        refused = wait_for(
            lambda: (b := lawfulness(api, mid))["outcome"] == "refused" and b, timeout=40
        )
        assert (refused["refusal_code"], refused["status"]) == ("consent_revoked", "failed")
        assert "withdrew consent for sms" in refused["refusal_reason"]
        assert [d["decision"] for d in refused["decisions"]] == ["hold", "refuse"]
        consent = refused["decided"]["consent"]
        assert (consent["granted"], consent["rule"]) == (False, "ledger")
        assert consent["entry"]["source"] == "keyword"
        assert consent["entry"]["evidence_message_id"] is not None
        assert not twilio.messages


@pytest.fixture
def sms_hub(
    make_settings: Callable[..., Settings], twilio: TwilioPeer
) -> Iterator[tuple[Api, str]]:
    """A SQLite hub sending SMS, and a conversation with the customer."""
    with running_app(hub_settings(make_settings, "sqlite", twilio)) as api:
        customer = sms_in(api, "hello")
        yield api, api.messages(customer["customer_id"])[0]["conversation_id"]


def test_every_reading_role_may_ask_and_nobody_else(sms_hub: tuple[Api, str]) -> None:
    api, conversation = sms_hub
    mid = reply(api, conversation)
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "ann")
    _, service = api.runtime.tokens.create("service", "crm")
    answers = [lawfulness(api, mid, token) for token in (ADMIN_TOKEN, agent, service)]
    assert {a["message_id"] for a in answers} == {mid}
    path = f"/v1/messages/{mid}/lawfulness"
    assert_error(api.get(path, token=None), 401, "unauthorized")
    assert_error(api.get(path, token="not-a-token"), 401, "unauthorized")
    unknown = "/v1/messages/0190d7a2-0000-7000-8000-000000000000/lawfulness"
    assert_error(api.get(unknown), 404, "not_found")
    assert_error(api.get("/v1/messages/nope/lawfulness"), 422, "validation_error")


def test_a_message_the_customer_sent_was_not_sent_by_the_hub(sms_hub: tuple[Api, str]) -> None:
    api, _ = sms_hub
    recorded = api.record(**interaction(address="phone:+15550100077", text="hi"))
    answer = lawfulness(api, recorded["message_id"])
    assert (answer["sent_by_hub"], answer["outcome"], answer["direction"]) == (
        False,
        "not_sent_by_hub",
        "inbound",
    )
    assert answer["decided"] is None
    assert answer["decisions"] == []


def test_the_purpose_of_a_reply_is_checked_and_answered(sms_hub: tuple[Api, str]) -> None:
    api, conversation = sms_hub
    path = f"/v1/conversations/{conversation}/messages"
    assert_error(
        api.post(path, json={"text": "Sale!", "purpose": "marketing"}), 409, "consent_missing"
    )
    assert_error(
        api.post(path, json={"text": "Soon", "purpose": "reminders"}), 409, "consent_missing"
    )
    assert_error(api.post(path, json={"text": "x", "purpose": "astrology"}), 422, "unknown_purpose")
    assert_error(api.post(path, json={"text": "x", "purpose": ""}), 422, "validation_error")
    assert_error(api.post(path, json={"text": "x", "purpose": "Sale!"}), 422, "validation_error")

    assert api.runtime is not None
    cid = UUID(api.conversation(conversation)["customer_id"])
    api.runtime.commands.outbound.change_consent(
        cid, "sms", True, purposes=["marketing"], source="api"
    )
    mid = reply(api, conversation, text="Sale!", purpose="marketing")
    answer = wait_for(lambda: (b := lawfulness(api, mid))["outcome"] == "sent" and b)
    assert answer["purpose"] == "marketing"
    consent = answer["decided"]["consent"]
    assert (consent["purpose"], consent["granted"], consent["rule"]) == (
        "marketing",
        True,
        "ledger",
    )
    assert consent["entry"]["source"] == "api"
    assert consent["entry"]["purposes"] == ["marketing"]


_PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@_PROPERTY
@given(purpose=st.text(max_size=40))
@example(purpose="service")
@example(purpose="reminders")
@example(purpose="\x00")
@example(purpose="\ud800")
def test_any_purpose_is_refused_with_a_4xx_or_answered(
    sms_hub: tuple[Api, str], purpose: str
) -> None:
    api, conversation = sms_hub
    response = api.client.post(
        f"/v1/conversations/{conversation}/messages",
        content=_json({"text": "hi", "purpose": purpose}),
        headers={**api.auth(), "content-type": "application/json"},
    )
    assert response.status_code in (202, 400, 409, 422), response.text
    if response.status_code == 202:
        assert lawfulness(api, response.json()["message_id"])["purpose"] == purpose


def _json(body: dict[str, Any]) -> bytes:
    """JSON as a client would write it, lone surrogates escaped (not UTF-8 encodable)."""
    return json.dumps(body, ensure_ascii=True).encode()
