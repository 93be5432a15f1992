"""Meta's messaging platforms: WhatsApp Cloud API, Messenger and Instagram messaging. One webhook
(``X-Hub-Signature-256`` over the raw body) carries the messages and delivery statuses of all
three; outbound goes through the Graph API's ``/{sender}/messages`` (httpx).
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from hub.connectors.base import (
    Connector,
    ConnectorError,
    DeliveryReport,
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
from hub.connectors.fields import object_field as _object
from hub.connectors.fields import optional_text as _optional
from hub.connectors.fields import provider_json
from hub.connectors.fields import text_field as _text
from hub.connectors.settings import MetaSettings
from hub.events import (
    AddressError,
    Attachment,
    Channel,
    DeliveryStatus,
    InboundInteraction,
    normalise_address,
)

#: Graph error codes worth retrying: temporary failures (1, 2) and rate limits (app, user,
#: page, Instagram/Messenger, WhatsApp throughput, spam and pair rate limits).
_RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131048, 131056})
#: WhatsApp: more than 24 hours since the customer last wrote (re-engagement message).
_WHATSAPP_WINDOW_CODE = 131047
#: Messenger (2018278) and Instagram (2534022): code 10 "sent outside of allowed window".
_WINDOW_SUBCODES = frozenset({2018278, 2534022})

_WHATSAPP_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
_WHATSAPP_MEDIA = frozenset({"image", "document", "audio", "video", "sticker"})
#: Put in the ``metadata`` of Messenger sends: Meta echoes it back, so the hub can tell the
#: echoes of its own sends (already recorded) from messages the Page sent elsewhere.
_ECHO_MARK = "interaction-hub:"


Parsed = InboundInteraction | DeliveryReport


@dataclass
class _Collected:
    interactions: list[InboundInteraction] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)

    def attempt(
        self, what: str, item: dict[str, Any], parse: Callable[..., list[Parsed]], *args: Any
    ) -> None:
        """Parse one item; one that does not parse is set aside and its siblings go on."""
        try:
            parsed = parse(*args)
        except (_Unusable, AddressError) as exc:
            self.set_aside.append(SetAside(reason=f"{what}: {exc}", payload=item))
            return
        except ValidationError as exc:
            reason = f"{what} does not fit the inbound contract: {exc.errors()[0]['msg']}"
            self.set_aside.append(SetAside(reason=reason, payload=item))
            return
        for one in parsed:
            if isinstance(one, InboundInteraction):
                self.interactions.append(one)
            else:
                self.reports.append(one)

    def items(self, container: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        """The objects of list ``key``; what is not an object is set aside."""
        values = container.get(key, [])
        if not isinstance(values, list):
            self.set_aside.append(SetAside(reason=f"{key!r} is not a list", payload=container))
            return
        for value in values:
            if isinstance(value, dict):
                yield value
            else:
                self.set_aside.append(
                    SetAside(reason=f"{key!r} item is not an object", payload=value)
                )


def _unix_time(value: Any, *, millis: bool = False) -> datetime:
    """WhatsApp sends seconds as a string, Messenger and Instagram milliseconds as a number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Unusable(f"timestamp {value!r} is not a Unix time")
    try:
        number = int(value)
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (ValueError, OverflowError, OSError):
        raise _Unusable(f"timestamp {value!r} is not a Unix time") from None


def _hub_message_id(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


class MetaConnector(Connector):
    """WhatsApp, Messenger and Instagram through one Meta app."""

    name: ClassVar[str] = "meta"
    channels: ClassVar[tuple[Channel, ...]] = ("whatsapp", "messenger", "instagram")
    settings_model: ClassVar[type[BaseModel] | None] = MetaSettings
    webhooks: ClassVar[tuple[str, ...]] = ("",)
    status_hook: ClassVar[str | None] = None  # statuses come to the same webhook
    idempotent_sends: ClassVar[bool] = False
    rate_per_second: ClassVar[float] = 20.0
    service_windows: ClassVar[dict[str, timedelta]] = {
        "whatsapp": timedelta(hours=24),
        "messenger": timedelta(hours=24),
        "instagram": timedelta(hours=24),
    }

    settings: MetaSettings
    _client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        token = self.settings.access_token
        base = self.settings.graph_base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=f"{base}/{self.settings.graph_api_version}",
            headers={"Authorization": f"Bearer {token.get_secret_value()}"} if token else {},
            timeout=self.settings.timeout_seconds,
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- inbound ---------------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method == "GET":
            return self._challenge(request)
        if request.method != "POST":
            raise MalformedPayload(f"Meta webhooks are GET or POST, not {request.method}")
        self._verify_signature(request)
        try:
            body = provider_json(request.body)
        except ValueError:
            raise MalformedPayload("the webhook body is not JSON") from None
        if not isinstance(body, dict):
            raise MalformedPayload("the webhook body is not a JSON object")
        out = _Collected()
        kind = body.get("object")
        if kind == "whatsapp_business_account":
            self._whatsapp(body, out)
        elif kind == "page":
            self._messaging("messenger", body, out)
        elif kind == "instagram":
            self._messaging("instagram", body, out)
        # Other objects (user, permissions...) are not messages: acknowledged, nothing kept.
        return WebhookOutcome(
            interactions=tuple(out.interactions),
            reports=tuple(out.reports),
            set_aside=tuple(out.set_aside),
        )

    def _challenge(self, request: WebhookRequest) -> WebhookOutcome:
        mode = request.query.get("hub.mode")
        token = request.query.get("hub.verify_token")
        challenge = request.query.get("hub.challenge")
        if mode != "subscribe" or token is None or challenge is None:
            raise MalformedPayload("not a subscription challenge (hub.mode=subscribe...)")
        expected = self.settings.verify_token
        if expected is None or not hmac.compare_digest(
            token.encode(), expected.get_secret_value().encode()
        ):
            raise InvalidSignature("hub.verify_token does not match", status=403)
        return WebhookOutcome(status=200, body=challenge.encode(), media_type="text/plain")

    def _verify_signature(self, request: WebhookRequest) -> None:
        header = request.headers.get("x-hub-signature-256")
        if not header:
            raise InvalidSignature("no X-Hub-Signature-256 header", status=401)
        secret = self.settings.app_secret
        if secret is None:
            raise InvalidSignature("no app_secret configured to verify with", status=403)
        expected = hmac.new(secret.get_secret_value().encode(), request.body, hashlib.sha256)
        if not hmac.compare_digest(header.encode(), f"sha256={expected.hexdigest()}".encode()):
            raise InvalidSignature("X-Hub-Signature-256 does not verify", status=403)

    def _whatsapp(self, body: dict[str, Any], out: _Collected) -> None:
        for entry in out.items(body, "entry"):
            for change in out.items(entry, "changes"):
                value = change.get("value")
                if change.get("field") != "messages":
                    continue
                if not isinstance(value, dict):
                    out.set_aside.append(SetAside(reason="change without a value", payload=change))
                    continue
                phone_number_id = _optional(value.get("metadata"), "phone_number_id")
                names = {
                    contact.get("wa_id"): _optional(contact.get("profile"), "name")
                    for contact in out.items(value, "contacts")
                }
                for item in out.items(value, "messages"):
                    out.attempt(
                        "WhatsApp message",
                        item,
                        self._whatsapp_message,
                        item,
                        names,
                        phone_number_id,
                    )
                for item in out.items(value, "statuses"):
                    out.attempt("WhatsApp status", item, self._whatsapp_status, item)

    def _whatsapp_message(
        self, item: dict[str, Any], names: dict[Any, str | None], phone_number_id: str | None
    ) -> list[Parsed]:
        message_id = _text(item, "id")
        sender = _text(item, "from")
        if not sender.isdigit():
            raise _Unusable(f"'from' {sender!r} is not a WhatsApp id (digits)")
        occurred_at = _unix_time(item.get("timestamp"))
        kind = _optional(item, "type") or "unknown"
        found = item.get(kind)
        content: dict[str, Any] = found if isinstance(found, dict) else {}
        metadata: dict[str, Any] = {"type": kind}
        if phone_number_id:
            metadata["phone_number_id"] = phone_number_id
        text, thread_ref, attachments = "", None, []
        if kind == "text":
            text = _text(content, "body")
        elif kind in _WHATSAPP_MEDIA:
            media_id = _text(content, "id")
            attachments.append(
                Attachment(
                    name=(_optional(content, "filename") or f"{kind}-{media_id}")[:255],
                    content_type=_optional(content, "mime_type") or "application/octet-stream",
                    size=0,
                )
            )
            # WhatsApp serves media by id (GET /{media-id} with the token), not by URL.
            metadata["media_id"] = media_id
            text = _optional(content, "caption") or ""
        elif kind == "location":
            metadata["location"] = {
                k: content[k] for k in ("latitude", "longitude", "name", "address") if k in content
            }
            text = ", ".join(
                filter(None, (_optional(content, "name"), _optional(content, "address")))
            )
        elif kind == "button":
            text = _optional(content, "text") or ""
            metadata["button_payload"] = _optional(content, "payload")
        elif kind == "interactive":
            # {"type": "button_reply", "button_reply": {"id", "title"}} (or list_reply)
            reply = content.get(_optional(content, "type") or "reply")
            text = _optional(reply, "title") or ""
            metadata["reply_id"] = _optional(reply, "id")
        elif kind == "reaction":
            text = _optional(content, "emoji") or ""  # empty: the reaction was removed
            thread_ref = _optional(content, "message_id")
        context = item.get("context")
        if isinstance(context, dict):
            thread_ref = _optional(context, "id") or thread_ref
            if context.get("forwarded"):
                metadata["forwarded"] = True
        name = names.get(sender)
        return [
            InboundInteraction(
                channel="whatsapp",
                direction="inbound",
                address=str(normalise_address(f"phone:+{sender}")),
                provider_message_id=message_id,
                occurred_at=occurred_at,
                text=text,
                thread_ref=thread_ref,
                contact_name=name[:200] if name else None,
                attachments=tuple(attachments),
                metadata=metadata,
            )
        ]

    def _whatsapp_status(self, item: dict[str, Any]) -> list[Parsed]:
        raw_status = item.get("status")
        status = _WHATSAPP_STATUSES.get(raw_status) if isinstance(raw_status, str) else None
        if status is None:
            return []  # "deleted", "warning"...: not a delivery state the hub tracks
        error_code = error_message = None
        errors = item.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            error_code = str(first["code"]) if "code" in first else None
            error_message = _optional(first, "message") or _optional(first, "title")
            details = _optional(first.get("error_data"), "details")
            if details and details != error_message:
                error_message = f"{error_message}: {details}" if error_message else details
        return [
            DeliveryReport(
                channel="whatsapp",
                provider_message_id=_text(item, "id"),
                status=status,
                occurred_at=_unix_time(item.get("timestamp")),
                # The hub's id, sent as biz_opaque_callback_data: reconciles a lost send result.
                message_id=_hub_message_id(item.get("biz_opaque_callback_data")),
                error_code=error_code,
                error_message=error_message,
            )
        ]

    def _messaging(self, channel: Channel, body: dict[str, Any], out: _Collected) -> None:
        for entry in out.items(body, "entry"):
            for event in out.items(entry, "messaging"):
                out.attempt(f"{channel} event", event, self._messaging_event, channel, event)

    def _messaging_event(self, channel: Channel, event: dict[str, Any]) -> list[Parsed]:
        if "message" in event:
            return self._messaging_message(channel, event)
        if "delivery" in event:
            delivery = _object(event, "delivery")
            mids = delivery.get("mids")
            if not isinstance(mids, list):
                raise _Unusable("delivery without a list of 'mids'")
            at = _unix_time(delivery.get("watermark") or event.get("timestamp"), millis=True)
            return [
                DeliveryReport(
                    channel=channel, provider_message_id=mid, status="delivered", occurred_at=at
                )
                for mid in mids
                if isinstance(mid, str) and mid
            ]
        if "read" in event:
            mid = _optional(event.get("read"), "mid")
            if mid is None:
                return []  # Messenger reads carry only a watermark, no message id to update
            at = _unix_time(event.get("timestamp"), millis=True)
            return [
                DeliveryReport(
                    channel=channel, provider_message_id=mid, status="read", occurred_at=at
                )
            ]
        return []  # postbacks, reactions, referrals, optins: not messages

    def _messaging_message(self, channel: Channel, event: dict[str, Any]) -> list[Parsed]:
        message = _object(event, "message")
        if message.get("is_deleted"):
            return []  # the customer unsent it; the hub keeps what was said
        mid = _text(message, "mid")
        sender = _text(_object(event, "sender"), "id")
        recipient = _text(_object(event, "recipient"), "id")
        occurred_at = _unix_time(event.get("timestamp"), millis=True)
        echo = message.get("is_echo") is True
        if echo and (_optional(message, "metadata") or "").startswith(_ECHO_MARK):
            return []  # the hub's own send: already recorded by the dispatcher
        # An echo is the business speaking (a reply from the Page inbox): recorded outbound.
        customer, business = (recipient, sender) if echo else (sender, recipient)
        metadata: dict[str, Any] = {"business_id": business}
        if echo and "app_id" in message:
            metadata["app_id"] = message["app_id"]
        quick_reply = _optional(message.get("quick_reply"), "payload")
        if quick_reply:
            metadata["quick_reply_payload"] = quick_reply
        attachments = []
        for number, attachment in enumerate(message.get("attachments") or [], start=1):
            url = (
                _optional(attachment.get("payload"), "url")
                if isinstance(attachment, dict)
                else None
            )
            if url is None or len(url) > 2048:
                continue  # templates, fallbacks without a file
            kind = _optional(attachment, "type") or "file"
            name = urlsplit(url).path.rsplit("/", 1)[-1] or f"{kind}-{number}"
            attachments.append(
                Attachment(
                    name=name[:255],
                    content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                    size=0,
                    url=url,
                )
            )
        return [
            InboundInteraction(
                channel=channel,
                direction="outbound" if echo else "inbound",
                address=str(normalise_address(f"{channel}:{customer}")),
                provider_message_id=mid,
                occurred_at=occurred_at,
                text=_optional(message, "text") or "",
                thread_ref=_optional(message.get("reply_to"), "mid"),
                attachments=tuple(attachments),
                metadata=metadata,
            )
        ]

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.template is not None and message.channel != "whatsapp":
            raise PermanentError("message templates are WhatsApp only")
        if message.channel == "whatsapp":
            sender, body = self._whatsapp_body(message)
        elif message.channel == "messenger":
            sender = self.settings.page_id or "me"
            body = {
                "recipient": {"id": self._recipient(message, "messenger")},
                "messaging_type": "RESPONSE",
                "message": {"text": message.text, "metadata": f"{_ECHO_MARK}{message.message_id}"},
            }
        elif message.channel == "instagram":
            sender = self.settings.instagram_account_id or "me"
            body = {
                "recipient": {"id": self._recipient(message, "instagram")},
                "message": {"text": message.text},
            }
        else:
            raise PermanentError(f"the meta connector does not send on {message.channel!r}")
        answer = await self._post(message.channel, f"/{sender}/messages", body)
        if message.channel == "whatsapp":
            found = answer.get("messages")
            first = found[0] if isinstance(found, list) and found else None
            provider_id = _optional(first, "id")
        else:
            provider_id = _optional(answer, "message_id")
        if provider_id is None:
            raise PermanentError("the Graph API accepted the message but gave no message id")
        return SendResult(provider_message_id=provider_id, status="accepted")

    def _recipient(self, message: OutboundMessage, kind: str) -> str:
        try:
            address = normalise_address(message.address)
        except AddressError as exc:
            raise PermanentError(exc.reason) from None
        if address.kind != kind:
            raise PermanentError(f"{message.channel} needs a {kind}: address, not {address.kind}:")
        return address.value

    def _whatsapp_body(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        sender = self.settings.whatsapp_phone_number_id
        if not sender:
            raise PermanentError("no whatsapp_phone_number_id configured: WhatsApp cannot send")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": self._recipient(message, "phone").lstrip("+"),
            # Echoed back on every status: matches a report to a send whose result was lost.
            "biz_opaque_callback_data": str(message.message_id),
        }
        if message.template is not None:
            template: dict[str, Any] = {
                "name": message.template.name,
                "language": {"code": message.template.language},
            }
            if message.template.parameters:
                parameters = [{"type": "text", "text": p} for p in message.template.parameters]
                template["components"] = [{"type": "body", "parameters": parameters}]
            body |= {"type": "template", "template": template}
        else:
            body |= {"type": "text", "text": {"preview_url": False, "body": message.text}}
        if message.in_reply_to and message.in_reply_to.startswith("wamid."):
            body["context"] = {"message_id": message.in_reply_to}
        return sender, body

    async def _post(self, channel: Channel, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            raise RuntimeError("MetaConnector.send before start()")
        if self.settings.access_token is None:
            raise PermanentError("no access_token configured")
        try:
            response = await self._client.post(path, json=body)
        except httpx.TransportError as exc:
            raise RetryableError(f"Graph API unreachable: {type(exc).__name__}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        raise _graph_error(channel, response, answer)


def _graph_error(channel: Channel, response: httpx.Response, answer: Any) -> ConnectorError:
    """A Graph API error answer as the hub's typed failure."""
    status = response.status_code
    error = answer.get("error") if isinstance(answer, dict) else None
    code = subcode = None
    if isinstance(error, dict):
        code, subcode = error.get("code"), error.get("error_subcode")
        reason = _optional(error, "message") or f"Graph API answered HTTP {status}"
        details = _optional(error.get("error_data"), "details")
        if details:
            reason = f"{reason} ({details})"
    else:
        reason = error if isinstance(error, str) and error else f"Graph API answered HTTP {status}"
    provider_code = str(code) if isinstance(code, int) else None
    if (channel == "whatsapp" and code == _WHATSAPP_WINDOW_CODE) or (
        channel != "whatsapp" and code == 10 and subcode in _WINDOW_SUBCODES
    ):
        hint = "; only an approved template can reopen it" if channel == "whatsapp" else ""
        return PermanentError(
            f"outside the 24-hour customer service window{hint} ({reason})",
            provider_code=provider_code,
        )
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return RetryableError(
            reason, provider_code=provider_code or str(status), retry_after=_retry_after(response)
        )
    return PermanentError(reason, provider_code=provider_code or str(status))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
