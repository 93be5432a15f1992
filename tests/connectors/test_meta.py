"""The Meta connector (WhatsApp, Messenger, Instagram) against the contract and a loopback
Graph API; webhooks signed here with an independent HMAC-SHA256 over the raw body, payloads
shaped as in Meta's webhook documentation."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from hub.connectors.base import (
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    RetryableError,
    WebhookRequest,
    WhatsAppTemplate,
)
from hub.connectors.meta import MetaConnector, MetaSettings
from tests.connectors.contract import SignedWebhookContract
from tests.peers.http import closed_port, running
from tests.peers.meta_peer import (
    ACCESS_TOKEN,
    APP_SECRET,
    IG_ID,
    PAGE_ID,
    VERIFY_TOKEN,
    VERSION,
    WA_PHONE_ID,
    GraphPeer,
    whatsapp,
)

WA_CUSTOMER = "16505551234"
PSID = "6372081836242101"
IGSID = "5928341573906012"
URL = "https://hub.example.com/webhooks/meta"
TS = 1749416383
ADDRESSES = {
    "whatsapp": f"phone:+{WA_CUSTOMER}",
    "messenger": f"messenger:{PSID}",
    "instagram": f"instagram:{IGSID}",
}


def signed(body: dict[str, Any] | bytes, secret: str = APP_SECRET) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return WebhookRequest(
        method="POST",
        hook="",
        url=URL,
        headers={"content-type": "application/json", "x-hub-signature-256": f"sha256={signature}"},
        query={},
        body=raw,
    )


def whatsapp_messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return whatsapp(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": WA_CUSTOMER}],
            "messages": list(messages),
        }
    )


def whatsapp_text(text: str, wamid: str, **extra: Any) -> dict[str, Any]:
    return {
        "from": WA_CUSTOMER,
        "id": wamid,
        "timestamp": str(TS),
        "type": "text",
        "text": {"body": text},
        **extra,
    }


def messaging(obj: str, business: str, *events: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": obj,
        "entry": [{"id": business, "time": TS * 1000 + 478, "messaging": list(events)}],
    }


def messenger_text(text: str, mid: str) -> dict[str, Any]:
    return messaging(
        "page",
        PAGE_ID,
        {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "timestamp": TS * 1000 + 123,
            "message": {"mid": mid, "text": text},
        },
    )


def instagram_text(text: str, mid: str) -> dict[str, Any]:
    return messaging(
        "instagram",
        IG_ID,
        {
            "sender": {"id": IGSID},
            "recipient": {"id": IG_ID},
            "timestamp": TS * 1000 + 349,
            "message": {"mid": mid, "text": text},
        },
    )


PAYLOADS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "whatsapp": lambda text, mid: whatsapp_messages(whatsapp_text(text, mid)),
    "messenger": messenger_text,
    "instagram": instagram_text,
}


def settings(base_url: str, **overrides: Any) -> MetaSettings:
    values: dict[str, Any] = {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "access_token": ACCESS_TOKEN,
        "graph_base_url": base_url,
        "graph_api_version": VERSION,
        "whatsapp_phone_number_id": WA_PHONE_ID,
        "page_id": PAGE_ID,
        "instagram_account_id": IG_ID,
        "timeout_seconds": 5,
    }
    return MetaSettings.model_validate(values | overrides)


def outbound(channel: str, text: str = "Your order has shipped", **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid4(), channel=channel, address=ADDRESSES[channel], text=text, **extra
    )


@pytest.fixture
def peer() -> Iterator[GraphPeer]:
    graph = GraphPeer(
        access_token=ACCESS_TOKEN,
        version=VERSION,
        whatsapp_phone_number_id=WA_PHONE_ID,
        page_id=PAGE_ID,
        instagram_account_id=IG_ID,
    )
    with running(graph):
        yield graph


@pytest.fixture
async def connector(peer: GraphPeer) -> AsyncIterator[MetaConnector]:
    meta = MetaConnector(settings(peer.url))
    await meta.start()
    yield meta
    await meta.stop()


class _MetaContract(SignedWebhookContract):
    carries_lone_surrogates = True
    name = "meta"
    channel: ClassVar[str]

    def signed_request(self, *, text: str, provider_message_id: str) -> WebhookRequest:
        return signed(PAYLOADS[self.channel](text, provider_message_id))

    def without_signature(self, request: WebhookRequest) -> WebhookRequest:
        headers = {k: v for k, v in request.headers.items() if k != "x-hub-signature-256"}
        return dataclasses.replace(request, headers=headers)

    def with_wrong_signature(self, request: WebhookRequest) -> WebhookRequest:
        return signed(request.body, secret="not-the-app-secret")

    def outbound(self) -> OutboundMessage:
        return outbound(self.channel)

    async def unreachable_connector(self) -> MetaConnector:
        meta = MetaConnector(settings(closed_port()))
        await meta.start()
        return meta

    async def test_inbound_is_on_its_channel(self, connector: MetaConnector) -> None:
        outcome = await self.deliver_inbound(connector, text="hi", provider_message_id="ch-1")
        (item,) = outcome.interactions
        assert (item.channel, item.address) == (self.channel, ADDRESSES[self.channel])
        assert item.provider_message_id == "ch-1"
        assert item.occurred_at.tzinfo is not None
        assert item.occurred_at.replace(microsecond=0) == datetime.fromtimestamp(TS, UTC)


class TestWhatsAppContract(_MetaContract):
    channel = "whatsapp"


class TestMessengerContract(_MetaContract):
    channel = "messenger"


class TestInstagramContract(_MetaContract):
    channel = "instagram"


# -- the subscription challenge -----------------------------------------------------------


def challenge(token: str | None, mode: str = "subscribe") -> WebhookRequest:
    query = {"hub.mode": mode, "hub.challenge": "1158201444"}
    if token is not None:
        query["hub.verify_token"] = token
    return WebhookRequest(method="GET", hook="", url=URL, headers={}, query=query, body=b"")


def test_challenge_with_the_verify_token_is_answered(connector: MetaConnector) -> None:
    outcome = connector.handle_webhook(challenge(VERIFY_TOKEN))
    assert (outcome.status, outcome.body, outcome.media_type) == (200, b"1158201444", "text/plain")
    assert not outcome.interactions


def test_challenge_with_a_wrong_token_is_refused(connector: MetaConnector) -> None:
    with pytest.raises(InvalidSignature) as caught:
        connector.handle_webhook(challenge("guessed"))
    assert caught.value.status == 403


def test_challenge_without_its_parameters_is_malformed(connector: MetaConnector) -> None:
    with pytest.raises(MalformedPayload):
        connector.handle_webhook(challenge(None))


def test_signature_statuses(connector: MetaConnector) -> None:
    request = signed(messenger_text("x", "m_1"))
    with pytest.raises(InvalidSignature) as missing:
        connector.handle_webhook(dataclasses.replace(request, headers={}))
    assert missing.value.status == 401
    with pytest.raises(InvalidSignature) as wrong:
        connector.handle_webhook(
            dataclasses.replace(request, headers={"x-hub-signature-256": "sha256=" + "0" * 64})
        )
    assert wrong.value.status == 403


def test_signed_body_that_is_not_json_is_malformed(connector: MetaConnector) -> None:
    with pytest.raises(MalformedPayload):
        connector.handle_webhook(signed(b"not json"))


# -- WhatsApp inbound ----------------------------------------------------------------------


def test_whatsapp_text_reply_with_contact_name(connector: MetaConnector) -> None:
    message = whatsapp_text(
        "Does it come in another color?",
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        context={"from": "15550783881", "id": "wamid.HBgLMTY1MDM4NzkORIGINAL"},
    )
    (item,) = connector.handle_webhook(signed(whatsapp_messages(message))).interactions
    assert item.text == "Does it come in another color?"
    assert item.contact_name == "Sheena Nelson"
    assert item.address == "phone:+16505551234"
    assert item.thread_ref == "wamid.HBgLMTY1MDM4NzkORIGINAL"
    assert item.occurred_at == datetime.fromtimestamp(TS, UTC)
    assert item.metadata["phone_number_id"] == WA_PHONE_ID


def test_whatsapp_media_become_attachments_with_their_media_id(
    connector: MetaConnector,
) -> None:
    image = {
        "from": WA_CUSTOMER,
        "id": "wamid.IMAGE1",
        "timestamp": str(TS),
        "type": "image",
        "image": {
            "caption": "the broken part",
            "mime_type": "image/jpeg",
            "sha256": "fRCxQ1JC/8u4DK2v1ooEH4qQ8ehcv7ha6D0/Z5zRQJ0=",
            "id": "1003383421387256",
        },
    }
    document = {
        "from": WA_CUSTOMER,
        "id": "wamid.DOC1",
        "timestamp": str(TS),
        "type": "document",
        "document": {
            "filename": "invoice-2025-06.pdf",
            "mime_type": "application/pdf",
            "sha256": "Dq8eH3yL6dWJzzF1pvnmH4DwHMnTN8TPLB5b6bIG2Qc=",
            "id": "1004271118263545",
        },
    }
    outcome = connector.handle_webhook(signed(whatsapp_messages(image, document)))
    photo, pdf = outcome.interactions
    assert photo.text == "the broken part"
    (attachment,) = photo.attachments
    assert (attachment.name, attachment.content_type, attachment.size, attachment.url) == (
        "image-1003383421387256",
        "image/jpeg",
        0,
        None,
    )
    assert photo.metadata["media_id"] == "1003383421387256"
    assert pdf.attachments[0].name == "invoice-2025-06.pdf"
    assert pdf.attachments[0].content_type == "application/pdf"


def test_whatsapp_statuses_become_delivery_reports(connector: MetaConnector) -> None:
    hub_id = uuid4()

    def status(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": "wamid.SENT1",
            "status": name,
            "timestamp": str(TS + 10),
            "recipient_id": WA_CUSTOMER,
            "biz_opaque_callback_data": str(hub_id),
            **extra,
        }

    failed = status(
        "failed",
        errors=[
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "The recipient's phone number is not on WhatsApp."},
            }
        ],
    )
    body = whatsapp(
        {
            "statuses": [
                status("sent", pricing={"billable": True, "category": "service"}),
                status("delivered"),
                status("read"),
                failed,
            ]
        }
    )
    outcome = connector.handle_webhook(signed(body))
    assert not outcome.interactions
    assert [r.status for r in outcome.reports] == ["sent", "delivered", "read", "failed"]
    assert {(r.channel, r.provider_message_id, r.message_id) for r in outcome.reports} == {
        ("whatsapp", "wamid.SENT1", hub_id)
    }
    assert outcome.reports[0].occurred_at == datetime.fromtimestamp(TS + 10, UTC)
    last = outcome.reports[-1]
    assert last.error_code == "131026"
    assert last.error_message is not None
    assert "not on WhatsApp" in last.error_message
    assert outcome.reports[0].error_code is None


def test_a_malformed_item_is_set_aside_and_its_sibling_recorded(
    connector: MetaConnector,
) -> None:
    good = whatsapp_text("fine", "wamid.GOOD")
    no_sender = {k: v for k, v in whatsapp_text("lost", "wamid.NOFROM").items() if k != "from"}
    bad_time = whatsapp_text("late", "wamid.BADTIME", timestamp="yesterday")
    outcome = connector.handle_webhook(signed(whatsapp_messages(no_sender, good, bad_time)))
    assert outcome.status == 200
    assert [i.provider_message_id for i in outcome.interactions] == ["wamid.GOOD"]
    assert [s.payload for s in outcome.set_aside] == [no_sender, bad_time]
    assert "from" in outcome.set_aside[0].reason
    assert "timestamp" in outcome.set_aside[1].reason


@pytest.mark.parametrize(
    "body",
    [
        {"object": "user", "entry": [{"id": "1", "changes": [{"field": "email"}]}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {}}]}],
        },
    ],
)
def test_unsupported_objects_and_fields_are_acknowledged(
    connector: MetaConnector, body: dict[str, Any]
) -> None:
    outcome = connector.handle_webhook(signed(body))
    assert outcome.status == 200
    assert (outcome.interactions, outcome.reports, outcome.set_aside) == ((), (), ())


# -- Messenger and Instagram inbound -------------------------------------------------------


def test_messenger_delivery_reports_each_mid_and_read_watermark_is_skipped(
    connector: MetaConnector,
) -> None:
    body = messaging(
        "page",
        PAGE_ID,
        {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "delivery": {"mids": ["m_AG5Hz2U", "m_BG5Hz2U"], "watermark": TS * 1000},
        },
        {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "timestamp": TS * 1000 + 5,
            "read": {"watermark": TS * 1000},
        },
    )
    outcome = connector.handle_webhook(signed(body))
    assert [(r.channel, r.provider_message_id, r.status) for r in outcome.reports] == [
        ("messenger", "m_AG5Hz2U", "delivered"),
        ("messenger", "m_BG5Hz2U", "delivered"),
    ]
    assert outcome.reports[0].occurred_at == datetime.fromtimestamp(TS, UTC)
    assert not outcome.set_aside


def test_messenger_echoes_page_replies_outbound_and_skips_the_hubs_own(
    connector: MetaConnector,
) -> None:
    def echo(mid: str, **extra: Any) -> dict[str, Any]:
        return {
            "sender": {"id": PAGE_ID},
            "recipient": {"id": PSID},
            "timestamp": TS * 1000,
            "message": {"is_echo": True, "app_id": 1517776481860111, "mid": mid, **extra},
        }

    body = messaging(
        "page",
        PAGE_ID,
        echo("m_inbox", text="Answered from the Page inbox"),
        echo("m_hub", text="Sent by the hub", metadata=f"interaction-hub:{uuid4()}"),
    )
    (item,) = connector.handle_webhook(signed(body)).interactions
    assert (item.direction, item.address, item.provider_message_id) == (
        "outbound",
        f"messenger:{PSID}",
        "m_inbox",
    )


def test_messenger_attachment_keeps_its_url(connector: MetaConnector) -> None:
    url = "https://scontent.xx.fbcdn.net/v/t1.15752-9/123456_n.jpg?_nc_cat=1&oh=abc"
    body = messaging(
        "page",
        PAGE_ID,
        {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "timestamp": TS * 1000,
            "message": {
                "mid": "m_att",
                "attachments": [{"type": "image", "payload": {"url": url}}],
                "reply_to": {"mid": "m_earlier"},
            },
        },
    )
    (item,) = connector.handle_webhook(signed(body)).interactions
    (attachment,) = item.attachments
    assert (attachment.name, attachment.content_type, attachment.url) == (
        "123456_n.jpg",
        "image/jpeg",
        url,
    )
    assert item.thread_ref == "m_earlier"


def test_instagram_read_with_a_mid_and_deleted_messages(connector: MetaConnector) -> None:
    body = messaging(
        "instagram",
        IG_ID,
        {
            "sender": {"id": IGSID},
            "recipient": {"id": IG_ID},
            "timestamp": TS * 1000,
            "read": {"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1"},
        },
        {
            "sender": {"id": IGSID},
            "recipient": {"id": IG_ID},
            "timestamp": TS * 1000,
            "message": {"mid": "aWdfZAG1DELETED", "is_deleted": True},
        },
    )
    outcome = connector.handle_webhook(signed(body))
    assert not outcome.interactions
    (report,) = outcome.reports
    assert (report.channel, report.status) == ("instagram", "read")


def test_messenger_event_without_a_sender_is_set_aside(connector: MetaConnector) -> None:
    broken = {"recipient": {"id": PAGE_ID}, "timestamp": TS * 1000, "message": {"mid": "m_x"}}
    good = messenger_text("still here", "m_good")["entry"][0]["messaging"][0]
    outcome = connector.handle_webhook(signed(messaging("page", PAGE_ID, broken, good)))
    assert [i.provider_message_id for i in outcome.interactions] == ["m_good"]
    assert [s.payload for s in outcome.set_aside] == [broken]


# -- sending -------------------------------------------------------------------------------


async def test_whatsapp_text_send_body(connector: MetaConnector, peer: GraphPeer) -> None:
    message = outbound("whatsapp", in_reply_to="wamid.HBgLCUSTOMER")
    result = await connector.send(message)
    seen = peer.requests[-1]
    assert seen.path == f"/{VERSION}/{WA_PHONE_ID}/messages"
    assert seen.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert seen.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_CUSTOMER,
        "type": "text",
        "text": {"preview_url": False, "body": "Your order has shipped"},
        "biz_opaque_callback_data": str(message.message_id),
        "context": {"message_id": "wamid.HBgLCUSTOMER"},
    }
    assert result.provider_message_id.startswith("wamid.")
    assert result.status == "accepted"


async def test_whatsapp_template_send_body(connector: MetaConnector, peer: GraphPeer) -> None:
    template = WhatsAppTemplate(
        name="order_shipped", language="en_US", parameters=("Sheena", "#4521")
    )
    await connector.send(outbound("whatsapp", template=template))
    body = peer.requests[-1].json
    assert body["type"] == "template"
    assert "text" not in body
    assert body["template"] == {
        "name": "order_shipped",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Sheena"},
                    {"type": "text", "text": "#4521"},
                ],
            }
        ],
    }


async def test_messenger_and_instagram_send_bodies(
    connector: MetaConnector, peer: GraphPeer
) -> None:
    message = outbound("messenger")
    result = await connector.send(message)
    seen = peer.requests[-1]
    assert seen.path == f"/{VERSION}/{PAGE_ID}/messages"
    assert seen.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "text": "Your order has shipped",
            "metadata": f"interaction-hub:{message.message_id}",
        },
    }
    assert result.provider_message_id.startswith("m_")
    await connector.send(outbound("instagram"))
    seen = peer.requests[-1]
    assert seen.path == f"/{VERSION}/{IG_ID}/messages"
    assert seen.json == {"recipient": {"id": IGSID}, "message": {"text": "Your order has shipped"}}


async def test_whatsapp_outside_the_window_is_permanent(
    connector: MetaConnector, peer: GraphPeer
) -> None:
    peer.outside_window.add(WA_CUSTOMER)
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound("whatsapp"))
    assert not isinstance(caught.value, RetryableError)
    assert caught.value.provider_code == "131047"
    assert "outside the 24-hour" in caught.value.reason
    assert "template" in caught.value.reason
    # A template still goes out.
    await connector.send(outbound("whatsapp", template=WhatsAppTemplate(name="hello_world")))


@pytest.mark.parametrize(("channel", "customer"), [("messenger", PSID), ("instagram", IGSID)])
async def test_messenger_and_instagram_outside_the_window(
    connector: MetaConnector, peer: GraphPeer, channel: str, customer: str
) -> None:
    peer.outside_window.add(customer)
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound(channel))
    assert caught.value.provider_code == "10"
    assert "outside the 24-hour" in caught.value.reason


@pytest.mark.parametrize(
    ("status", "code"), [(400, 130429), (400, 131056), (400, 4), (500, 2), (400, 80007)]
)
async def test_graph_rate_limits_and_temporary_errors_are_retryable(
    connector: MetaConnector, peer: GraphPeer, status: int, code: int
) -> None:
    error = {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": code}
    peer.fail_next(status, {"error": error | {"fbtrace_id": "AbCdEf"}})
    with pytest.raises(RetryableError) as caught:
        await connector.send(outbound("whatsapp"))
    assert caught.value.provider_code == str(code)


async def test_other_graph_errors_are_permanent_with_their_code(
    connector: MetaConnector, peer: GraphPeer
) -> None:
    error = {
        "message": "(#100) Invalid parameter",
        "type": "OAuthException",
        "code": 100,
        "error_data": {"details": "Invalid parameter: to"},
        "fbtrace_id": "A1b2C3",
    }
    peer.fail_next(400, {"error": error})
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound("whatsapp"))
    assert not isinstance(caught.value, RetryableError)
    assert caught.value.provider_code == "100"
    assert "Invalid parameter: to" in caught.value.reason


async def test_a_wrong_access_token_is_permanent(peer: GraphPeer) -> None:
    meta = MetaConnector(settings(peer.url, access_token="EAA-expired"))
    await meta.start()
    try:
        with pytest.raises(PermanentError) as caught:
            await meta.send(outbound("messenger"))
    finally:
        await meta.stop()
    assert caught.value.provider_code == "190"
    assert caught.value.reason == "Invalid OAuth access token."


async def test_whatsapp_without_a_phone_number_id_is_refused(peer: GraphPeer) -> None:
    meta = MetaConnector(settings(peer.url, whatsapp_phone_number_id=None))
    await meta.start()
    try:
        with pytest.raises(PermanentError, match="whatsapp_phone_number_id"):
            await meta.send(outbound("whatsapp"))
    finally:
        await meta.stop()
    assert peer.requests == []


async def test_a_template_on_messenger_is_refused(connector: MetaConnector) -> None:
    with pytest.raises(PermanentError, match="WhatsApp"):
        await connector.send(outbound("messenger", template=WhatsAppTemplate(name="x")))


def test_metadata_and_send_rate() -> None:
    assert MetaConnector.service_windows["whatsapp"].total_seconds() == 24 * 3600
    assert set(MetaConnector.service_windows) == {"whatsapp", "messenger", "instagram"}
    assert MetaConnector(settings("http://127.0.0.1:1")).send_rate == 20.0
    assert MetaConnector(settings("http://127.0.0.1:1", rate_per_second=5)).send_rate == 5.0
