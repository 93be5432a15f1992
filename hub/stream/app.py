"""The Faust application of the distributed runtime: topics and agents, built at start-up.

``create_app(settings, store)`` returns the Faust app with the processor agent on
``hub.inbound``; ``hub run process`` runs it as a worker. Agents stay thin: decode, call the
domain, send dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from functools import partial
from typing import Any

import faust
from sqlalchemy.exc import OperationalError

from hub.config import Settings
from hub.domain.errors import StoreUnavailable
from hub.events import Envelope, decode_event
from hub.projections import Views
from hub.store import Store
from hub.stream.processor import Processor
from hub.stream.topics import Topics

log = logging.getLogger(__name__)

#: Records per store transaction, and how long a batch may wait to fill.
BATCH_SIZE = 500
BATCH_WITHIN = 0.05
#: Back-off while the store is unavailable: the batch is retried until the store is back, and
#: meanwhile no offset moves (its partition waits; nothing is lost).
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


def create_app(settings: Settings, store: Store, roles: tuple[str, ...] = ("process",)) -> Any:
    """The Faust app with the agents of ``roles`` (``process``, ``project``)."""
    kafka = settings.kafka
    topics = Topics.from_settings(kafka)
    app = faust.App(
        f"{kafka.topic_prefix}interaction-hub",
        broker=f"kafka://{kafka.bootstrap_servers}",
        broker_credentials=None,
        store="memory://",
        web_enabled=False,
        producer_acks=-1,
        topic_replication_factor=kafka.replication_factor,
        topic_partitions=kafka.partitions,
        topic_allow_declare=False,  # `hub kafka init` owns the topics
    )
    inbound = app.topic(topics.inbound, key_type=bytes, value_type=bytes, value_serializer="raw")
    dead_letters = app.topic(
        topics.dead_letters, key_type=bytes, value_type=bytes, value_serializer="raw"
    )
    if "process" in roles:
        _add_processor(app, inbound, dead_letters, Processor(store.app))
    if "project" in roles:
        views = Views(store.views_engine)
        views.create()
        events = app.topic(topics.events, key_type=bytes, value_type=bytes, value_serializer="raw")
        _add_projector(app, events, views)
    return app


def _add_processor(app: Any, inbound: Any, dead_letters: Any, processor: Processor) -> None:
    @app.agent(inbound, name="process")  # type: ignore[untyped-decorator]  # faust is untyped
    async def process(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN):
            records = [(event.key, event.value) for event in batch]
            outcome = await _with_retries(processor.process, records)
            for letter in outcome.dead_letters:
                await dead_letters.send(
                    key=letter.key,
                    value=letter.value,
                    headers={"reason": letter.reason.encode()},
                )
            log.debug("recorded %d, set aside %d", len(outcome.recorded), len(outcome.dead_letters))


def _add_projector(app: Any, events: Any, views: Views) -> None:
    """hub.events into the read models: the same projection code as the embedded runtime,
    with positions per partition (replays on the wire are skipped, never applied twice)."""

    @app.agent(events, name="project")  # type: ignore[untyped-decorator]  # faust is untyped
    async def project(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN):
            by_partition: dict[tuple[str, int], list[Envelope]] = defaultdict(list)
            for event in batch:
                tp = event.message.tp
                by_partition[(tp.topic, tp.partition)].append(decode_event(event.value))
            for (topic, partition), envelopes in by_partition.items():
                await _with_retries(partial(views.apply_partition, topic, partition), envelopes)


async def _with_retries(call: Any, records: Any) -> Any:
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(call, records)
        except (StoreUnavailable, OperationalError):
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            log.warning("store unavailable (attempt %d); retrying in %.1fs", attempt, delay)
            await asyncio.sleep(delay)
