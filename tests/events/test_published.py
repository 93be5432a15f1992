"""Unit tests of hub.events.published: every published event encodes, decodes and validates as
documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from hub.events import (
    EVENT_TYPES,
    ActivityRecorded,
    Attachment,
    ConversationAssigned,
    ConversationOpened,
    ConversationSlaBreached,
    ConversationStatusChanged,
    CustomerConsentChanged,
    CustomerCreated,
    CustomerDuplicateDismissed,
    CustomerDuplicateRestored,
    CustomerErased,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerTagsChanged,
    CustomerUnmerged,
    Envelope,
    FeedbackCommented,
    FeedbackReceived,
    FeedbackRequested,
    InteractionDeliveryUpdated,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
    NoteAdded,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
    decode_event,
    encode_event,
)
from hub.events.published import EVENT_CLASSES

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
CUSTOMER = UUID("01900000-0000-7000-8000-000000000001")
CONVERSATION = UUID("01900000-0000-7000-8000-000000000002")
MESSAGE = UUID("5e1f1c0e-0000-8000-8000-000000000003")
NOTE = UUID("01900000-0000-7000-8000-000000000004")
OCCURRENCE = UUID("5e1f1c0e-0000-5000-8000-000000000005")
SURVEY = {
    "survey_id": UUID("5e1f1c0e-0000-5000-8000-000000000007"),
    "kind": "csat",
    "conversation_id": CONVERSATION,
    "agent": "ona",
    "channel": "sms",
}
RULE = {"kind": "rule", "id": "01900000-0000-7000-8000-0000000000bb", "name": "Birthday"}


def _envelope(position: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": UUID(int=(0x0190 << 112) | (7 << 76) | (2 << 62) | position),
        "occurred_at": T0,
        "recorded_at": T0 + timedelta(seconds=1),
        "customer_id": CUSTOMER,
        "position": position,
        "causation_id": MESSAGE,
        "correlation_id": MESSAGE,
    } | extra


def _interaction(direction: str) -> dict[str, Any]:
    return {
        "message_id": MESSAGE,
        "conversation_id": CONVERSATION,
        "channel": "email",
        "direction": direction,
        "address": "email:alice@example.com",
        "provider_message_id": "<abc@mail.example.com>",
        "text": "Hi, my parcel is late ~ again",
        "subject": "Order 1234",
        "thread_ref": "<prev@mail.example.com>",
        "contact_name": "Alice Example",
        "attachments": (
            Attachment(name="receipt.pdf", content_type="application/pdf", size=2048),
            Attachment(name="photo.jpg", content_type="image/jpeg", size=1, url="https://x.test/1"),
        ),
        "metadata": {"spam_score": 0.1, "labels": ["inbox"], "nested": {"ok": True}},
    }


def all_event_samples() -> list[Envelope]:
    """One realistic instance of every published event type."""
    return [
        CustomerCreated(
            **_envelope(1),
            data={"display_name": "Alice Example", "address": "email:alice@example.com"},
        ),
        CustomerIdentityLinked(
            **_envelope(2),
            data={
                "address": "phone:+4915112345678",
                "address_kind": "phone",
                "verified": True,
                "reason": "verification",
            },
        ),
        CustomerMerged(
            **_envelope(2),
            data={
                "into_customer_id": UUID("01890000-0000-7000-8000-0000000000aa"),
                "actor": "agent-ann",
                "reason": "verification",
                "caused_by": None,
            },
        ),
        CustomerUnmerged(
            **_envelope(2),
            data={
                "from_customer_id": UUID("01890000-0000-7000-8000-0000000000aa"),
                "actor": "agent-ann",
                "reason": "two different people",
            },
        ),
        CustomerTagsChanged(
            **_envelope(2),
            data={"tags": ["vip", "wholesale"], "added": ["vip"], "removed": [], "actor": "ann"},
        ),
        CustomerProfileUpdated(
            **_envelope(3),
            data={
                "display_name": "Alice E.",
                "changed": ["time_zone", "attributes.loyalty_tier"],
                "time_zone": "Europe/Vilnius",
                "attributes": {"loyalty_tier": "gold"},
                "actor": "ann",
            },
        ),
        CustomerDuplicateDismissed(
            **_envelope(3),
            data={
                "other_customer_id": UUID("01890000-0000-7000-8000-0000000000aa"),
                "actor": "ann",
            },
        ),
        CustomerDuplicateRestored(
            **_envelope(3),
            data={
                "other_customer_id": UUID("01890000-0000-7000-8000-0000000000aa"),
                "actor": "ann",
            },
        ),
        CustomerConsentChanged(
            **_envelope(3),
            data={
                "channel": "sms",
                "purposes": ("service", "marketing"),
                "granted": False,
                "reason": "sms_keyword:STOP",
                "actor": None,
                "message_id": MESSAGE,
            },
        ),
        CustomerErased(
            **_envelope(3, erased=True),
            data={
                "customer_ids": (CUSTOMER,),
                "actor": "dpo",
                "reason": "data_subject_request",
            },
        ),
        ConversationOpened(
            **_envelope(4),
            data={
                "conversation_id": CONVERSATION,
                "channel": "email",
                "address": "email:alice@example.com",
                "subject": "Order 1234",
            },
        ),
        ConversationStatusChanged(
            **_envelope(5, occurred_at=T0.astimezone(timezone(timedelta(hours=2)))),
            data={
                "conversation_id": CONVERSATION,
                "status": "resolved",
                "previous_status": "open",
                "actor": "agent-ann",
                "reason": "agent",
            },
        ),
        ConversationAssigned(
            **_envelope(6, causation_id=None, correlation_id=None),
            data={"conversation_id": CONVERSATION, "assignee": "agent-bob", "actor": "admin"},
        ),
        ConversationSlaBreached(
            **_envelope(6),
            data={
                "conversation_id": CONVERSATION,
                "policy": "vip-email",
                "target": "first_response",
                "clock_started_at": "2026-03-02T15:20:00+00:00",
                "due_at": "2026-03-03T08:20:00+00:00",
                "channel": "email",
            },
        ),
        InteractionReceived(**_envelope(7), data=_interaction("inbound")),
        InteractionSent(**_envelope(8), data=_interaction("outbound")),
        InteractionQueued(
            **_envelope(8),
            data=_interaction("outbound")
            | {
                "provider_message_id": "hub:auto:5e1f1c0e-0000-5000-8000-000000000005",
                "author": None,
                "urgent": False,
                "automation": {
                    "occurrence_id": OCCURRENCE,
                    **RULE,
                    "template": "birthday",
                    "template_version": 3,
                },
            },
        ),
        InteractionDeliveryUpdated(
            **_envelope(9),
            data={
                "message_id": MESSAGE,
                "conversation_id": CONVERSATION,
                "status": "failed",
                "error_code": "30007",
                "error_message": "Carrier violation",
                "provider_message_id": "SM0123456789abcdef0123456789abcdef",
                "held_until": None,
            },
        ),
        NoteAdded(
            **_envelope(10, erased=True),
            data={
                "note_id": NOTE,
                "conversation_id": CONVERSATION,
                "text": None,
                "author": "agent-ann",
            },
        ),
        ScheduledMessageScheduled(
            **_envelope(11),
            data={
                "occurrence_id": OCCURRENCE,
                "key": f"rule:{RULE['id']}:{CUSTOMER}:2024-05-02",
                "due_at": datetime(2024, 5, 2, 7, 0, tzinfo=UTC),
                "action": "send",
                "purpose": "marketing",
                "channels": ("whatsapp", "sms", "email"),
                "template": "birthday",
                "source": RULE,
            },
        ),
        ScheduledMessageCancelled(
            **_envelope(12), data={"occurrence_id": OCCURRENCE, "actor": "ann"}
        ),
        ScheduledMessageSkipped(
            **_envelope(12),
            data={
                "occurrence_id": OCCURRENCE,
                "code": "consent_missing",
                "reason": "sms: the customer has not given consent for marketing messages on sms",
                "source": RULE,
            },
        ),
        ScheduledMessageQueued(
            **_envelope(12),
            data={
                "occurrence_id": OCCURRENCE,
                "message_id": MESSAGE,
                "channel": "sms",
                "template_version": 3,
                "source": RULE,
            },
        ),
        ActivityRecorded(
            **_envelope(13),
            data={
                "activity_id": UUID("5e1f1c0e-0000-5000-8000-000000000006"),
                "type": "order.placed",
                "name": None,
                "amount": "129.00",
                "currency": "EUR",
                "source": "shop",
                "source_id": "order-1042-placed",
                "reference": "#1042",
                "title": "2 x running shoes",
                "description": None,
                "url": "https://shop.example.com/orders/1042",
                "metadata": {"items": 2},
            },
        ),
        FeedbackRequested(**_envelope(14), data={**SURVEY, "message_id": MESSAGE}),
        FeedbackReceived(
            **_envelope(15),
            data={
                **SURVEY,
                "score": 5,
                "via": "reply",
                "message_id": MESSAGE,
                "asked_at": T0 - timedelta(minutes=5),
            },
        ),
        FeedbackCommented(
            **_envelope(16),
            data={**SURVEY, "comment": "Ačiū, Ona!", "message_id": MESSAGE},
        ),
    ]


def test_samples_cover_every_published_type() -> None:
    samples = all_event_samples()
    assert [type(e) for e in samples] == list(EVENT_CLASSES)
    assert {e.type for e in samples} == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == len(EVENT_CLASSES) == 27


@pytest.mark.parametrize("event", all_event_samples(), ids=lambda e: e.type)
def test_decode_event_round_trips_encode_event(event: Envelope) -> None:
    wire = encode_event(event)
    assert isinstance(wire, bytes)
    decoded = decode_event(wire)
    assert type(decoded) is type(event)
    assert decoded == event
    assert decode_event(wire.decode()) == event
    assert decode_event(json.loads(wire)) == event
    assert encode_event(decoded) == wire


def test_encoded_event_is_the_documented_envelope() -> None:
    event = next(e for e in all_event_samples() if e.type == "interaction.received.v1")
    body = json.loads(encode_event(event))
    assert body["type"] == "interaction.received.v1"
    assert body["id"] == str(event.id)
    assert body["customer_id"] == str(CUSTOMER)
    assert body["position"] == 7
    assert body["erased"] is False
    assert body["data"]["attachments"][0] == {
        "name": "receipt.pdf",
        "content_type": "application/pdf",
        "size": 2048,
        "url": None,
    }


def test_decoding_keeps_the_time_offset() -> None:
    event = next(e for e in all_event_samples() if e.type == "conversation.status_changed.v1")
    decoded = decode_event(encode_event(event))
    assert decoded.occurred_at == T0
    assert decoded.occurred_at.utcoffset() == timedelta(hours=2)


def test_discriminated_union_rejects_an_unknown_type() -> None:
    body = json.loads(encode_event(all_event_samples()[0]))
    body["type"] = "customer.deleted.v1"
    with pytest.raises(ValidationError) as caught:
        decode_event(body)
    assert caught.value.errors()[0]["type"] == "union_tag_invalid"
    with pytest.raises(ValidationError):
        decode_event(json.dumps(body))


def test_discriminated_union_rejects_data_of_another_type() -> None:
    body = json.loads(encode_event(all_event_samples()[0]))
    body["type"] = "note.added.v1"  # CustomerCreated data under a NoteAdded tag
    with pytest.raises(ValidationError):
        decode_event(body)


def test_decoding_refuses_unknown_fields_and_position_zero() -> None:
    body = json.loads(encode_event(all_event_samples()[0]))
    with pytest.raises(ValidationError):
        decode_event(body | {"extra": 1})
    with pytest.raises(ValidationError):
        decode_event(body | {"position": 0})
