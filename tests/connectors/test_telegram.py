"""The Telegram connector against the contract and a loopback Bot API; updates shaped as in the
Bot API documentation, authenticated with the webhook's secret token header."""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from hub.connectors.base import (
    ConnectorError,
    InvalidSignature,
    OutboundMessage,
    PermanentError,
    RetryableError,
    WebhookRequest,
)
from hub.connectors.telegram import TelegramConnector, TelegramSettings
from tests.connectors.contract import SignedWebhookContract
from tests.peers.http import closed_port, running
from tests.peers.telegram_peer import BotApiPeer

BOT_TOKEN = "7104815527:AAHx3kQdZ9-t0pSecretBotTokenPart_x1"
SECRET = "wh-secret_4f9b2c7d1e"
URL = "https://hub.example.com/webhooks/telegram"
USER = 111222333
DATE = 1749416383
ADA = {
    "id": USER,
    "is_bot": False,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada_l",
    "language_code": "en",
}
PRIVATE = {
    "id": USER,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada_l",
    "type": "private",
}


def update(update_id: int = 873650001, **content: Any) -> dict[str, Any]:
    return {"update_id": update_id, **content}


def message(message_id: int, **content: Any) -> dict[str, Any]:
    return {"message_id": message_id, "from": ADA, "chat": PRIVATE, "date": DATE, **content}


def authenticated(body: dict[str, Any] | bytes, secret: str | None = SECRET) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest(method="POST", hook="", url=URL, headers=headers, query={}, body=raw)


def settings(base_url: str, **overrides: Any) -> TelegramSettings:
    values = {
        "bot_token": BOT_TOKEN,
        "secret_token": SECRET,
        "api_base_url": base_url,
        "timeout_seconds": 5,
    }
    return TelegramSettings.model_validate(values | overrides)


def outbound(text: str = "Your order has shipped", **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid4(), channel="telegram", address=f"telegram:{USER}", text=text, **extra
    )


@pytest.fixture
def peer() -> Iterator[BotApiPeer]:
    with running(BotApiPeer(token=BOT_TOKEN)) as bot_api:
        yield bot_api


@pytest.fixture
async def connector(peer: BotApiPeer) -> AsyncIterator[TelegramConnector]:
    telegram = TelegramConnector(settings(peer.url))
    await telegram.start()
    yield telegram
    await telegram.stop()


class TestTelegramContract(SignedWebhookContract):
    carries_lone_surrogates = True
    name = "telegram"

    def signed_request(self, *, text: str, provider_message_id: str) -> WebhookRequest:
        # Telegram message ids are integers: the contract's id is mapped onto one, stably.
        message_id = zlib.crc32(provider_message_id.encode()) % 1_000_000
        return authenticated(update(message=message(message_id, text=text)))

    def without_signature(self, request: WebhookRequest) -> WebhookRequest:
        headers = {k: v for k, v in request.headers.items() if not k.startswith("x-telegram")}
        return dataclasses.replace(request, headers=headers)

    def with_wrong_signature(self, request: WebhookRequest) -> WebhookRequest:
        headers = dict(request.headers) | {"x-telegram-bot-api-secret-token": "guessed"}
        return dataclasses.replace(request, headers=headers)

    def outbound(self) -> OutboundMessage:
        return outbound()

    async def unreachable_connector(self) -> TelegramConnector:
        telegram = TelegramConnector(settings(closed_port()))
        await telegram.start()
        return telegram

    def test_tampered_body_is_refused(self, connector: TelegramConnector) -> None:
        """Telegram does not sign bodies: the secret token authenticates the sender, TLS the
        body. So a tampered body is refused only without the secret, and with it accepted as
        it is (this documents the scheme rather than pretending it signs)."""
        request = self.signed_request(text="original", provider_message_id="tamper-1")
        tampered = dataclasses.replace(request, body=request.body.replace(b"original", b"other"))
        with pytest.raises(InvalidSignature):
            connector.handle_webhook(self.with_wrong_signature(tampered))
        (item,) = connector.handle_webhook(tampered).interactions
        assert item.text == "other"


# -- inbound -------------------------------------------------------------------------------


def test_secret_token_statuses(connector: TelegramConnector) -> None:
    body = update(message=message(1, text="hi"))
    with pytest.raises(InvalidSignature) as missing:
        connector.handle_webhook(authenticated(body, secret=None))
    assert missing.value.status == 401
    with pytest.raises(InvalidSignature) as wrong:
        connector.handle_webhook(authenticated(body, secret=SECRET + "x"))
    assert wrong.value.status == 403


def test_private_text_message(connector: TelegramConnector) -> None:
    outcome = connector.handle_webhook(authenticated(update(message=message(42, text="/start"))))
    (item,) = outcome.interactions
    assert item.channel == "telegram"
    assert item.address == f"telegram:{USER}"
    assert item.provider_message_id == f"{USER}:42"
    assert item.text == "/start"
    assert item.contact_name == "Ada Lovelace"
    assert item.occurred_at == datetime.fromtimestamp(DATE, UTC)
    assert item.metadata == {"update_id": 873650001, "username": "ada_l", "language_code": "en"}


def test_a_lone_surrogate_from_the_provider_is_kept_as_a_replacement_character(
    connector: TelegramConnector,
) -> None:
    """The reproducer: a correctly signed update with "\\ud800" in first_name answered 500,
    which Telegram retries for a day. The message is kept, the bad code point replaced."""
    sender = {**ADA, "first_name": "x\ud800", "username": "a\udfffb"}
    raw = json.dumps(update(message=message(43, text="hi \ud83d", **{"from": sender})))
    assert "\\ud800" in raw  # a JSON escape, as Telegram would send it
    (item,) = connector.handle_webhook(authenticated(raw.encode())).interactions
    assert item.contact_name == "x\ufffd Lovelace"
    assert item.text == "hi \ufffd"
    assert item.metadata["username"] == "a\ufffdb"
    assert item.model_dump_json()  # encodable: it can be stored and published


def test_photo_with_caption(connector: TelegramConnector) -> None:
    sizes = [
        {"file_id": "AgACAgIAAx0small", "file_unique_id": "AQADs", "file_size": 1432, "width": 90},
        {
            "file_id": "AgACAgIAAx0large",
            "file_unique_id": "AQADl",
            "file_size": 84210,
            "width": 1280,
        },
    ]
    body = update(message=message(43, photo=sizes, caption="the broken part"))
    (item,) = connector.handle_webhook(authenticated(body)).interactions
    assert item.text == "the broken part"
    (attachment,) = item.attachments
    assert (attachment.name, attachment.content_type, attachment.size, attachment.url) == (
        "photo-AQADl.jpg",
        "image/jpeg",
        84210,
        None,
    )
    assert item.metadata["files"] == [{"kind": "photo", "file_id": "AgACAgIAAx0large"}]


def test_document_and_voice(connector: TelegramConnector) -> None:
    document = {
        "file_name": "invoice.pdf",
        "mime_type": "application/pdf",
        "file_id": "BQACAgIAAxkBdoc",
        "file_unique_id": "AgADdoc",
        "file_size": 20480,
    }
    (doc,) = connector.handle_webhook(
        authenticated(update(message=message(44, document=document)))
    ).interactions
    assert (doc.attachments[0].name, doc.attachments[0].content_type) == (
        "invoice.pdf",
        "application/pdf",
    )
    voice = {
        "duration": 3,
        "mime_type": "audio/ogg",
        "file_id": "AwACAgIAAxkBvoice",
        "file_unique_id": "AgADvoice",
        "file_size": 9000,
    }
    (note,) = connector.handle_webhook(
        authenticated(update(update_id=2, message=message(45, voice=voice)))
    ).interactions
    assert note.attachments[0].content_type == "audio/ogg"
    assert note.text == ""


def test_reply_sets_the_thread(connector: TelegramConnector) -> None:
    original = message(40, text="Your order has shipped")
    body = update(message=message(46, text="Thanks!", reply_to_message=original))
    (item,) = connector.handle_webhook(authenticated(body)).interactions
    assert item.thread_ref == f"{USER}:40"


def test_an_edit_is_recorded_as_its_own_interaction(connector: TelegramConnector) -> None:
    edited = message(42, text="/start please", edit_date=DATE + 60)
    (item,) = connector.handle_webhook(authenticated(update(edited_message=edited))).interactions
    assert item.provider_message_id == f"{USER}:42:edited:{DATE + 60}"
    assert item.metadata["edits"] == f"{USER}:42"
    assert item.text == "/start please"


@pytest.mark.parametrize(
    "body",
    [
        update(
            message=message(
                7, text="hello group", chat={"id": -1001234567890, "title": "Fans", "type": "group"}
            )
        ),
        update(callback_query={"id": "4382bfdwdsb323b2d9", "from": ADA, "data": "yes"}),
        update(message=message(8, pinned_message=message(3, text="x"))),
    ],
    ids=["group", "callback_query", "service_message"],
)
def test_updates_that_are_not_customer_messages(
    connector: TelegramConnector, body: dict[str, Any]
) -> None:
    outcome = connector.handle_webhook(authenticated(body))
    assert (outcome.status, outcome.interactions, outcome.set_aside) == (200, (), ())


@pytest.mark.parametrize(
    "broken",
    [
        {"message_id": 9, "from": ADA, "date": DATE, "text": "no chat"},
        message(10, text="bad date", date="yesterday"),
        {"message_id": 11, "chat": PRIVATE, "date": DATE, "text": "no sender"},
    ],
)
def test_a_malformed_message_is_set_aside(
    connector: TelegramConnector, broken: dict[str, Any]
) -> None:
    body = update(message=broken)
    outcome = connector.handle_webhook(authenticated(body))
    assert outcome.status == 200
    assert not outcome.interactions
    (aside,) = outcome.set_aside
    assert aside.payload == body
    assert aside.reason


# -- sending -------------------------------------------------------------------------------


async def test_send_body_and_result(connector: TelegramConnector, peer: BotApiPeer) -> None:
    result = await connector.send(outbound())
    seen = peer.requests[-1]
    assert seen.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert seen.json == {"chat_id": USER, "text": "Your order has shipped"}
    assert result.status == "sent"
    chat, _, message_id = result.provider_message_id.partition(":")
    assert chat == str(USER)
    assert message_id.isdigit()


async def test_a_reply_to_a_telegram_message(
    connector: TelegramConnector, peer: BotApiPeer
) -> None:
    await connector.send(outbound(in_reply_to=f"{USER}:42"))
    assert peer.requests[-1].json["reply_parameters"] == {
        "message_id": 42,
        "allow_sending_without_reply": True,
    }
    await connector.send(outbound(in_reply_to="<CAF=abc@mail.example.com>"))
    assert "reply_parameters" not in peer.requests[-1].json


async def test_flood_control_is_retryable_after_its_delay(
    connector: TelegramConnector, peer: BotApiPeer
) -> None:
    peer.fail_next(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 5",
            "parameters": {"retry_after": 5},
        },
    )
    with pytest.raises(RetryableError) as caught:
        await connector.send(outbound())
    assert caught.value.retry_after == 5
    assert caught.value.provider_code == "429"


async def test_a_blocked_bot_is_permanent(connector: TelegramConnector, peer: BotApiPeer) -> None:
    peer.blocked.add(USER)
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound())
    assert not isinstance(caught.value, RetryableError)
    assert caught.value.provider_code == "403"
    assert caught.value.reason == "Forbidden: bot was blocked by the user"


async def test_an_empty_text_is_refused_by_telegram(connector: TelegramConnector) -> None:
    with pytest.raises(PermanentError) as caught:
        await connector.send(outbound(text=""))
    assert caught.value.provider_code == "400"


def _everything_said(error: BaseException) -> str:
    """The text of an error and of every error chained to it, as a traceback would show."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        if isinstance(seen, ConnectorError):
            parts.append(seen.reason)
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_the_bot_token_never_appears_in_errors_or_logs(
    peer: BotApiPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    for base_url in (closed_port(), peer.url):
        telegram = TelegramConnector(settings(base_url))
        await telegram.start()
        try:
            if base_url == peer.url:
                await telegram.send(outbound())  # logged by httpx, with its URL
                peer.fail_next(400, {"ok": False, "error_code": 400, "description": BOT_TOKEN})
            with pytest.raises(ConnectorError) as caught:
                await telegram.send(outbound())
            raised.append(caught.value)
        finally:
            await telegram.stop()
    wrong = TelegramConnector(settings(peer.url, bot_token=BOT_TOKEN + "x"))
    await wrong.start()
    try:
        with pytest.raises(PermanentError) as caught:
            await wrong.send(outbound())
        raised.append(caught.value)
    finally:
        await wrong.stop()
    assert isinstance(raised[0], RetryableError)
    assert raised[2].provider_code == "401"
    secret_part = BOT_TOKEN.partition(":")[2]
    for error in raised:
        assert secret_part not in _everything_said(error)
    assert "sendMessage" in caplog.text  # the request log line is there, redacted
    assert secret_part not in caplog.text


def test_metadata_and_send_rate() -> None:
    assert TelegramConnector.channels == ("telegram",)
    assert TelegramConnector(settings("http://127.0.0.1:1")).send_rate == 30.0
    assert TelegramConnector(settings("http://127.0.0.1:1", rate_per_second=1)).send_rate == 1.0
