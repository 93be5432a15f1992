"""The hub's own outbound message, as every command that queues one records it: an agent's
reply (``hub.domain.outbound``), a new conversation (``hub.domain.new_conversation``), a
scheduled or automated message (``hub.domain.scheduling``). One place decides what is
encrypted how, and what the dispatcher will find in its request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.domain.crypto import PersonalDataCipher
from hub.domain.ids import message_id
from hub.domain.model import REPLY_PREFIX, Conversation, Message

__all__ = ["queued_message"]


def queued_message(
    cipher: PersonalDataCipher,
    thread: Conversation,
    *,
    channel: str,
    key: str,
    text: str,
    subject: str | None,
    at: datetime,
    author: str | None,
    urgent: bool,
    template: dict[str, Any] | None,
    purpose: str,
    automation: dict[str, Any] | None = None,
    html: str | None = None,
) -> Message:
    """A new outbound :class:`Message` in ``thread`` (its id from ``channel`` and ``key``),
    with its dispatch request: the text, subject and HTML dated like every body (a message
    retention expires them, docs/retention.md), the author and urgency the hub's own record.
    The caller adds it to the unit of work and records it in ``thread``."""
    cid = thread.customer_id
    mid = message_id(channel, REPLY_PREFIX + key)
    dated = cipher.encrypt_dated
    meta: dict[str, Any] = {"author": author, "urgent": urgent}
    if automation is not None:
        meta["automation"] = automation
    message = Message(
        channel=channel,
        provider_message_id=REPLY_PREFIX + key,
        direction="outbound",
        customer_id=cid,
        conversation_id=thread.id,
        address=thread.address,
        occurred_at=at,
        text=dated(cid, text, at),
        subject=dated(cid, subject, at) if subject else thread.subject,
        thread_ref=thread.last_inbound_ref,
        contact_name=None,
        attachments=[],
        metadata=cipher.encrypt_json(cid, meta),
        correlation_id=mid,
    )
    message.request_dispatch(
        author=author,
        urgent=urgent,
        template=template,
        references=list(thread.refs),
        customer_id=cid,
        correlation_id=mid,
        purpose=purpose,
        automation=automation,
        html=dated(cid, html, at) if html else None,
    )
    return message
