"""The workers of the distributed runtime: one consumer group per role.

- ``process`` (group ``hub-process``) takes ``hub.inbound`` in batches into the store, one
  transaction per batch, and sends what can never be processed to ``hub.inbound.dlq`` and to
  the hub's dead letters (``hub dead-letters``);
- ``project`` (group ``hub-project``) applies ``hub.events`` to the read models with the same
  projection code as the embedded runtime, keeping its positions per partition with the views;
- ``webhooks`` (group ``hub-webhooks``) queues ``hub.events`` for the outbound webhook endpoints
  that want them (``hub.runtime.webhooks``); the role's deliverer sends from that queue. The
  queue, not the offset, holds an event until it is delivered or given up, per endpoint: a
  partition is never held back by one customer's failing endpoint, and a replay reads the store.

A role's group is its own, so roles scale apart and ``hub run all`` can host them all. The two
high-rate roles, process and project, are aiokafka consumers that take each fetch as one batch
(``hub.stream.batch_worker``); webhooks is a Faust agent. Either way a record's offset is
committed only after its batch is done: a crash or a stop mid-batch redelivers the batch, and
the store, the views and the webhook queue skip what they already hold. While the store is
unavailable a batch is retried without end and no offset moves.

A worker takes the next batch while the last one is written (in a thread), and writes batches
one after the other, in the order taken: per-partition order holds, and fetching the next
records overlaps the database's work instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import faust
from sqlalchemy.exc import OperationalError

from hub.config import KafkaSettings, Settings
from hub.domain.errors import StoreUnavailable
from hub.events import Envelope, decode_event
from hub.metrics import Metrics
from hub.projections import Views, default_projections
from hub.store import Store
from hub.stream.batch_worker import Batch, BatchWorker, Handler, Outgoing
from hub.stream.faust_driver import HubFaustApp
from hub.stream.processor import Processor
from hub.stream.topics import Topics

log = logging.getLogger(__name__)

#: Records per batch at most, by role: process writes a batch in one store transaction;
#: project writes one in one views transaction, and a bigger batch folds more updates of the
#: same rows together (fewer statements per event).
BATCH_SIZE = {"process": 500, "project": 2000, "webhooks": 500}
#: How long the webhooks agent's batch may wait to fill (s): its latency under a trickle
#: includes it (the batch workers take what a fetch returns, without waiting to fill).
BATCH_WITHIN = 0.05
#: Back-off while the store is unavailable.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

WORKER_ROLES = ("process", "project", "webhooks")


def group_id(kafka: KafkaSettings, role: str) -> str:
    """The consumer group (and Faust app id) of a worker role."""
    return f"{kafka.topic_prefix}hub-{role}"


@dataclass
class WorkerHealth:
    """What readiness needs to know about a worker: is its store reachable, is it alive."""

    role: str
    store_failing_since: float | None = None
    crashed: str | None = None

    def problems(self) -> list[str]:
        found = []
        if self.crashed:
            found.append(f"{self.role} worker stopped: {self.crashed}")
        if self.store_failing_since is not None:
            seconds = time.monotonic() - self.store_failing_since
            found.append(f"{self.role} worker: store unavailable for {seconds:.0f}s, retrying")
        return found


def _credentials(kafka: KafkaSettings) -> Any:
    """Faust's form of the SASL/SSL settings every aiokafka client of the hub gets."""
    options = kafka.client_options()
    context: ssl.SSLContext | None = options.get("ssl_context")
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _faust_app(settings: Settings, role: str) -> Any:
    kafka = settings.kafka
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    return HubFaustApp(
        group_id(kafka, role),
        datadir=str(settings.data_dir / "faust"),  # not the working directory
        broker=f"kafka://{kafka.bootstrap_servers}",
        broker_credentials=_credentials(kafka),
        broker_commit_interval=kafka.commit_interval,
        processing_guarantee="exactly_once" if kafka.transactions else "at_least_once",
        broker_rebalance_timeout=kafka.rebalance_timeout,
        broker_session_timeout=kafka.session_timeout,
        broker_heartbeat_interval=kafka.session_timeout / 10,
        store="memory://",
        web_enabled=False,
        producer_acks=-1,
        topic_replication_factor=kafka.replication_factor,
        topic_partitions=kafka.partitions,
        topic_allow_declare=False,  # `hub kafka init` owns the topics
    )


def _raw_topic(app: Any, name: str) -> Any:
    return app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw")


class Worker(Protocol):
    """A worker role as the runtime runs it: started and stopped with the process, and
    ``failed`` once it stopped by itself (readiness says so)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def failed(self) -> bool: ...


class FaustWorker:
    """The Faust app of a low-rate role (``webhooks``) as a :class:`Worker`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.name: str = app.conf.id

    async def start(self) -> None:
        self.app.finalize()
        await self.app.start()

    async def stop(self) -> None:
        await self.app.stop()

    @property
    def failed(self) -> bool:
        return bool(self.app.should_stop or self.app.crashed)


def create_worker(
    settings: Settings,
    store: Store,
    role: str,
    metrics: Metrics,
    health: WorkerHealth,
    *,
    queue_webhooks: Callable[[Sequence[Envelope]], int] | None = None,
) -> Worker:
    """One worker role (``process``, ``project`` or ``webhooks``), not yet started.
    ``queue_webhooks`` (the ``webhooks`` role): queues a batch of published envelopes for the
    endpoints, blocking (``WebhookService.queue_envelopes``)."""
    kafka = settings.kafka
    topics = Topics.from_settings(kafka)

    def batch_worker(topic: str, handle: Handler, *, produces: bool = False) -> BatchWorker:
        def crashed(exc: BaseException) -> None:
            health.crashed = f"{type(exc).__name__}: {exc}"

        return BatchWorker(
            kafka,
            group_id(kafka, role),
            topic,
            handle,
            role=role,
            batch_size=BATCH_SIZE[role],
            metrics=metrics,
            on_crash=crashed,
            produces=produces,
        )

    if role == "process":
        processor = Processor(store.app, store.dead_letters)

        async def process(batch: Batch) -> list[Outgoing]:
            records = [(r.key, r.value) for rs in batch.values() for r in rs]
            outcome = await _with_retries(processor.process, records, health)
            metrics.dead_letters.inc(len(outcome.dead_letters))
            return [
                Outgoing(topics.dead_letters, d.key, d.value, {"reason": d.reason.encode()})
                for d in outcome.dead_letters
            ]

        return batch_worker(topics.inbound, process, produces=True)
    if role == "project":
        views = Views(
            store.views_engine,
            default_projections(
                shared_address_limit=settings.identity.shared_address_limit,
                default_region=settings.default_region,
                service_levels=store.app.service_levels.definitions,
            ),
        )
        views.create()

        def decode_and_apply(batches: dict[tuple[str, int], list[bytes]]) -> int:
            by_topic: dict[str, dict[int, list[Any]]] = defaultdict(dict)
            for (topic, partition), values in batches.items():
                by_topic[topic][partition] = [decode_event(v) for v in values]
            return sum(views.apply_partitions(t, events) for t, events in by_topic.items())

        async def project(batch: Batch) -> list[Outgoing]:
            values = {(tp.topic, tp.partition): [r.value for r in rs] for tp, rs in batch.items()}
            # Decoding goes to the thread too: the event loop also fetches the next batch.
            await _with_retries(decode_and_apply, values, health)
            return []

        return batch_worker(topics.events, project)
    if role == "webhooks":
        if queue_webhooks is None:
            raise ValueError("the webhooks role needs queue_webhooks")
        queue = queue_webhooks
        app = _faust_app(settings, role)

        def decode_and_queue(values: list[bytes]) -> int:
            return queue([decode_event(v) for v in values])

        async def take(records: Sequence[Any]) -> None:
            # acknowledged (the offsets committed) only once the batch is queued
            await _with_retries(decode_and_queue, [r.value for r in records], health)

        _batch_agent(app, _raw_topic(app, topics.events), role, take, metrics, health)
        return FaustWorker(app)
    raise ValueError(f"no worker role {role!r} (known: {', '.join(WORKER_ROLES)})")


def _batch_agent(
    app: Any,
    topic: Any,
    role: str,
    handle: Callable[[Sequence[Any]], Awaitable[None]],
    metrics: Metrics,
    health: WorkerHealth,
) -> None:
    """An agent that hands ``handle`` batches of events and acknowledges them only after it
    returned (``noack_take``: a batch cut short by a crash or a stop is delivered again).

    One batch is handled while the agent takes the next; the next is handled only after it.
    """

    async def finish(stream: Any, batch: Sequence[Any]) -> None:
        try:
            await handle(batch)
        except Exception as exc:  # readiness says so at once; the agent raises it next
            health.crashed = f"{type(exc).__name__}: {exc}"
            raise
        for event in batch:
            await stream.ack(event)
        metrics.role_items.labels(role).inc(len(batch))

    @app.agent(topic, name=role)  # type: ignore[untyped-decorator]  # faust is untyped
    async def agent(stream: Any) -> None:
        in_flight: asyncio.Task[None] | None = None
        try:
            async for batch in stream.noack_take(BATCH_SIZE[role], within=BATCH_WITHIN):
                if in_flight is not None:
                    await in_flight  # in order: raises what the last batch raised
                in_flight = asyncio.create_task(finish(stream, batch))
            if in_flight is not None:
                await in_flight
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the agent is gone: readiness must say so
            health.crashed = f"{type(exc).__name__}: {exc}"
            log.exception("%s agent crashed", role)
            raise
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # unacknowledged: delivered again, and skipped if done


async def _with_retries(call: Any, records: Any, health: WorkerHealth) -> Any:
    attempt = 0
    while True:
        try:
            result = await asyncio.to_thread(call, records)
        except (StoreUnavailable, OperationalError):
            if health.store_failing_since is None:
                health.store_failing_since = time.monotonic()
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            log.warning(
                "%s: store unavailable (attempt %d); retrying in %.1fs", health.role, attempt, delay
            )
            await asyncio.sleep(delay)
        else:
            health.store_failing_since = None
            return result
