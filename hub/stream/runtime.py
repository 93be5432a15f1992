"""The distributed runtime: the roles of one ``hub run`` process, on Kafka and PostgreSQL.

Each role is a part of this runtime, started with the process's HTTP server (every role serves
``/healthz``, ``/readyz`` and ``/metrics``; ``ingest`` and ``api`` also serve their routes):

- ``ingest`` produces new interactions to ``hub.inbound`` with ``acks=all`` and answers once the
  broker acknowledged them; interactions already in the store answer as duplicates at once;
- ``process`` and ``project`` are batch consumers (``hub.stream.app``), a consumer group each;
- ``relay`` publishes the store's notification log to ``hub.events`` (``hub.stream.relay``);
- ``webhooks`` queues ``hub.events`` for the outbound webhook endpoints (a Faust worker) and
  delivers from that queue (``hub.runtime.webhooks``); its processes share the deliveries;
- ``api`` reads the views and runs agents' commands on the store.

Lag is measured end to end for readiness, ``/metrics`` and ``hub status``: what the processors
have not committed on ``hub.inbound``, what the relay has not published, what the projectors
have not committed on ``hub.events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Metric

from hub.config import Settings
from hub.domain.application import Recorded
from hub.domain.ids import message_id
from hub.events import InboundInteraction
from hub.metrics import combine
from hub.runtime import Accepted, Runtime
from hub.runtime.group_commit import Unrecorded, WriteQueue
from hub.runtime.retention import RetentionKeeper
from hub.stream.app import WORKER_ROLES, Worker, WorkerHealth, create_worker, group_id
from hub.stream.nodes import HEARTBEAT_SECONDS, NodeRegistry, running_nodes
from hub.stream.nodes import metadata as nodes_metadata
from hub.stream.relay import LogLease, Relay
from hub.stream.relay import metadata as relay_metadata
from hub.stream.roles_process import RolesProcess
from hub.stream.topics import Topics, start_producer

log = logging.getLogger(__name__)

ROLES = ("ingest", "process", "relay", "project", "dispatch", "webhooks", "api")
#: How long a Kafka query of a probe may take before the broker counts as unreachable.
BROKER_TIMEOUT = 1.5
#: How long each part of a graceful stop may take (orchestrators kill after ~30 s).
STOP_SECONDS = 8.0
#: How often readiness learns whether the broker answers.
BROKER_CHECK_SECONDS = 1.0

T = TypeVar("T")


@dataclass
class KafkaLag:
    """Records not yet handled, per stage of the pipeline."""

    inbound: int  # on hub.inbound, not committed by the process group
    relay: int  # store positions not published to hub.events
    events: int  # on hub.events, not committed by the project group
    by_partition: dict[str, dict[int, int]]

    @property
    def total(self) -> int:
        return self.inbound + self.relay + self.events


class KafkaProbe:
    """Reads end offsets and committed offsets from the broker (a short-lived view of lag)."""

    def __init__(self, settings: Settings) -> None:
        self._kafka = settings.kafka
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(
            request_timeout_ms=int(BROKER_TIMEOUT * 1000), **self._kafka.client_options()
        )
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            request_timeout_ms=int(BROKER_TIMEOUT * 1000) + 1000,
            **self._kafka.client_options(),
        )
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def group_lag(self, group: str, topic: str) -> dict[int, int]:
        """Per partition: end offset minus the group's committed offset."""
        assert self._admin is not None, "start() first"
        assert self._consumer is not None, "start() first"
        partitions = self._consumer.partitions_for_topic(topic)
        if partitions is None:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return {}
        ends = await self._consumer.end_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        lag = {}
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.partition] = max(ends[tp] - done, 0)
        return lag


class DistributedRuntime(Runtime):
    """The roles of one process of the distributed runtime."""

    kind = "distributed"

    def __init__(
        self, settings: Settings, roles: Sequence[str], *, child_roles: Sequence[str] = ()
    ) -> None:
        """``roles`` run in this process; ``child_roles`` in a child process it supervises
        (``hub.stream.roles_process``)."""
        super().__init__(settings)
        unknown = {*roles, *child_roles} - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} (known: {', '.join(ROLES)})")
        self.roles = tuple(r for r in ROLES if r in roles and r not in child_roles)
        self.child_roles = tuple(r for r in ROLES if r in child_roles)
        self._child = RolesProcess(settings, self.child_roles) if self.child_roles else None
        self.topics = Topics.from_settings(settings.kafka)
        self.health = {r: WorkerHealth(r) for r in self.roles if r in WORKER_ROLES}
        self._workers: list[Worker] = []
        self._producer: AIOKafkaProducer | None = None
        self._relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._relay_stopping = asyncio.Event()
        self._probe = KafkaProbe(settings)
        self._node: NodeRegistry | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._broker_answered = 0.0
        self._broker_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lookups: WriteQueue[Recorded | None]
        #: Message retention (docs/retention.md), kept by the ``project`` role.
        self.retention = RetentionKeeper(self.apply_retention)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        super().start()
        if "ingest" in self.roles:
            # the API's duplicate lookups, grouped across concurrent requests (one query each)
            self._lookups = WriteQueue(
                self.store.app.recorded_before,
                self.settings.max_batch_items,
                name="ingest-lookups",
            )
            self._lookups.start()

    def stop(self) -> None:
        if self.started and "ingest" in self.roles:
            self._lookups.stop()
        super().stop()

    def create_tables(self) -> None:
        relay_metadata.create_all(self.store.state_engine)
        nodes_metadata.create_all(self.store.state_engine)

    async def start_async(self) -> None:
        """Start the Kafka side of the roles, on the server's event loop, and the child
        process's roles alongside; return once both have started."""
        try:
            if self._child is not None:
                await asyncio.gather(asyncio.to_thread(self._child.start), self._start_roles())
            else:
                await self._start_roles()
        except BaseException:
            await self.stop_async()
            raise

    async def _start_roles(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._relay_stopping = asyncio.Event()
        await self._probe.start()
        self._broker_answered = time.monotonic()
        self._watch_task = asyncio.create_task(self._watch_broker())
        if "ingest" in self.roles:
            self._producer = await start_producer(self.settings.kafka)
        if "webhooks" in self.roles:  # before its worker queues anything: the queue wakes it
            await self.start_webhooks(intake=False)
        for role in self.health:
            worker = create_worker(
                self.settings,
                self.store,
                role,
                self.metrics,
                self.health[role],
                queue_webhooks=self.webhooks.queue_envelopes,
            )
            await worker.start()
            self._workers.append(worker)
        if "relay" in self.roles:
            self._relay = Relay(
                self.store,
                self.settings.kafka,
                lease_seconds=self.settings.kafka.relay_lease_seconds,
                metrics=self.metrics,
            )
            await self._relay.start()  # a broker refusing the producer fails start-up, here
            self._relay_task = asyncio.create_task(self._relay.run(self._relay_stopping))
        # Webhooks and listeners belong to ingest; sending to dispatch.
        if "ingest" in self.roles or "dispatch" in self.roles:
            await self.start_channels(
                listen="ingest" in self.roles, dispatch="dispatch" in self.roles
            )
        if "project" in self.roles:  # it owns the views; once at start, then daily
            self.retention.start()
        if self.roles:
            self._node = NodeRegistry(
                self.store.state_engine, self.roles, f"{self.settings.host}:{self.settings.port}"
            )
            self._heartbeat_task = asyncio.create_task(self._heartbeat(self._node))
        log.info("distributed runtime started: %s", ", ".join(self.roles))

    async def stop_async(self) -> None:
        """Graceful stop: the relay finishes its batch, the workers finish theirs, commit and
        leave their groups, the producer flushes."""
        for task in (self._heartbeat_task, self._watch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._heartbeat_task = self._watch_task = None
        if self._node is not None:
            with contextlib.suppress(Exception):  # the row ages out anyway
                await asyncio.to_thread(self._node.leave)
            self._node = None
        child_stopped = (  # the child's roles finish their batches while these stop
            asyncio.create_task(asyncio.to_thread(self._child.stop, 2 * STOP_SECONDS))
            if self._child is not None
            else None
        )
        await _bounded(self.retention.stop(), "message retention")
        await _bounded(self.stop_webhooks(), "webhook deliverer")
        await _bounded(self.stop_channels(), "connectors and dispatcher")
        if self._relay_task is not None:
            self._relay_stopping.set()
            await _bounded(self._relay_task, "relay")
            self._relay_task = None
            if self._relay is not None:
                log.info("relay stopped after publishing %d events", self._relay.published)
        for worker in reversed(self._workers):
            await _bounded(worker.stop(), f"worker {worker.name}")
        self._workers.clear()
        if self._producer is not None:
            await _bounded(self._producer.stop(), "ingest producer")
            self._producer = None
        await _bounded(self._probe.stop(), "broker probe")
        if child_stopped is not None:
            await child_stopped

    async def _heartbeat(self, node: NodeRegistry) -> None:
        while True:
            try:
                await asyncio.to_thread(node.heartbeat)
            except Exception as exc:  # the store may be away for a while; readiness says so
                log.debug("heartbeat not recorded: %s", exc)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    # -- ingest ----------------------------------------------------------------------------

    async def submit(
        self, items: Sequence[InboundInteraction]
    ) -> list[Recorded | Accepted | Unrecorded]:
        """Hand new interactions to the processors through ``hub.inbound``; returns once the
        broker acknowledged every one. Interactions the store already holds come back as
        duplicates with their ids, and are not produced again."""
        if self._producer is None:
            raise RuntimeError("this process does not run the ingest role")
        known = await self._lookups.record(items)
        results: list[Recorded | Accepted | Unrecorded] = []
        new = []
        for item, before in zip(items, known, strict=True):
            if isinstance(before, Recorded):  # (a lookup is never isolated: no Unrecorded)
                self.metrics.duplicates.inc()
                results.append(before)
            else:
                new.append(item)
                results.append(Accepted(message_id(item.channel, item.provider_message_id)))
        await self._produce(new)
        return results

    async def submit_traffic(
        self, items: Sequence[InboundInteraction]
    ) -> Sequence[Recorded | Accepted | Unrecorded] | None:
        """Channel traffic (webhooks, listeners), which needs no ids back: produced without
        the duplicate lookup. A provider's retry is one more record on ``hub.inbound``, which
        the processor finds recorded (exactly-once effects); the lookup would cost a store
        query for every delivery to spare a rare one."""
        await self._produce(items)
        return None

    async def _produce(self, items: Sequence[InboundInteraction]) -> None:
        """Produce to ``hub.inbound`` (keyed by address); returns once the broker
        acknowledged every one."""
        if self._producer is None:
            raise RuntimeError("this process does not run the ingest role")
        sends = [
            await self._producer.send(
                self.topics.inbound,
                key=item.address.encode(),
                value=item.model_dump_json(exclude_defaults=True).encode(),
            )
            for item in items
        ]
        if len(sends) == 1:  # a webhook's one record: gather would add a loop turn
            await sends[0]
        else:
            await asyncio.gather(*sends)
        self.metrics.role_items.labels("ingest").inc(len(sends))

    # -- state -----------------------------------------------------------------------------

    def _on_loop(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run a coroutine on the server's loop from a worker thread (probes, status)."""
        if self._loop is None:
            raise RuntimeError("not started")

        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(bounded(), self._loop)
        try:
            return future.result(timeout + 1)
        except TimeoutError:  # what readiness reports: say who did not answer
            raise TimeoutError(
                f"no answer from the broker within {timeout}s (or this process too busy to ask)"
            ) from None

    async def _group_lags(self) -> tuple[dict[int, int], dict[int, int]]:
        kafka = self.settings.kafka
        inbound = await self._probe.group_lag(group_id(kafka, "process"), self.topics.inbound)
        events = await self._probe.group_lag(group_id(kafka, "project"), self.topics.events)
        return inbound, events

    async def _webhooks_lag(self) -> int:
        """Records of ``hub.events`` the webhooks role has not queued yet."""
        group = group_id(self.settings.kafka, "webhooks")
        return sum((await self._probe.group_lag(group, self.topics.events)).values())

    async def _watch_broker(self) -> None:
        """Ask the broker for offsets every few seconds, so readiness knows at once whether
        it answers (a probe must not wait for the broker's timeouts)."""
        while True:
            try:
                async with asyncio.timeout(BROKER_TIMEOUT):
                    await self._group_lags()
            except Exception as exc:
                self._broker_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                self._broker_answered = time.monotonic()
                self._broker_error = None
            await asyncio.sleep(BROKER_CHECK_SECONDS)

    def kafka_lag(self) -> KafkaLag:
        relay = LogLease.read(self.store.state_engine)
        top = self.store_position()
        relay_lag = max(top - relay.get("position", 0), 0)
        inbound, events = self._on_loop(self._group_lags, BROKER_TIMEOUT)
        self.metrics.consumer_lag.labels("hub-process", "hub.inbound").set(sum(inbound.values()))
        self.metrics.consumer_lag.labels("hub-project", "hub.events").set(sum(events.values()))
        self.metrics.relay_lag.set(relay_lag)
        if "webhooks" in self.roles:  # not part of readiness: projections don't wait on it
            queued = self._on_loop(self._webhooks_lag, BROKER_TIMEOUT)
            self.metrics.consumer_lag.labels("hub-webhooks", "hub.events").set(queued)
        return KafkaLag(
            inbound=sum(inbound.values()),
            relay=relay_lag,
            events=sum(events.values()),
            by_partition={"hub.inbound": inbound, "hub.events": events},
        )

    def status(self) -> dict[str, Any]:
        top = self.store_position()
        self.metrics.store_position.set(top)
        set_aside = self.views.dead_letter_count()
        self.metrics.set_aside.set(set_aside)
        dead_letters = self.store.dead_letters.count()
        self.metrics.dead_letters_kept.set(dead_letters)
        lag = self.kafka_lag()
        return {
            "runtime": self.kind,
            "roles": [r for r in ROLES if r in self.roles or r in self.child_roles],
            "nodes": running_nodes(self.store.state_engine),
            "store_position": top,
            "relay": LogLease.read(self.store.state_engine),
            "lag": lag.total,
            "lag_by_stage": {"inbound": lag.inbound, "relay": lag.relay, "events": lag.events},
            "lag_by_partition": lag.by_partition,
            "projections": self.views.partition_positions(),
            "set_aside": set_aside,
            "dead_letters": dead_letters,
        }

    def problems(self) -> list[str]:
        found = []
        try:
            self.store_position()
        except Exception as exc:  # readiness reports, it does not raise
            found.append(f"store unreachable: {type(exc).__name__}")
        silent = time.monotonic() - self._broker_answered
        if self._broker_error or silent > BROKER_TIMEOUT + 2 * BROKER_CHECK_SECONDS:
            found.append(f"broker unreachable: {self._broker_error or 'no answer'}")
        found += self.role_problems()
        if self._child is not None:
            found += self._child_problems(self._child)
        return found + self.channel_problems()

    def role_problems(self) -> list[str]:
        """What keeps the workers and the relay of this process from their work."""
        found = []
        for health in self.health.values():
            found += health.problems()
        for worker in self._workers:
            if worker.failed:
                found.append(f"worker {worker.name} stopped")
        if self._relay_task is not None and self._relay_task.done():
            found.append("relay stopped")
        if self._relay is not None and self._relay.error:
            found.append(f"relay failing, retrying: {self._relay.error}")
        return found

    @staticmethod
    def _child_problems(child: RolesProcess) -> list[str]:
        if child.error:  # it died, and is being started again
            return [child.error]
        answer: list[str] | None = child.ask("problems", BROKER_TIMEOUT)
        if answer is None:
            return [f"the {child.name} did not answer within {BROKER_TIMEOUT}s"]
        return answer

    def metric_families(self) -> list[Metric]:
        """This process's metrics and, with a child process, its roles' (added up)."""
        own = super().metric_families()
        if self._child is None:
            return own
        return combine(own, self._child.ask("metrics", BROKER_TIMEOUT) or [])


async def _bounded(step: Awaitable[Any], what: str) -> None:
    """One step of a graceful stop, given up after STOP_SECONDS (a broker that is gone must
    not hold the process: what was not committed is delivered again, and deduplicated)."""
    try:
        async with asyncio.timeout(STOP_SECONDS):
            await step
    except TimeoutError:
        log.warning("%s did not stop within %ss; leaving it", what, STOP_SECONDS)
