"""The Twilio connector against Twilio's wire formats: signed form webhooks (the signature is
computed here, independently of the twilio library) and the Messages API on loopback."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from hub.connectors.base import (
    ConnectorContext,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    RetryableError,
    WebhookRequest,
)
from hub.connectors.twilio import EMPTY_TWIML, TwilioConnector
from tests.connectors.contract import SignedWebhookContract
from tests.peers.http import closed_port, running
from tests.peers.twilio_peer import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    FROM_NUMBER,
    TwilioPeer,
    incoming_params,
    status_params,
    twilio_settings,
    twilio_signature,
)

PUBLIC_URL = "https://hub.example.com"
SMS_URL = f"{PUBLIC_URL}/webhooks/twilio/sms"
STATUS_URL = f"{PUBLIC_URL}/webhooks/twilio/status"


def form_request(
    hook: str,
    url: str,
    params: list[tuple[str, str]],
    *,
    token: str = AUTH_TOKEN,
    headers: dict[str, str] | None = None,
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        hook=hook,
        url=url,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(token, url, params),
            "i-twilio-idempotency-token": str(uuid.uuid4()),
            **(headers or {}),
        },
        query={},
        body=urlencode(params).encode(),
    )


@pytest.fixture(scope="module")
def peer() -> Iterator[TwilioPeer]:
    with running(TwilioPeer(ACCOUNT_SID, AUTH_TOKEN, own_numbers={FROM_NUMBER})) as p:
        yield p


async def started(base_url: str, **overrides: Any) -> TwilioConnector:
    connector = TwilioConnector(
        twilio_settings(base_url, **overrides), ConnectorContext(public_url=PUBLIC_URL)
    )
    await connector.start()
    return connector


@pytest.fixture
async def connector(peer: TwilioPeer) -> AsyncIterator[TwilioConnector]:
    c = await started(peer.url)
    yield c
    await c.stop()


def outbound(**overrides: Any) -> OutboundMessage:
    message_id = uuid.uuid4()
    values: dict[str, Any] = {
        "message_id": message_id,
        "channel": "sms",
        "address": f"phone:{CUSTOMER}",
        "text": "Your order has shipped.",
        "status_callback_url": f"{STATUS_URL}?message_id={message_id}",
        **overrides,
    }
    return OutboundMessage.model_validate(values)


class TestTwilioContract(SignedWebhookContract):
    name = "twilio"

    def signed_request(self, *, text: str, provider_message_id: str) -> WebhookRequest:
        return form_request("sms", SMS_URL, incoming_params(text, provider_message_id))

    def without_signature(self, request: WebhookRequest) -> WebhookRequest:
        headers = {k: v for k, v in request.headers.items() if k != "x-twilio-signature"}
        return WebhookRequest(
            request.method, request.hook, request.url, headers, request.query, request.body
        )

    def with_wrong_signature(self, request: WebhookRequest) -> WebhookRequest:
        params = incoming_params("x", "wrong")
        headers = {
            **request.headers,
            "x-twilio-signature": twilio_signature("not-the-token", request.url, params),
        }
        return WebhookRequest(
            request.method, request.hook, request.url, headers, request.query, request.body
        )

    def outbound(self) -> OutboundMessage:
        return outbound()

    async def unreachable_connector(self) -> TwilioConnector:
        return await started(closed_port())


# -- incoming messages ---------------------------------------------------------------------


def test_incoming_sms_is_an_interaction(connector: TwilioConnector) -> None:
    sid = "SM" + "1" * 32
    outcome = connector.handle_webhook(form_request("sms", SMS_URL, incoming_params("Hi!", sid)))
    (item,) = outcome.interactions
    assert (item.channel, item.direction) == ("sms", "inbound")
    assert item.address == f"phone:{CUSTOMER}"
    assert item.provider_message_id == sid
    assert item.text == "Hi!"
    assert item.occurred_at.utcoffset() is not None
    assert item.consent is None
    assert item.metadata["to"] == FROM_NUMBER
    assert item.metadata["from_city"] == "SAN FRANCISCO"
    assert "keyword" not in item.metadata
    # Twilio is answered with TwiML that sends nothing back.
    assert (outcome.status, outcome.body, outcome.media_type) == (
        200,
        EMPTY_TWIML,
        "application/xml",
    )


def test_a_nul_in_a_signed_form_is_kept_as_a_replacement_character(
    connector: TwilioConnector,
) -> None:
    """%00 decodes to NUL, which no store can hold: the message is kept with U+FFFD rather
    than set aside, since Twilio sent and signed it."""
    params = incoming_params("before\x00after", "SM-nul-1", ProfileName="Nul\x00Name")
    (item,) = connector.handle_webhook(form_request("sms", SMS_URL, params)).interactions
    assert (item.text, item.contact_name) == ("before\ufffdafter", "Nul\ufffdName")


def test_signature_statuses(connector: TwilioConnector) -> None:
    request = form_request("sms", SMS_URL, incoming_params("x", "SMsig"))
    unsigned = {k: v for k, v in request.headers.items() if k != "x-twilio-signature"}
    with pytest.raises(InvalidSignature) as missing:
        connector.handle_webhook(WebhookRequest("POST", "sms", SMS_URL, unsigned, {}, request.body))
    assert missing.value.status == 401
    # Signed for another URL (the hub must verify against the URL Twilio called).
    other = form_request("sms", f"{PUBLIC_URL}/elsewhere", incoming_params("x", "SMsig"))
    with pytest.raises(InvalidSignature) as wrong:
        connector.handle_webhook(
            WebhookRequest("POST", "sms", SMS_URL, other.headers, {}, request.body)
        )
    assert wrong.value.status == 403


def test_another_account_is_refused(connector: TwilioConnector) -> None:
    # Correctly signed with our token, but for an account that is not ours.
    params = incoming_params("hello", "SMother", account_sid="AC" + "0" * 32)
    with pytest.raises(InvalidSignature) as caught:
        connector.handle_webhook(form_request("sms", SMS_URL, params))
    assert caught.value.status == 403


def test_malformed_incoming_message(connector: TwilioConnector) -> None:
    params = [(k, v) for k, v in incoming_params("x", "SMnofrom") if k != "From"]
    with pytest.raises(MalformedPayload):
        connector.handle_webhook(form_request("sms", SMS_URL, params))
    params = [(k, v) for k, v in incoming_params("x", "SMnosid") if k != "MessageSid"]
    with pytest.raises(MalformedPayload):
        connector.handle_webhook(form_request("sms", SMS_URL, params))


def test_short_code_sender_is_set_aside(connector: TwilioConnector) -> None:
    outcome = connector.handle_webhook(
        form_request("sms", SMS_URL, incoming_params("promo", "SMshort", sender="AMAZON"))
    )
    assert outcome.interactions == ()
    (aside,) = outcome.set_aside
    assert "AMAZON" in aside.reason
    assert outcome.status == 200


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("STOP", "STOP"),
        ("  stop \n", "STOP"),
        ("StopAll", "STOPALL"),
        ("unsubscribe", "UNSUBSCRIBE"),
        ("Cancel", "CANCEL"),
        ("END", "END"),
        ("quit", "QUIT"),
    ],
)
def test_opt_out_keywords(connector: TwilioConnector, body: str, word: str) -> None:
    outcome = connector.handle_webhook(form_request("sms", SMS_URL, incoming_params(body, "SMk")))
    (item,) = outcome.interactions
    assert item.consent is not None
    assert item.consent.granted is False
    assert item.consent.reason == f"sms_keyword:{word}"
    assert item.metadata["keyword"] == "STOP"


@pytest.mark.parametrize("body", ["START", "unstop", " Yes "])
def test_opt_in_keywords(connector: TwilioConnector, body: str) -> None:
    outcome = connector.handle_webhook(form_request("sms", SMS_URL, incoming_params(body, "SMs")))
    (item,) = outcome.interactions
    assert item.consent is not None
    assert item.consent.granted is True
    assert item.consent.reason == f"sms_keyword:{body.strip().upper()}"


@pytest.mark.parametrize("body", ["HELP", "info"])
def test_help_is_recorded_without_consent_change(connector: TwilioConnector, body: str) -> None:
    outcome = connector.handle_webhook(form_request("sms", SMS_URL, incoming_params(body, "SMh")))
    (item,) = outcome.interactions
    assert item.consent is None
    assert item.metadata["keyword"] == "HELP"


@pytest.mark.parametrize("body", ["Stop sending", "please stop", "STOP!", "yes please"])
def test_keywords_only_as_the_whole_body(connector: TwilioConnector, body: str) -> None:
    outcome = connector.handle_webhook(form_request("sms", SMS_URL, incoming_params(body, "SMn")))
    (item,) = outcome.interactions
    assert item.consent is None
    assert "keyword" not in item.metadata


def test_advanced_opt_out_custom_keyword(connector: TwilioConnector) -> None:
    # A Messaging Service with Advanced Opt-Out tells which kind of keyword it matched.
    params = incoming_params("BASTA", "SMaoo", OptOutType="STOP")
    (item,) = connector.handle_webhook(form_request("sms", SMS_URL, params)).interactions
    assert item.consent is not None
    assert (item.consent.granted, item.consent.reason) == (False, "sms_keyword:BASTA")


def test_mms_with_two_media(connector: TwilioConnector) -> None:
    sid = "MM" + "a" * 32
    base = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media"
    params = incoming_params(
        "Look at this",
        sid,
        NumMedia="2",
        MediaContentType0="image/jpeg",
        MediaUrl0=f"{base}/ME{'b' * 32}",
        MediaContentType1="text/vcard",
        MediaUrl1=f"{base}/ME{'c' * 32}",
    )
    (item,) = connector.handle_webhook(form_request("sms", SMS_URL, params)).interactions
    first, second = item.attachments
    assert (first.name, first.content_type, first.size) == (f"ME{'b' * 32}.jpg", "image/jpeg", 0)
    assert first.url == f"{base}/ME{'b' * 32}"
    assert (second.name, second.content_type) == (f"ME{'c' * 32}.vcf", "text/vcard")
    assert item.text == "Look at this"


def test_get_webhook_is_verified_over_the_url(connector: TwilioConnector) -> None:
    # A number configured for HTTP GET: the fields are in the URL, which alone is signed.
    url = f"{SMS_URL}?{urlencode(incoming_params('via get', 'SMget'))}"
    headers = {"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, [])}
    (item,) = connector.handle_webhook(
        WebhookRequest("GET", "sms", url, headers, {}, b"")
    ).interactions
    assert item.text == "via get"
    with pytest.raises(InvalidSignature):
        connector.handle_webhook(
            WebhookRequest("GET", "sms", url.replace("via", "not"), headers, {}, b"")
        )


async def test_shared_key_signature(peer: TwilioPeer) -> None:
    secret = "shared-key-secret"
    params = incoming_params("signed with a shared key", "SMshared")
    request = WebhookRequest(
        method="POST",
        hook="sms",
        url=SMS_URL,
        headers={
            "x-twilio-signature": twilio_signature(secret, SMS_URL, params, hashlib.sha256),
            "x-twilio-webhooks-signature-settings": (
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
            ),
        },
        query={},
        body=urlencode(params).encode(),
    )
    without_secret = await started(peer.url)
    with_secret = await started(peer.url, webhook_signing_secret=secret)
    try:
        with pytest.raises(InvalidSignature):
            without_secret.handle_webhook(request)
        (item,) = with_secret.handle_webhook(request).interactions
        assert item.text == "signed with a shared key"
    finally:
        await without_secret.stop()
        await with_secret.stop()


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        (SMS_URL, SMS_URL),
        # Twilio signs with or without the scheme's default port; either verifies.
        ("https://hub.example.com:443/webhooks/twilio/sms", SMS_URL),
        (SMS_URL, "https://hub.example.com:443/webhooks/twilio/sms"),
        (
            "http://hub.example.com:80/webhooks/twilio/sms?x=1",
            "http://hub.example.com/webhooks/twilio/sms?x=1",
        ),
    ],
)
def test_signature_port_variants_as_the_twilio_library(
    connector: TwilioConnector, signed_url: str, called_url: str
) -> None:
    from twilio.request_validator import RequestValidator

    params = incoming_params("port variants", "SMport")
    signature = twilio_signature(AUTH_TOKEN, signed_url, params)
    request = form_request("sms", called_url, params)
    request = WebhookRequest(
        request.method,
        request.hook,
        request.url,
        {**request.headers, "x-twilio-signature": signature},
        request.query,
        request.body,
    )
    assert RequestValidator(AUTH_TOKEN).validate(called_url, dict(params), signature)
    (item,) = connector.handle_webhook(request).interactions
    assert item.text == "port variants"


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [("MediaUrl0", "https://m.example/a"), ("MediaUrl0", "https://m.example/b")],
        [("Tag", "b"), ("Tag", "a"), ("Tag", "b")],  # a repeated value counts once
        [("Empty", ""), ("Unicode", "Grüße ✓")],
    ],
)
def test_signature_agrees_with_the_twilio_library(
    connector: TwilioConnector, extra: list[tuple[str, str]]
) -> None:
    """The connector accepts exactly what the library's ``RequestValidator`` accepts, with
    repeated names, duplicate values, empty and non-ASCII values."""
    from twilio.request_validator import RequestValidator

    params = incoming_params("agrees", "SMagree") + extra
    form: dict[str, list[str]] = {}
    for key, value in params:
        form.setdefault(key, []).append(value)

    class MultiDict(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    right = RequestValidator(AUTH_TOKEN).compute_signature(SMS_URL, MultiDict(form))
    wrong = RequestValidator("not-the-token").compute_signature(SMS_URL, MultiDict(form))
    for signature, accepted in ((right, True), (wrong, False)):
        request = WebhookRequest(
            "POST",
            "sms",
            SMS_URL,
            {"x-twilio-signature": signature},
            {},
            urlencode(params).encode(),
        )
        assert (
            RequestValidator(AUTH_TOKEN).validate(SMS_URL, MultiDict(form), signature) is accepted
        )
        if accepted:
            assert connector.handle_webhook(request).interactions
        else:
            with pytest.raises(InvalidSignature) as refused:
                connector.handle_webhook(request)
            assert refused.value.status == 403


async def test_unsupported_signature_algorithm_is_refused(peer: TwilioPeer) -> None:
    secret = "shared-key-secret"
    params = incoming_params("signed with an unknown algorithm", "SMalgo")
    request = WebhookRequest(
        method="POST",
        hook="sms",
        url=SMS_URL,
        headers={
            "x-twilio-signature": twilio_signature(secret, SMS_URL, params, hashlib.sha512),
            "x-twilio-webhooks-signature-settings": "key=k,algorithm=HMAC_SHA512",
        },
        query={},
        body=urlencode(params).encode(),
    )
    connector = await started(peer.url, webhook_signing_secret=secret)
    try:
        with pytest.raises(InvalidSignature) as refused:
            connector.handle_webhook(request)
        assert refused.value.status == 403
    finally:
        await connector.stop()


# -- status callbacks ----------------------------------------------------------------------


def test_delivered_callback_carries_the_hub_message_id(connector: TwilioConnector) -> None:
    message_id = uuid.uuid4()
    url = f"{STATUS_URL}?message_id={message_id}"
    outcome = connector.handle_webhook(
        form_request("status", url, status_params("SM1", "delivered"))
    )
    (report,) = outcome.reports
    assert (report.channel, report.provider_message_id, report.status) == (
        "sms",
        "SM1",
        "delivered",
    )
    assert report.message_id == message_id
    assert report.error_code is None
    assert report.revoke_consent is False
    assert outcome.interactions == ()
    assert outcome.status == 200


def test_message_id_must_be_signed(connector: TwilioConnector) -> None:
    """The message id comes from the URL Twilio signed: another id invalidates it."""
    signed = form_request(
        "status", f"{STATUS_URL}?message_id={uuid.uuid4()}", status_params("SM1", "sent")
    )
    forged = WebhookRequest(
        "POST", "status", f"{STATUS_URL}?message_id={uuid.uuid4()}", signed.headers, {}, signed.body
    )
    with pytest.raises(InvalidSignature):
        connector.handle_webhook(forged)


@pytest.mark.parametrize(
    ("twilio", "hub"),
    [
        ("accepted", "accepted"),
        ("scheduled", "queued"),
        ("queued", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("canceled", "failed"),
        ("receiving", "received"),
        ("received", "received"),
    ],
)
def test_status_mapping(connector: TwilioConnector, twilio: str, hub: str) -> None:
    outcome = connector.handle_webhook(
        form_request("status", STATUS_URL, status_params("SM2", twilio))
    )
    (report,) = outcome.reports
    assert report.status == hub
    assert report.message_id is None


def test_undelivered_with_error(connector: TwilioConnector) -> None:
    params = status_params(
        "SM3", "undelivered", ErrorCode="30003", ErrorMessage="Unreachable destination handset"
    )
    (report,) = connector.handle_webhook(form_request("status", STATUS_URL, params)).reports
    assert (report.status, report.error_code) == ("undelivered", "30003")
    assert report.error_message == "Unreachable destination handset"
    assert report.revoke_consent is False  # a phone that is off may be on tomorrow


def test_unsubscribed_recipient_revokes_consent(connector: TwilioConnector) -> None:
    params = status_params("SM4", "failed", ErrorCode="21610")
    url = f"{STATUS_URL}?message_id=not-a-uuid"
    (report,) = connector.handle_webhook(form_request("status", url, params)).reports
    assert (report.status, report.error_code, report.revoke_consent) == ("failed", "21610", True)
    assert report.message_id is None


def test_unknown_status_is_set_aside(connector: TwilioConnector) -> None:
    outcome = connector.handle_webhook(
        form_request("status", STATUS_URL, status_params("SM5", "teleported"))
    )
    assert outcome.reports == ()
    assert "teleported" in outcome.set_aside[0].reason


def test_malformed_status_callback(connector: TwilioConnector) -> None:
    params = [(k, v) for k, v in status_params("SM6", "sent") if k != "MessageStatus"]
    with pytest.raises(MalformedPayload):
        connector.handle_webhook(form_request("status", STATUS_URL, params))


# -- sending -------------------------------------------------------------------------------


async def test_send_carries_status_callback_and_sender(
    connector: TwilioConnector, peer: TwilioPeer
) -> None:
    message = outbound()
    result = await connector.send(message)
    created = peer.messages[-1]
    assert result.provider_message_id == created["sid"]
    assert created["sid"].startswith("SM")
    assert len(created["sid"]) == 34
    assert result.status == "queued"
    assert created["to"] == CUSTOMER
    assert created["from"] == FROM_NUMBER
    assert created["body"] == "Your order has shipped."
    assert created["status_callback"] == f"{STATUS_URL}?message_id={message.message_id}"
    seen = peer.requests[-1]
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    # No idempotency header: Twilio's Messages API has none.
    assert not any("idempotency" in name for name in seen.headers)


async def test_send_through_a_messaging_service(peer: TwilioPeer) -> None:
    service = "MG" + "9" * 32
    connector = await started(peer.url, from_number=None, messaging_service_sid=service)
    try:
        result = await connector.send(outbound(status_callback_url=None))
    finally:
        await connector.stop()
    form = peer.requests[-1].form
    assert form["MessagingServiceSid"] == [service]
    assert "From" not in form
    assert "StatusCallback" not in form
    assert result.status == "accepted"


async def test_wrong_credentials_are_permanent(peer: TwilioPeer) -> None:
    connector = await started(peer.url, auth_token="not-the-token")
    try:
        with pytest.raises(PermanentError) as caught:
            await connector.send(outbound())
    finally:
        await connector.stop()
    assert not isinstance(caught.value, RetryableError)
    assert caught.value.provider_code == "20003"
    assert "Authenticate" in caught.value.reason


async def test_twilio_refusal_keeps_its_code(connector: TwilioConnector, peer: TwilioPeer) -> None:
    peer.fail_next(
        400,
        {
            "code": 21610,
            "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610",
            "status": 400,
        },
    )
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound())
    assert caught.value.provider_code == "21610"
    assert "unsubscribed recipient" in caught.value.reason


async def test_rate_limit_keeps_retry_after(connector: TwilioConnector, peer: TwilioPeer) -> None:
    peer.fail_next(
        429,
        {"code": 20429, "message": "Too Many Requests", "status": 429},
        headers={"Retry-After": "3"},
    )
    with pytest.raises(RetryableError) as caught:
        await connector.send(outbound())
    assert caught.value.retry_after == 3.0
    assert caught.value.provider_code == "20429"
    # The next failure without the header does not inherit it.
    peer.fail_next(503, {"code": 20500, "message": "Internal Server Error", "status": 503})
    with pytest.raises(RetryableError) as again:
        await connector.send(outbound())
    assert again.value.retry_after is None


async def test_non_phone_address_is_permanent(connector: TwilioConnector, peer: TwilioPeer) -> None:
    before = len(peer.requests)
    with pytest.raises(PermanentError):
        await connector.send(outbound(address="email:someone@example.com"))
    assert len(peer.requests) == before


def test_metadata_and_rate() -> None:
    assert TwilioConnector.idempotent_sends is False
    assert (TwilioConnector.webhooks, TwilioConnector.status_hook) == (("sms", "status"), "status")
    assert TwilioConnector(twilio_settings("http://127.0.0.1:1")).send_rate == 1.0
    assert (
        TwilioConnector(twilio_settings("http://127.0.0.1:1", rate_per_second=30)).send_rate == 30
    )


async def test_stop_closes_the_session(peer: TwilioPeer) -> None:
    connector = await started(peer.url)
    session = connector._messages.http.session  # type: ignore[union-attr]
    assert not session.closed
    await connector.stop()
    assert session.closed
    with pytest.raises(RetryableError):
        await connector.send(outbound())
