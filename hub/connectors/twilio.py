"""SMS and MMS through Twilio: incoming-message and status-callback webhooks, outbound through
the twilio library's REST client.

Twilio signs every webhook (``X-Twilio-Signature``) over the URL it called and the form fields it
posted; both hooks verify that before anything is read. Twilio's Messages API takes no
idempotency key, so a send whose answer was lost is reconciled from its status callback, whose URL
carries the hub's ``message_id``.
"""

from __future__ import annotations

import hmac
import mimetypes
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

from aiohttp import ClientError, ClientSession, ClientTimeout, TraceConfig, TraceRequestEndParams
from pydantic import BaseModel, JsonValue, ValidationError
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.request_validator import (  # type: ignore[import-untyped]
    HMAC_SHA1,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.rest import Client  # type: ignore[import-untyped]

from hub.connectors.base import (
    Connector,
    ConnectorContext,
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
from hub.connectors.settings import TwilioSettings
from hub.events import Attachment, Channel, ConsentSignal, DeliveryStatus, InboundInteraction
from hub.events.addresses import AddressError, normalise_address
from hub.events.common import scrub_text

#: Twilio's reply to a messaging webhook: TwiML that sends nothing back.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio's standard keywords; it acts on them only when they are the whole (trimmed) body.
_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_OPT_IN = frozenset({"START", "UNSTOP", "YES"})
_HELP = frozenset({"HELP", "INFO"})

_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": "accepted",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    # Some recipients of a group message got it, some did not: claim no more than "sent".
    "partially_delivered": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "read": "read",
    "canceled": "failed",
    "receiving": "received",
    "received": "received",
}

#: Error codes of a status callback that mean the number must not be messaged again.
_REVOKING_ERRORS = frozenset({"21610"})  # the recipient replied STOP to this sender

_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+")
_MAX_FIELDS = 1000
_MAX_MEDIA = 100

# Twilio's exceptions do not keep the response headers, so the Retry-After of the last response
# a send received is kept here (per task: each send sees its own).
_retry_after: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


async def _remember_retry_after(
    session: ClientSession, context: SimpleNamespace, params: TraceRequestEndParams
) -> None:
    _retry_after.set(params.response.headers.get("Retry-After"))


def _seconds(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Form(dict[str, list[str]]):
    """Form fields with every value of a repeated name, as RequestValidator reads a MultiDict."""

    def getall(self, name: str) -> list[str]:
        return self[name]


class TwilioConnector(Connector):
    """Twilio Programmable Messaging: SMS and MMS on one number or Messaging Service."""

    name: ClassVar[str] = "twilio"
    channels: ClassVar[tuple[Channel, ...]] = ("sms",)
    settings_model: ClassVar[type[BaseModel] | None] = TwilioSettings
    webhooks: ClassVar[tuple[str, ...]] = ("sms", "status")
    status_hook: ClassVar[str | None] = "status"
    # The Messages API has no idempotency key (I-Twilio-Idempotency-Token is a header Twilio
    # puts on the webhooks it sends, not one its API honours).
    idempotent_sends: ClassVar[bool] = False
    # A US long code sends one message segment per second.
    rate_per_second: ClassVar[float] = 1.0

    settings: TwilioSettings

    def __init__(self, settings: TwilioSettings, context: ConnectorContext | None = None) -> None:
        super().__init__(settings, context)
        self._http: Any = None
        self._client: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if not (self.settings.account_sid and self.settings.auth_token):
            raise PermanentError("twilio needs account_sid and auth_token")
        trace = TraceConfig()
        trace.on_request_end.append(_remember_retry_after)
        http = AsyncTwilioHttpClient(pool_connections=False)
        # The library ignores its own timeout argument; the session's timeout is what holds.
        http.session = ClientSession(
            timeout=ClientTimeout(total=self.settings.timeout_seconds), trace_configs=[trace]
        )
        client = Client(
            username=self.settings.account_sid,
            password=self.settings.auth_token.get_secret_value(),
            account_sid=self.settings.account_sid,
            http_client=http,
        )
        # The library reads TWILIO_EDGE / TWILIO_REGION from the environment and would rewrite
        # the host of api_base_url with them; the settings are the only configuration here.
        client.edge = None
        client.region = None
        client.api.base_url = self.settings.api_base_url.rstrip("/")
        self._http, self._client = http, client

    async def stop(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    def problems(self) -> list[str]:
        found = []
        if not self.settings.enabled:
            found.append(
                "twilio needs account_sid, auth_token and from_number or messaging_service_sid"
            )
        if self._client is None:
            found.append("twilio is not started")
        return found

    # -- webhooks ----------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.hook not in self.webhooks:
            raise MalformedPayload(f"twilio has no webhook {request.hook!r}")
        fields = self._verified_fields(request)
        if fields.get("AccountSid") != self.settings.account_sid:
            raise InvalidSignature("AccountSid is not the configured account", status=403)
        if request.hook == "sms":
            return self._incoming(fields)
        return self._status(request, fields)

    def _verified_fields(self, request: WebhookRequest) -> dict[str, str]:
        """The request's fields, once its signature verifies (form body of a POST, query of a
        GET; Twilio signs the URL and, for a POST, the sorted form fields)."""
        is_get = request.method.upper() == "GET"
        if is_get:
            source = urlsplit(request.url).query
        else:
            source = request.body.decode("utf-8", errors="replace")
        try:
            pairs = parse_qsl(source, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
        except ValueError as exc:
            raise MalformedPayload(f"not a form body: {exc}") from None
        # The fields of a GET are part of the signed URL already.
        signed = [] if is_get else pairs

        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise InvalidSignature("no X-Twilio-Signature header", status=401)
        signing = request.headers.get("x-twilio-webhooks-signature-settings")
        if signing:
            # A Webhook Rule signs with a SharedKey (and maybe SHA-256) instead of the token.
            if self.settings.webhook_signing_secret is None:
                raise InvalidSignature(
                    "signed with a Webhooks SharedKey, but webhook_signing_secret is not set",
                    status=403,
                )
            secret = self.settings.webhook_signing_secret.get_secret_value()
            algorithm = get_signature_algorithm(signing)
        else:
            if self.settings.auth_token is None:
                raise InvalidSignature("twilio has no auth_token to verify with", status=403)
            secret = self.settings.auth_token.get_secret_value()
            algorithm = HMAC_SHA1
        form = _Form()
        for key, value in signed:
            form.setdefault(key, []).append(value)
        validator = RequestValidator(secret)
        # The URL as the hub builds it first: one HMAC, where validate() always computes two
        # (the URL with and without its default port, as Twilio's signing of either varies).
        # Only a request signed for neither the one nor the others is refused. The first
        # comparison is the standard library's constant-time one (the library's loops in Python).
        try:
            computed = validator.compute_signature(request.url, form, algorithm)
            exact = hmac.compare_digest(computed.encode(), signature.encode())
        except ValueError:  # an algorithm this twilio release does not know: validate() says
            exact = False
        if not exact and not validator.validate(request.url, form, signature, algorithm):
            raise InvalidSignature("X-Twilio-Signature does not match", status=403)
        # A repeated name keeps its first value: Twilio sends none for messaging.
        fields: dict[str, str] = {}
        for key, value in pairs:
            # Signed and sent, so kept: a NUL (%00) becomes U+FFFD rather than a lost message.
            fields.setdefault(key, scrub_text(value))
        return fields

    def _incoming(self, fields: dict[str, str]) -> WebhookOutcome:
        sid, sender = fields.get("MessageSid"), fields.get("From")
        if not sid or not sender:
            raise MalformedPayload("an incoming message needs MessageSid and From")
        text = fields.get("Body", "")
        try:
            address = str(normalise_address(f"phone:{sender}"))
        except AddressError as exc:
            # A short code or an alphanumeric sender: no phone identity to file it under.
            return _set_aside(f"sender {sender!r} is not a phone number: {exc.reason}", fields)

        metadata: dict[str, JsonValue] = {}
        for name, key in (
            ("To", "to"),
            ("MessagingServiceSid", "messaging_service_sid"),
            ("NumSegments", "num_segments"),
            ("FromCountry", "from_country"),
            ("FromState", "from_state"),
            ("FromCity", "from_city"),
            ("FromZip", "from_zip"),
            ("OptOutType", "opt_out_type"),
        ):
            if fields.get(name):
                metadata[key] = fields[name]
        consent = None
        keyword = _keyword(text, fields.get("OptOutType"))
        if keyword is not None:
            kind, word = keyword
            metadata["keyword"] = kind
            if kind != "HELP":
                consent = ConsentSignal(granted=kind == "START", reason=f"sms_keyword:{word}")
        try:
            interaction = InboundInteraction(
                channel="sms",
                direction="inbound",
                address=address,
                provider_message_id=sid,
                # Twilio's incoming-message webhook carries no time: it is sent as it arrives.
                occurred_at=datetime.now(UTC),
                text=text,
                contact_name=fields.get("ProfileName") or None,
                attachments=_attachments(fields),
                metadata=metadata,
                consent=consent,
            )
        except ValidationError as exc:
            return _set_aside(f"not a valid interaction: {exc.errors()[0]['msg']}", fields)
        return WebhookOutcome(
            interactions=(interaction,), body=EMPTY_TWIML, media_type="application/xml"
        )

    def _status(self, request: WebhookRequest, fields: dict[str, str]) -> WebhookOutcome:
        sid, raw_status = fields.get("MessageSid"), fields.get("MessageStatus")
        if not sid or not raw_status:
            raise MalformedPayload("a status callback needs MessageSid and MessageStatus")
        status = _STATUSES.get(raw_status.lower())
        if status is None:
            return _set_aside(f"unknown MessageStatus {raw_status!r}", fields)
        error_code = fields.get("ErrorCode") or None
        report = DeliveryReport(
            channel="sms",
            provider_message_id=sid,
            status=status,
            # Status callbacks carry no time either (RawDlrDoneDate is the carrier's, to the
            # minute, and only for delivered messages).
            occurred_at=datetime.now(UTC),
            message_id=_message_id(request.url),
            error_code=error_code,
            error_message=fields.get("ErrorMessage") or None,
            revoke_consent=error_code in _REVOKING_ERRORS,
        )
        return WebhookOutcome(reports=(report,), body=EMPTY_TWIML, media_type="application/xml")

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._client is None:
            raise RetryableError("twilio is not started")
        if message.channel not in self.channels:
            raise PermanentError(f"twilio does not send on {message.channel!r}")
        try:
            recipient = normalise_address(message.address)
        except AddressError as exc:
            raise PermanentError(f"not a phone address: {exc.reason}") from None
        if recipient.kind != "phone":
            raise PermanentError(f"twilio sends SMS to phone addresses, not {recipient.kind!r}")

        arguments: dict[str, Any] = {"to": recipient.value, "body": message.text}
        if self.settings.messaging_service_sid:
            arguments["messaging_service_sid"] = self.settings.messaging_service_sid
        elif self.settings.from_number:
            arguments["from_"] = self.settings.from_number
        else:
            raise PermanentError("twilio has neither from_number nor messaging_service_sid")
        if message.status_callback_url:
            arguments["status_callback"] = message.status_callback_url

        _retry_after.set(None)
        try:
            created = await self._client.messages.create_async(**arguments)
        except TwilioRestException as exc:
            raise _refusal(exc.status, str(exc.msg), exc.code) from None
        except TwilioServiceException as exc:
            reason = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
            raise _refusal(exc.status, reason, exc.code) from None
        except (ClientError, TimeoutError, OSError) as exc:
            raise RetryableError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise RetryableError(f"Twilio answered with an unreadable body: {exc}") from None
        if not created.sid:
            raise RetryableError("Twilio answered without a message sid")
        status = _STATUSES.get(str(created.status or "").lower(), "accepted")
        return SendResult(provider_message_id=created.sid, status=status)


def _refusal(status: int, reason: str, code: object) -> RetryableError | PermanentError:
    provider_code = str(code) if code is not None else None
    reason = reason or f"Twilio answered {status}"
    if status == 429 or status >= 500:
        return RetryableError(
            reason, provider_code=provider_code, retry_after=_seconds(_retry_after.get())
        )
    return PermanentError(reason, provider_code=provider_code)


def _keyword(text: str, opt_out_type: str | None) -> tuple[str, str] | None:
    """``(kind, word)`` of a keyword message: kind STOP, START or HELP, word as sent."""
    word = text.strip().upper()
    if word in _OPT_OUT:
        return "STOP", word
    if word in _OPT_IN:
        return "START", word
    if word in _HELP:
        return "HELP", word
    # Advanced Opt-Out (Messaging Services) has custom keywords and tells us which kind it saw.
    kind = (opt_out_type or "").upper()
    if kind in ("STOP", "START", "HELP"):
        return kind, word or kind
    return None


def _attachments(fields: dict[str, str]) -> tuple[Attachment, ...]:
    try:
        count = int(fields.get("NumMedia") or 0)
    except ValueError:
        raise MalformedPayload(f"NumMedia is not a number: {fields['NumMedia']!r}") from None
    found = []
    for index in range(min(max(count, 0), _MAX_MEDIA)):
        url = fields.get(f"MediaUrl{index}")
        if not url:
            continue
        content_type = fields.get(f"MediaContentType{index}", "")
        if not _CONTENT_TYPE.match(content_type):
            content_type = "application/octet-stream"
        # Twilio's media URL ends in the media SID (ME...); the type gives the extension.
        stem = urlsplit(url).path.rstrip("/").rpartition("/")[2] or f"media{index}"
        extension = mimetypes.guess_extension(content_type.partition(";")[0]) or ""
        name = stem[: 255 - len(extension)] + extension
        # Twilio does not say how large a file is; 0 means unknown.
        found.append(Attachment(name=name, content_type=content_type, size=0, url=url))
    return tuple(found)


def _message_id(url: str) -> UUID | None:
    """The hub's message id, from the ``message_id`` query parameter of the (signed) URL."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "message_id":
            try:
                return UUID(value)
            except ValueError:
                return None
    return None


def _set_aside(reason: str, fields: dict[str, str]) -> WebhookOutcome:
    return WebhookOutcome(
        set_aside=(SetAside(reason=reason, payload=dict(fields)),),
        body=EMPTY_TWIML,
        media_type="application/xml",
    )
