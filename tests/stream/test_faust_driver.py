"""The workers' Faust consumer waits on the broker at most FETCH_MAX_WAIT_MS per fetch (Faust
itself hard-codes 1,500 ms, which delivers records in rounds on a broker that holds fetches)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.config import KafkaSettings
from hub.stream.faust_driver import FETCH_MAX_WAIT_MS, HubFaustApp
from hub.stream.topics import Topics, ensure_topics


def test_the_worker_consumer_fetches_with_the_hubs_wait(
    kafka_settings: KafkaSettings, tmp_path
) -> None:
    asyncio.run(ensure_topics(kafka_settings))
    topic_name = Topics.from_settings(kafka_settings).events

    async def scenario() -> Any:
        app = HubFaustApp(
            f"{kafka_settings.topic_prefix}driver-test",
            broker=f"kafka://{kafka_settings.bootstrap_servers}",
            datadir=str(tmp_path),
            store="memory://",
            web_enabled=False,
            topic_allow_declare=False,
        )
        topic = app.topic(topic_name, key_type=bytes, value_type=bytes, value_serializer="raw")

        @app.agent(topic)  # type: ignore[untyped-decorator]
        async def agent(stream: Any) -> None:
            async for _ in stream:
                pass

        app.finalize()
        await app.start()
        try:
            deadline = time.monotonic() + 20
            consumer = None
            while consumer is None and time.monotonic() < deadline:
                consumer = getattr(app.consumer._thread, "_consumer", None)
                await asyncio.sleep(0.1)
            assert consumer is not None
            return consumer._fetcher._fetch_max_wait_ms
        finally:
            await app.stop()

    assert asyncio.run(scenario()) == FETCH_MAX_WAIT_MS
