"""Records on hub.events are CloudEvents in the Kafka binding's binary mode: the CloudEvents SDK
reads each one back, from a real Kafka wire-protocol broker, as the event it carries."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from hub.config import KafkaSettings
from hub.events import InboundInteraction, decode_event, encode_event
from hub.events.cloudevents import DEFAULT_SOURCE, KAFKA_HEADERS, kafka_headers
from hub.store import open_store
from hub.stream.relay import Relay
from hub.stream.topics import Topics, ensure_topics
from tests.support.stream import read_topic

SOURCE = "https://hub.example.com/events"


def test_every_record_reads_as_the_cloudevent_of_its_envelope(
    make_settings, kafka_settings: KafkaSettings
) -> None:
    kafka = kafka_settings.model_copy(update={"cloudevents_source": SOURCE})
    store = open_store(make_settings("sqlite"))
    asyncio.run(ensure_topics(kafka))
    try:
        at = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
        store.app.record_interactions(
            [
                InboundInteraction(
                    channel="sms",
                    direction="inbound",
                    address=f"phone:+1555040{n % 2:04d}",
                    provider_message_id=f"cloudevents-{n}",
                    occurred_at=at + timedelta(minutes=n),
                    text=f"message {n}",
                )
                for n in range(4)
            ]
        )
        envelopes, _ = store.read_envelopes(0, 1000)

        async def publish_and_read() -> list[Any]:
            relay = Relay(store, kafka)
            await relay.start()
            try:
                while await relay.publish_once():
                    pass
            finally:
                await relay.stop()
            return await read_topic(kafka, Topics.from_settings(kafka).events, len(envelopes))

        records = asyncio.run(publish_and_read())
    finally:
        store.close()

    by_id = {str(e.id): e for e in envelopes}
    assert len(records) == len(by_id)
    assert {e.type for e in envelopes} >= {"customer.created.v1", "interaction.received.v1"}
    for record in records:
        message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        event = from_binary_event(message)
        envelope = by_id[event.get_id()]
        assert event.get_specversion() == "1.0"
        assert event.get_source() == SOURCE
        assert event.get_type() == envelope.type
        assert event.get_subject() == str(envelope.customer_id)
        assert event.get_time() == envelope.occurred_at
        assert event.get_datacontenttype() == "application/json"
        # data is the whole envelope, the value unchanged: what /v1/events and webhooks carry
        assert record.value == encode_event(envelope)
        assert event.get_data() == json.loads(encode_event(envelope))
        assert event.get_extension("partitionkey") == str(envelope.customer_id)  # the key
        headers = dict(record.headers)  # the hub's own headers stay
        assert headers["type"] == envelope.type.encode()
        assert headers["position"] == str(envelope.position).encode()


def test_the_headers_of_an_envelope() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    raw = {
        "id": "0195a6a0-0000-7000-8000-000000000001",
        "type": "note.added.v1",
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "customer_id": "0195a6a0-0000-7000-8000-0000000000c1",
        "position": 42,
        "data": {
            "conversation_id": "0195a6a0-0000-7000-8000-0000000000a1",
            "note_id": "0195a6a0-0000-7000-8000-0000000000b1",
            "text": "called back",
            "author": "agent-1",
        },
    }
    envelope = decode_event(raw)
    assert kafka_headers(envelope) == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"0195a6a0-0000-7000-8000-000000000001"),
        ("ce_source", b"urn:interaction-hub"),
        ("ce_type", b"note.added.v1"),
        ("ce_time", b"2026-03-01T09:30:00Z"),
        ("ce_subject", b"0195a6a0-0000-7000-8000-0000000000c1"),
        ("content-type", b"application/json"),
        ("type", b"note.added.v1"),
        ("position", b"42"),
    ]
    assert [name for name, _ in kafka_headers(envelope)] == [h.name for h in KAFKA_HEADERS]
    assert KafkaSettings().cloudevents_source == DEFAULT_SOURCE
