"""What Twilio's verified webhooks say: an incoming message (with its STOP/START/HELP keyword
as a consent signal, and its media) as an interaction, a status callback as a delivery
report. Twilio is answered with empty TwiML either way."""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

from pydantic import JsonValue, ValidationError

from hub.connectors.base import DeliveryReport, MalformedPayload, SetAside, WebhookOutcome
from hub.events import Attachment, ConsentSignal, DeliveryStatus, InboundInteraction
from hub.events.addresses import AddressError, normalise_address
from hub.events.inbound import endpoint_of

#: Twilio's reply to a messaging webhook: TwiML that sends nothing back.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

#: Twilio's message statuses (of a callback, or of a send's answer) as the hub's.
STATUSES: dict[str, DeliveryStatus] = {
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

# Twilio's standard keywords; it acts on them only when they are the whole (trimmed) body.
_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_OPT_IN = frozenset({"START", "UNSTOP", "YES"})
_HELP = frozenset({"HELP", "INFO"})

#: Error codes of a status callback that mean the number must not be messaged again.
_REVOKING_ERRORS = frozenset({"21610"})  # the recipient replied STOP to this sender

_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+")
_MAX_MEDIA = 100


def incoming(fields: dict[str, str]) -> WebhookOutcome:
    """An incoming-message webhook's verified fields as an interaction (or set aside)."""
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
            # The company's number the customer wrote to (a campaign's own number may map
            # to a source: HUB_ACQUISITION__ENDPOINTS).
            endpoint=endpoint_of("phone", (fields.get("To") or "").removeprefix("whatsapp:")),
        )
    except ValidationError as exc:
        return _set_aside(f"not a valid interaction: {exc.errors()[0]['msg']}", fields)
    return WebhookOutcome(
        interactions=(interaction,), body=EMPTY_TWIML, media_type="application/xml"
    )


def status(url: str, fields: dict[str, str]) -> WebhookOutcome:
    """A status callback's verified fields as a delivery report (or set aside); ``url`` is
    the signed URL it was posted to, which carries the hub's message id."""
    sid, raw_status = fields.get("MessageSid"), fields.get("MessageStatus")
    if not sid or not raw_status:
        raise MalformedPayload("a status callback needs MessageSid and MessageStatus")
    known = STATUSES.get(raw_status.lower())
    if known is None:
        return _set_aside(f"unknown MessageStatus {raw_status!r}", fields)
    error_code = fields.get("ErrorCode") or None
    report = DeliveryReport(
        channel="sms",
        provider_message_id=sid,
        status=known,
        # Status callbacks carry no time either (RawDlrDoneDate is the carrier's, to the
        # minute, and only for delivered messages).
        occurred_at=datetime.now(UTC),
        message_id=_message_id(url),
        error_code=error_code,
        error_message=fields.get("ErrorMessage") or None,
        revoke_consent=error_code in _REVOKING_ERRORS,
    )
    return WebhookOutcome(reports=(report,), body=EMPTY_TWIML, media_type="application/xml")


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
