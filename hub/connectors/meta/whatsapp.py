"""WhatsApp Cloud API payloads: the messages and statuses of a ``whatsapp_business_account``
webhook, read into interactions and delivery reports, and the body of a send (text, or an
approved template) with the hub's message id as ``biz_opaque_callback_data``."""

from __future__ import annotations

from typing import Any

from hub.connectors.base import DeliveryReport, OutboundMessage, PermanentError, SetAside
from hub.connectors.fields import Unusable, optional_text, text_field
from hub.connectors.meta.graph import recipient
from hub.connectors.meta.webhook import Collected, Parsed, hub_message_id, unix_time
from hub.events import Attachment, DeliveryStatus, InboundInteraction, normalise_address
from hub.events.inbound import endpoint_of

_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
_MEDIA = frozenset({"image", "document", "audio", "video", "sticker"})


def collect(body: dict[str, Any], out: Collected) -> None:
    """Every message and status of a WhatsApp webhook body into ``out``."""
    for entry in out.items(body, "entry"):
        for change in out.items(entry, "changes"):
            value = change.get("value")
            if change.get("field") != "messages":
                continue
            if not isinstance(value, dict):
                out.set_aside.append(SetAside(reason="change without a value", payload=change))
                continue
            phone_number_id = optional_text(value.get("metadata"), "phone_number_id")
            # The company's number written to: a first contact's acquisition endpoint.
            display = optional_text(value.get("metadata"), "display_phone_number")
            endpoint = endpoint_of("phone", f"+{display.lstrip('+')}" if display else None)
            endpoint = endpoint or endpoint_of("whatsapp", phone_number_id)
            names = {
                contact.get("wa_id"): optional_text(contact.get("profile"), "name")
                for contact in out.items(value, "contacts")
            }
            for item in out.items(value, "messages"):
                out.attempt(
                    "WhatsApp message", item, _message, item, names, phone_number_id, endpoint
                )
            for item in out.items(value, "statuses"):
                out.attempt("WhatsApp status", item, _status, item)


def _message(
    item: dict[str, Any],
    names: dict[Any, str | None],
    phone_number_id: str | None,
    endpoint: str | None = None,
) -> list[Parsed]:
    message_id = text_field(item, "id")
    sender = text_field(item, "from")
    if not sender.isdigit():
        raise Unusable(f"'from' {sender!r} is not a WhatsApp id (digits)")
    occurred_at = unix_time(item.get("timestamp"))
    kind = optional_text(item, "type") or "unknown"
    found = item.get(kind)
    content: dict[str, Any] = found if isinstance(found, dict) else {}
    metadata: dict[str, Any] = {"type": kind}
    if phone_number_id:
        metadata["phone_number_id"] = phone_number_id
    text, thread_ref, attachments = "", None, []
    if kind == "text":
        text = text_field(content, "body")
    elif kind in _MEDIA:
        media_id = text_field(content, "id")
        attachments.append(
            Attachment(
                name=(optional_text(content, "filename") or f"{kind}-{media_id}")[:255],
                content_type=optional_text(content, "mime_type") or "application/octet-stream",
                size=0,
            )
        )
        # WhatsApp serves media by id (GET /{media-id} with the token), not by URL.
        metadata["media_id"] = media_id
        text = optional_text(content, "caption") or ""
    elif kind == "location":
        metadata["location"] = {
            k: content[k] for k in ("latitude", "longitude", "name", "address") if k in content
        }
        text = ", ".join(
            filter(None, (optional_text(content, "name"), optional_text(content, "address")))
        )
    elif kind == "button":
        text = optional_text(content, "text") or ""
        metadata["button_payload"] = optional_text(content, "payload")
    elif kind == "interactive":
        # {"type": "button_reply", "button_reply": {"id", "title"}} (or list_reply)
        reply = content.get(optional_text(content, "type") or "reply")
        text = optional_text(reply, "title") or ""
        metadata["reply_id"] = optional_text(reply, "id")
    elif kind == "reaction":
        text = optional_text(content, "emoji") or ""  # empty: the reaction was removed
        thread_ref = optional_text(content, "message_id")
    context = item.get("context")
    if isinstance(context, dict):
        thread_ref = optional_text(context, "id") or thread_ref
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
            endpoint=endpoint,
        )
    ]


def _status(item: dict[str, Any]) -> list[Parsed]:
    raw_status = item.get("status")
    status = _STATUSES.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        return []  # "deleted", "warning"...: not a delivery state the hub tracks
    error_code = error_message = None
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        error_code = str(first["code"]) if "code" in first else None
        error_message = optional_text(first, "message") or optional_text(first, "title")
        details = optional_text(first.get("error_data"), "details")
        if details and details != error_message:
            error_message = f"{error_message}: {details}" if error_message else details
    return [
        DeliveryReport(
            channel="whatsapp",
            provider_message_id=text_field(item, "id"),
            status=status,
            occurred_at=unix_time(item.get("timestamp")),
            # The hub's id, sent as biz_opaque_callback_data: reconciles a lost send result.
            message_id=hub_message_id(item.get("biz_opaque_callback_data")),
            error_code=error_code,
            error_message=error_message,
        )
    ]


def send_request(
    message: OutboundMessage, phone_number_id: str | None
) -> tuple[str, dict[str, Any]]:
    """The sender (the business's phone number id) and Graph body of a WhatsApp send."""
    if not phone_number_id:
        raise PermanentError("no whatsapp_phone_number_id configured: WhatsApp cannot send")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(message, "phone").lstrip("+"),
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
    return phone_number_id, body


def sent_id(answer: dict[str, Any]) -> str | None:
    """The wamid of a message the Graph API accepted."""
    found = answer.get("messages")
    first = found[0] if isinstance(found, list) and found else None
    return optional_text(first, "id")
