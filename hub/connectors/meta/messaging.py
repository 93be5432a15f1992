"""Messenger and Instagram messaging payloads: the ``messaging`` events of a ``page`` or
``instagram`` webhook (messages, echoes of the business's own, deliveries and reads) read into
interactions and delivery reports, and the body of a send."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

from hub.connectors.base import DeliveryReport, OutboundMessage
from hub.connectors.fields import Unusable, object_field, optional_text, text_field
from hub.connectors.meta.graph import recipient
from hub.connectors.meta.webhook import Collected, Parsed, unix_time
from hub.connectors.settings import MetaSettings
from hub.events import Attachment, Channel, InboundInteraction, normalise_address
from hub.events.inbound import endpoint_of

#: Put in the ``metadata`` of Messenger sends: Meta echoes it back, so the hub can tell the
#: echoes of its own sends (already recorded) from messages the Page sent elsewhere.
_ECHO_MARK = "interaction-hub:"


def collect(channel: Channel, body: dict[str, Any], out: Collected) -> None:
    """Every messaging event of a Messenger or Instagram webhook body into ``out``."""
    for entry in out.items(body, "entry"):
        for event in out.items(entry, "messaging"):
            out.attempt(f"{channel} event", event, _event, channel, event)


def _event(channel: Channel, event: dict[str, Any]) -> list[Parsed]:
    if "message" in event:
        return _message(channel, event)
    if "delivery" in event:
        delivery = object_field(event, "delivery")
        mids = delivery.get("mids")
        if not isinstance(mids, list):
            raise Unusable("delivery without a list of 'mids'")
        at = unix_time(delivery.get("watermark") or event.get("timestamp"), millis=True)
        return [
            DeliveryReport(
                channel=channel, provider_message_id=mid, status="delivered", occurred_at=at
            )
            for mid in mids
            if isinstance(mid, str) and mid
        ]
    if "read" in event:
        mid = optional_text(event.get("read"), "mid")
        if mid is None:
            return []  # Messenger reads carry only a watermark, no message id to update
        at = unix_time(event.get("timestamp"), millis=True)
        return [
            DeliveryReport(channel=channel, provider_message_id=mid, status="read", occurred_at=at)
        ]
    return []  # postbacks, reactions, referrals, optins: not messages


def _message(channel: Channel, event: dict[str, Any]) -> list[Parsed]:
    message = object_field(event, "message")
    if message.get("is_deleted"):
        return []  # the customer unsent it; the hub keeps what was said
    mid = text_field(message, "mid")
    sender = text_field(object_field(event, "sender"), "id")
    business_side = text_field(object_field(event, "recipient"), "id")
    occurred_at = unix_time(event.get("timestamp"), millis=True)
    echo = message.get("is_echo") is True
    if echo and (optional_text(message, "metadata") or "").startswith(_ECHO_MARK):
        return []  # the hub's own send: already recorded by the dispatcher
    # An echo is the business speaking (a reply from the Page inbox): recorded outbound.
    customer, business = (business_side, sender) if echo else (sender, business_side)
    metadata: dict[str, Any] = {"business_id": business}
    if echo and "app_id" in message:
        metadata["app_id"] = message["app_id"]
    quick_reply = optional_text(message.get("quick_reply"), "payload")
    if quick_reply:
        metadata["quick_reply_payload"] = quick_reply
    attachments = []
    for number, attachment in enumerate(message.get("attachments") or [], start=1):
        url = (
            optional_text(attachment.get("payload"), "url")
            if isinstance(attachment, dict)
            else None
        )
        if url is None or len(url) > 2048:
            continue  # templates, fallbacks without a file
        kind = optional_text(attachment, "type") or "file"
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
            text=optional_text(message, "text") or "",
            thread_ref=optional_text(message.get("reply_to"), "mid"),
            attachments=tuple(attachments),
            metadata=metadata,
            # The Page or Instagram account written to: a first contact's endpoint.
            endpoint=None if echo else endpoint_of(channel, business),
        )
    ]


def send_request(message: OutboundMessage, settings: MetaSettings) -> tuple[str, dict[str, Any]]:
    """The sender (the Page or Instagram account, ``me`` when unset) and Graph body of a
    Messenger or Instagram send."""
    if message.channel == "messenger":
        body = {
            "recipient": {"id": recipient(message, "messenger")},
            "messaging_type": "RESPONSE",
            "message": {"text": message.text, "metadata": f"{_ECHO_MARK}{message.message_id}"},
        }
        return settings.page_id or "me", body
    body = {
        "recipient": {"id": recipient(message, "instagram")},
        "message": {"text": message.text},
    }
    return settings.instagram_account_id or "me", body


def sent_id(answer: dict[str, Any]) -> str | None:
    """The mid of a message the Graph API accepted."""
    return optional_text(answer, "message_id")
