"""The hub's producers on a real broker without the idempotent producer (Tansu): refused, it is
a configuration error naming the setting that turns it off; turned off, records go out."""

from __future__ import annotations

import asyncio

import pytest

from hub.config import ConfigurationError, KafkaSettings
from hub.stream.topics import Topics, ensure_topics, start_producer


def test_a_broker_refusing_the_idempotent_producer_names_the_setting(
    kafka_settings: KafkaSettings,
) -> None:
    idempotent = kafka_settings.model_copy(update={"idempotent_producer": True})

    with pytest.raises(ConfigurationError) as caught:
        asyncio.run(start_producer(idempotent))

    message = str(caught.value)
    assert "refused the idempotent producer" in message
    assert "HUB_KAFKA__IDEMPOTENT_PRODUCER=false" in message
    assert "\n" not in message


def test_without_it_the_producer_starts_and_sends(kafka_settings: KafkaSettings) -> None:
    asyncio.run(ensure_topics(kafka_settings))

    async def send_one() -> int:
        producer = await start_producer(kafka_settings)
        try:
            sent = await producer.send_and_wait(
                Topics.from_settings(kafka_settings).inbound, b"value", key=b"key"
            )
        finally:
            await producer.stop()
        return int(sent.offset)

    assert asyncio.run(send_one()) == 0
