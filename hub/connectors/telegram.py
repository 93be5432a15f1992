"""Telegram Bot API: a webhook verified by ``X-Telegram-Bot-Api-Secret-Token``, outbound
``sendMessage`` (httpx).

Private chats only: a group or channel is not a conversation with one customer, so its updates
are acknowledged and not recorded. An edit (``edited_message``) is recorded as a new interaction
of its own (``<chat>:<message>:edited:<edit_date>``, ``metadata.edits`` naming the original):
the timeline is a record of what was said, and an edit is something more that was said.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ValidationError

from hub.connectors.base import (
    Connector,
    ConnectorError,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    RetryableError,
    SendResult,
    SetAside,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.fields import Unusable as _Unusable
from hub.connectors.fields import integer_field as _integer
from hub.connectors.fields import object_field as _object
from hub.connectors.fields import optional_text as _optional
from hub.connectors.fields import provider_json
from hub.connectors.settings import TelegramSettings
from hub.events import AddressError, Attachment, Channel, InboundInteraction, normalise_address
from hub.events.inbound import endpoint_of

#: File-carrying message fields and the type to assume when Telegram gives no ``mime_type``.
_FILES: dict[str, str] = {
    "document": "application/octet-stream",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "video": "video/mp4",
    "video_note": "video/mp4",
    "animation": "video/mp4",
    "sticker": "image/webp",
}
#: A Telegram provider message id: ``<chat id>:<message id>`` (message ids are per chat).
_MESSAGE_REF = re.compile(r"(?P<chat>-?\d+):(?P<message>\d+)(?::edited:\d+)?")


class _RedactToken(logging.Filter):
    """httpx logs every request URL, and the Bot API carries the token in its path."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, "<bot-token>"), None
        return True


def _unix_time(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        raise _Unusable(f"date {value!r} is not a Unix time") from None


class TelegramConnector(Connector):
    """One Telegram bot, talking to customers in private chats."""

    name: ClassVar[str] = "telegram"
    channels: ClassVar[tuple[Channel, ...]] = ("telegram",)
    settings_model: ClassVar[type[BaseModel] | None] = TelegramSettings
    webhooks: ClassVar[tuple[str, ...]] = ("",)
    idempotent_sends: ClassVar[bool] = False
    #: Telegram's documented bulk limit is about 30 messages a second (and about one a second
    #: per chat, which the hub's conversational pace keeps to).
    rate_per_second: ClassVar[float] = 30.0

    settings: TelegramSettings
    _client: httpx.AsyncClient | None = None
    _redact: _RedactToken | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        if self.settings.bot_token is not None:
            self._redact = _RedactToken(self.settings.bot_token.get_secret_value())
            logging.getLogger("httpx").addFilter(self._redact)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._redact is not None:
            logging.getLogger("httpx").removeFilter(self._redact)
            self._redact = None

    # -- inbound ---------------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method != "POST":
            raise MalformedPayload(f"Telegram webhooks are POST, not {request.method}")
        given = request.headers.get("x-telegram-bot-api-secret-token")
        if not given:
            raise InvalidSignature("no X-Telegram-Bot-Api-Secret-Token header", status=401)
        expected = self.settings.secret_token
        if expected is None or not hmac.compare_digest(
            given.encode(), expected.get_secret_value().encode()
        ):
            raise InvalidSignature("X-Telegram-Bot-Api-Secret-Token does not match", status=403)
        try:
            update = provider_json(request.body)
        except ValueError:
            raise MalformedPayload("the update is not JSON") from None
        if not isinstance(update, dict):
            raise MalformedPayload("the update is not a JSON object")
        edited = "message" not in update and "edited_message" in update
        message = update.get("edited_message" if edited else "message")
        if message is None:
            return WebhookOutcome()  # callback queries, channel posts...: not customer messages
        try:
            if not isinstance(message, dict):
                raise _Unusable("the message is not an object")
            interaction = self._interaction(update, message, edited=edited)
        except (_Unusable, AddressError) as exc:
            return WebhookOutcome(set_aside=(SetAside(reason=str(exc), payload=update),))
        except ValidationError as exc:
            reason = f"does not fit the inbound contract: {exc.errors()[0]['msg']}"
            return WebhookOutcome(set_aside=(SetAside(reason=reason, payload=update),))
        return WebhookOutcome(interactions=(interaction,) if interaction else ())

    def _interaction(
        self, update: dict[str, Any], message: dict[str, Any], *, edited: bool
    ) -> InboundInteraction | None:
        chat = _object(message, "chat")
        if chat.get("type") != "private":
            return None
        sender = _object(message, "from")
        if sender.get("is_bot") is True:
            return None
        chat_id = _integer(chat, "id")
        message_ref = f"{chat_id}:{_integer(message, 'message_id')}"
        metadata: dict[str, Any] = {"update_id": update.get("update_id")}
        for key in ("username", "language_code"):
            if _optional(sender, key):
                metadata[key] = sender[key]
        provider_message_id = message_ref
        if edited:
            provider_message_id = f"{message_ref}:edited:{_integer(message, 'edit_date')}"
            metadata["edits"] = message_ref
        attachments, files = self._attachments(message)
        if files:
            metadata["files"] = files
        for key in ("location", "contact"):
            if isinstance(message.get(key), dict):
                metadata[key] = message[key]
        text = _optional(message, "text") or _optional(message, "caption") or ""
        if (
            not text
            and not attachments
            and "location" not in metadata
            and "contact" not in metadata
        ):
            return None  # a service message (pinned, payment...), nothing the customer said
        reply = message.get("reply_to_message")
        thread_ref = None
        if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
            thread_ref = f"{chat_id}:{reply['message_id']}"
        name = " ".join(
            filter(None, (_optional(sender, "first_name"), _optional(sender, "last_name")))
        )
        return InboundInteraction(
            channel="telegram",
            direction="inbound",
            address=str(normalise_address(f"telegram:{_integer(sender, 'id')}")),
            provider_message_id=provider_message_id,
            occurred_at=_unix_time(_integer(message, "date")),
            text=text,
            thread_ref=thread_ref,
            contact_name=name[:200] or None,
            attachments=tuple(attachments),
            metadata=metadata,
            # The bot written to (its id, the token's public part): a first contact's endpoint.
            endpoint=endpoint_of("telegram", self._bot_id()),
        )

    def _bot_id(self) -> str | None:
        token = self.settings.bot_token
        bot_id = token.get_secret_value().partition(":")[0] if token is not None else ""
        return bot_id if bot_id.isdigit() else None

    def _attachments(
        self, message: dict[str, Any]
    ) -> tuple[list[Attachment], list[dict[str, str]]]:
        """Attachments (Telegram serves files by ``file_id`` through ``getFile``, so no URL)
        and the file ids to fetch them with."""
        found: list[tuple[str, dict[str, Any], str, str]] = []
        photos = message.get("photo")
        if isinstance(photos, list) and photos and all(isinstance(p, dict) for p in photos):
            # The sizes of one photo, smallest first: the largest is the photo.
            largest = photos[-1]
            unique = _optional(largest, "file_unique_id") or _optional(largest, "file_id")
            found.append(("photo", largest, f"photo-{unique}.jpg", "image/jpeg"))
        for kind, default_type in _FILES.items():
            item = message.get(kind)
            if not isinstance(item, dict):
                continue
            unique = _optional(item, "file_unique_id") or _optional(item, "file_id")
            if kind == "sticker" and item.get("is_animated"):
                default_type = "application/x-tgsticker"
            elif kind == "sticker" and item.get("is_video"):
                default_type = "video/webm"
            found.append(
                (kind, item, _optional(item, "file_name") or f"{kind}-{unique}", default_type)
            )
        attachments, files = [], []
        for kind, item, name, default_type in found:
            file_id = _optional(item, "file_id")
            if file_id is None:
                raise _Unusable(f"{kind} without a file_id")
            size = item.get("file_size")
            attachments.append(
                Attachment(
                    name=name[:255],
                    content_type=_optional(item, "mime_type") or default_type,
                    size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
                )
            )
            files.append({"kind": kind, "file_id": file_id})
        return attachments, files

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._client is None:
            raise RuntimeError("TelegramConnector.send before start()")
        token = self.settings.bot_token
        if token is None:
            raise PermanentError("no bot_token configured")
        if message.channel != "telegram":
            raise PermanentError(f"the telegram connector does not send on {message.channel!r}")
        try:
            address = normalise_address(message.address)
        except AddressError as exc:
            raise PermanentError(exc.reason) from None
        if address.kind != "telegram":
            raise PermanentError(f"telegram needs a telegram: address, not {address.kind}:")
        chat_id = int(address.value)
        body: dict[str, Any] = {"chat_id": chat_id, "text": message.text}
        reply = _MESSAGE_REF.fullmatch(message.in_reply_to or "")
        if reply is not None:
            # Sent anyway should the customer have deleted the message it answers.
            parameters: dict[str, Any] = {
                "message_id": int(reply["message"]),
                "allow_sending_without_reply": True,
            }
            if int(reply["chat"]) != chat_id:
                parameters["chat_id"] = int(reply["chat"])
            body["reply_parameters"] = parameters
        url = f"{self.settings.api_base_url.rstrip('/')}/bot{token.get_secret_value()}/sendMessage"
        # httpx errors name the URL, which holds the token: only their type leaves this method,
        # and it is raised outside the except block so it does not carry them as its context.
        failure: ConnectorError | None = None
        try:
            response = await self._client.post(url, json=body)
        except httpx.TransportError as exc:
            failure = RetryableError(f"Telegram Bot API unreachable: {type(exc).__name__}")
        except httpx.InvalidURL:
            failure = PermanentError("the Bot API URL is invalid (check api_base_url)")
        if failure is not None:
            raise failure
        try:
            answer = response.json()
        except ValueError:
            answer = None
        result = answer.get("result") if isinstance(answer, dict) else None
        if response.is_success and isinstance(result, dict) and answer.get("ok") is True:
            chat = result.get("chat")
            sent_chat = chat.get("id", chat_id) if isinstance(chat, dict) else chat_id
            sent_id = result.get("message_id")
            if not isinstance(sent_id, int):
                raise PermanentError("Telegram accepted the message but gave no message_id")
            return SendResult(provider_message_id=f"{sent_chat}:{sent_id}", status="sent")
        raise _bot_api_error(response, answer, token.get_secret_value())


def _bot_api_error(response: httpx.Response, answer: Any, token: str) -> ConnectorError:
    """A Bot API error answer (``{"ok": false, "error_code", "description"}``) as the hub's
    typed failure."""
    status = response.status_code
    if not isinstance(answer, dict):
        answer = {}
    code = answer.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else status
    reason = (
        _optional(answer, "description")
        or _optional(answer, "error")
        or f"Telegram Bot API answered HTTP {status}"
    ).replace(token, "<bot-token>")
    if code == 429 or status == 429 or status >= 500:
        return RetryableError(
            reason, provider_code=str(code), retry_after=_retry_after(response, answer)
        )
    return PermanentError(reason, provider_code=str(code))


def _retry_after(response: httpx.Response, answer: dict[str, Any]) -> float | None:
    parameters = answer.get("parameters")
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
