"""What the API and CLI see of a running hub, whichever runtime drives it.

A runtime owns the store, the views, the tokens and the metrics, and runs commands and queries
on them. Runtimes differ only in how interactions reach the processor and how the projections
are fed: ``hub.embedded`` follows the log in-process; the distributed runtime uses Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prometheus_client import Metric
from sqlalchemy import Connection

from hub.config import Settings
from hub.connectors import registry
from hub.domain.application import HubApplication, Recorded
from hub.domain.policy import ChannelOption, QuietHours
from hub.events import Envelope, InboundInteraction
from hub.metrics import Metrics
from hub.projections import Views
from hub.projections.service_queries import gauges as service_gauges
from hub.runtime import automation
from hub.runtime.dispatcher import ConfiguredChannels, Dispatcher
from hub.runtime.erasure import ErasureReport, erase_customer, kafka_expiry
from hub.runtime.gateway import Gateway
from hub.runtime.group_commit import Unrecorded, WriteQueue, may_lie_in_the_data
from hub.runtime.retention import RetentionRun, apply_retention
from hub.runtime.scheduler import Planner, Scheduler
from hub.runtime.sla import SlaWatcher
from hub.runtime.surveys import SurveyWatcher
from hub.runtime.views import open_views
from hub.runtime.webhooks import WebhookDeliverer, WebhookService
from hub.store import Store, open_store
from hub.store.access_log import AccessLog
from hub.store.database import schema_lock
from hub.store.dead_letters import DeadLetters
from hub.store.sessions import SessionStore
from hub.store.tokens import TokenStore
from hub.store.webhook_queue import WebhookQueue
from hub.store.webhooks import WebhookStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An interaction handed to the processors, not yet recorded (distributed ingest): only
    its message id, which is deterministic, is known."""

    message_id: UUID


#: How old the positions :meth:`Runtime.shared_positions` hands out may be, in seconds.
POSITIONS_MAX_AGE = 0.05


class Runtime:
    """Commands, queries and change notification over one store and its views."""

    kind = "direct"  # a CLI command working on the store; runtimes override

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store: Store
        self.views: Views
        self.tokens: TokenStore
        self.access_log: AccessLog  # who read whose personal data (``hub.store.access_log``)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._waiters_lock = threading.Lock()
        self._positions_lock = threading.Lock()
        self._positions: tuple[float, dict[str, int]] = (-POSITIONS_MAX_AGE, {})
        self.started = False
        self._open_channels: set[str] = set()  # channels the open-conversations gauge named

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with schema_lock(self.settings.resolved_store_url()):
            self.store = open_store(self.settings)
            self.views = open_views(self.settings, self.store)
            self.views.create()
            admin = self.settings.admin_token
            self.tokens = TokenStore(
                self.store.state_engine, admin.get_secret_value() if admin else None
            )
            self.sessions = SessionStore(
                self.store.state_engine, self.tokens, forms_key=self.store.forms_key
            )
            AccessLog.create_table(self.store.state_engine)
            WebhookStore.create_tables(self.store.state_engine)
            self.create_tables()
            self._setup_channels()
        self.access_log = AccessLog(
            self.store.state_engine,
            retention=timedelta(days=self.settings.retention.access_log_days),
        )
        self.access_log.start()
        engine = self.store.state_engine
        #: Outbound webhooks (``hub.runtime.webhooks``): every process manages endpoints;
        #: those that deliver run :meth:`start_webhooks`.
        self.webhooks = WebhookService(
            self.store,
            WebhookStore(engine, self.store.webhooks_key),
            WebhookQueue(engine),
            self.settings.webhooks,
        )
        self.webhook_deliverer: WebhookDeliverer | None = None
        self._webhooks_task: asyncio.Task[None] | None = None
        self._webhooks_stopping = asyncio.Event()
        self.store.app.add_listener(self._changed)
        self.writes = WriteQueue(
            self.record_now, self.settings.max_batch_items, isolate=may_lie_in_the_data
        )
        self.writes.start()
        self.started = True

    def create_tables(self) -> None:
        """Create the tables a runtime needs beyond the store's and the views' (called while
        no other process creates tables)."""

    async def start_async(self) -> None:
        """Start what runs on the server's event loop (after :meth:`start`)."""

    async def stop_async(self) -> None:
        """Stop what :meth:`start_async` started (before :meth:`stop`)."""

    # -- channels --------------------------------------------------------------------------

    def _setup_channels(self) -> None:
        Gateway.create_tables(self.store.state_engine)
        self.gateway = Gateway(
            self.settings,
            self.store.app,
            self.store.state_engine,
            self.submit_traffic,
            self.record_now,
            self.store.dead_letters,
        )
        self.dispatcher: Dispatcher | None = None
        self.scheduler: Scheduler | None = None
        #: What schedules ahead (``hub.runtime.scheduler.Planner``): run by the scheduler.
        self.planners: list[Planner] = list(
            automation.planners(self.store, self.views, self.settings)
        )
        self._dispatch_tasks: list[asyncio.Task[None]] = []
        self._dispatch_stopping = asyncio.Event()

    @functools.cached_property
    def channel_states(self) -> dict[str, str]:
        """``on``/``off`` for every connector the hub knows (``/readyz``)."""
        return registry.channel_states(self.settings)

    @functools.cached_property
    def policy(self) -> ConfiguredChannels:
        """Which channels are on (built on first use: CLI commands never load a connector)."""
        return ConfiguredChannels.from_settings(self.settings)

    async def start_channels(self, *, listen: bool, dispatch: bool) -> None:
        """Start the connectors (and their listeners), and the dispatcher and the scheduler
        if asked (each active in one process at a time, by its own lease)."""
        await self.gateway.start(self.policy.configured, listen=listen)
        if not dispatch:
            return
        self._dispatch_stopping = asyncio.Event()
        self.dispatcher = Dispatcher(
            self.store, self.gateway.by_channel, self.policy, self.settings, self.metrics
        )
        queues: list[Dispatcher | Scheduler] = [self.dispatcher]
        if self.settings.automation.enabled:
            self.scheduler = Scheduler(
                self.store,
                self.policy,
                self.settings,
                self.metrics,
                planners=self.planners,
                watchers=[
                    SlaWatcher(self.store.app, self.views.engine),
                    SurveyWatcher(self.store, self.views.engine, self.settings),
                ],
            )
            queues.append(self.scheduler)
        for queue in queues:
            self.store.app.add_listener(queue.wake, queue.topics)
            self._dispatch_tasks.append(asyncio.create_task(queue.run(self._dispatch_stopping)))

    async def stop_channels(self) -> None:
        if self._dispatch_tasks:
            self._dispatch_stopping.set()
            for queue in (self.dispatcher, self.scheduler):
                if queue is not None:
                    queue.wake()  # it waits for work or its idle timeout: not for the stop
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*self._dispatch_tasks), 10)
            self._dispatch_tasks = []
        await self.gateway.stop()

    def channel_problems(self) -> list[str]:
        """Why the connectors, the dispatcher or the webhook deliverer of this process are
        not working, if they are not."""
        found = self.gateway.problems()
        for queue in (self.dispatcher, self.scheduler):
            if queue is not None:
                found += queue.problems()
        if any(task.done() for task in self._dispatch_tasks):
            found.append("dispatcher or scheduler stopped")
        if self.webhook_deliverer is not None:
            found += self.webhook_deliverer.problems()
            if self._webhooks_task is not None and self._webhooks_task.done():
                found.append("webhook deliverer stopped")
        return found

    # -- outbound webhooks -----------------------------------------------------------------

    async def start_webhooks(self, *, intake: bool) -> None:
        """Deliver webhooks from this process (unless ``HUB_WEBHOOKS__ENABLED=false``).
        ``intake``: also queue the events from the store's log (the embedded runtime);
        without it, the queue is fed by ``self.webhooks.queue_envelopes`` (a Kafka worker
        of the distributed runtime's ``webhooks`` role), which wakes the deliverer."""
        if not self.settings.webhooks.enabled or self._webhooks_task is not None:
            return
        deliverer = self.webhooks.deliverer(self.metrics, intake=intake)
        self.webhook_deliverer = deliverer
        if intake:
            self.store.app.add_listener(deliverer.wake)
        self._webhooks_stopping = asyncio.Event()
        self._webhooks_task = asyncio.create_task(deliverer.run(self._webhooks_stopping))

    async def stop_webhooks(self) -> None:
        """Stop what :meth:`start_webhooks` started: sends in flight get a few seconds to
        finish; what is not settled then is sent again later (its lease expires)."""
        if self._webhooks_task is not None:
            self._webhooks_stopping.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._webhooks_task, 15)
            self._webhooks_task = None

    @property
    def commands(self) -> HubApplication:
        """The domain's commands (``hub.domain``): conversations, profiles, identity
        (``.identity``: merge, unmerge, link_address), outbound (``.outbound``: consent,
        delivery reports). Replies go through :meth:`reply`, which knows the channels."""
        return self.store.app

    def reply(self, conversation_id: UUID, text: str, **options: Any) -> Recorded:
        return self.store.app.outbound.reply(conversation_id, text, policy=self.policy, **options)

    def start_conversation(
        self, customer_id: UUID, channel: str, text: str, **options: Any
    ) -> Recorded:
        """A conversation the agent starts (``hub.domain.new_conversation``)."""
        return self.store.app.new_conversations.start(
            customer_id, channel, text, policy=self.policy, **options
        )

    def stop(self) -> None:
        if self.started:
            self.started = False
            self.writes.stop()
            self.access_log.stop()  # writes what is pending: a clean stop loses no entry
            self.store.close()

    # -- commands --------------------------------------------------------------------------

    async def submit(
        self, items: Sequence[InboundInteraction]
    ) -> list[Recorded | Accepted | Unrecorded]:
        """Record from a request: grouped with concurrent requests into one transaction. An
        item that cannot be recorded comes back as :class:`Unrecorded`, failing nothing else."""
        return list(await self.writes.record(items))

    async def submit_traffic(
        self, items: Sequence[InboundInteraction]
    ) -> Sequence[Recorded | Accepted | Unrecorded] | None:
        """Make channel traffic (webhooks, listeners) durable. The results say which items
        failed on their own (:class:`Unrecorded`): the gateway keeps those as dead letters and
        the provider gets its 2xx (None: every item is durable, as the broker has it)."""
        return await self.submit(items)

    def record_now(self, items: Sequence[InboundInteraction]) -> list[Recorded]:
        results = self.store.app.record_interactions(items)
        for item, result in zip(items, results, strict=True):
            if result.duplicate:
                self.metrics.duplicates.inc()
            else:
                self.metrics.interactions.labels(item.channel, item.direction).inc()
        return results

    # -- queries ---------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection to the views."""
        with self.views.engine.connect() as conn:
            yield conn

    def reply_options(
        self, conversation_id: UUID, known_channels: Sequence[str], now: datetime
    ) -> list[ChannelOption]:
        """The channels a reply on this conversation could take (of ``known_channels``), each
        with what :meth:`reply` would say at ``now``: the configured channels and quiet hours
        decide, as they do for the dispatcher."""
        return self.commands.outbound.reply_options(
            conversation_id,
            policy=self.policy,
            quiet=self._quiet_hours(),
            known_channels=known_channels,
            now=now,
        )

    def new_conversation_options(
        self, customer_id: UUID, known_channels: Sequence[str], now: datetime
    ) -> list[ChannelOption]:
        """The channels of ``known_channels`` that reach the customer, each with what
        :meth:`start_conversation` would say at ``now``."""
        return self.store.app.new_conversations.options(
            customer_id,
            policy=self.policy,
            quiet=self._quiet_hours(),
            known_channels=known_channels,
            now=now,
        )

    def _quiet_hours(self) -> QuietHours:
        d = self.settings.dispatch
        return QuietHours(
            d.quiet_hours_start, d.quiet_hours_end, d.default_time_zone, d.awake_window
        )

    def erase(self, customer_id: UUID, *, actor: str | None, reason: str) -> ErasureReport:
        """Erase a customer and its merge group everywhere (``hub.runtime.erasure``)."""
        return erase_customer(
            self.store,
            self.views,
            customer_id,
            actor=actor,
            reason=reason,
            kafka_copies_expire_by=self.kafka_copies_expire_by,
            running=list(self.gateway.by_name.values()),
        )

    def kafka_copies_expire_by(self, erased_at: datetime) -> datetime | None:
        """When the last plaintext copies on Kafka of what was erased at ``erased_at`` are
        gone (None: this hub writes no Kafka topics). A command on a PostgreSQL store may
        belong to a distributed hub: it answers as one."""
        if self.store.backend == "sqlite":
            return None
        return kafka_expiry(erased_at, self.settings.kafka.retention_hours)

    def apply_retention(self, now: datetime | None = None) -> RetentionRun | None:
        """Expire the message bodies older than ``HUB_RETENTION__MESSAGE_DAYS`` everywhere
        (``hub.runtime.retention``); None when no retention is configured."""
        days = self.settings.retention.message_days
        if days is None:
            return None
        return apply_retention(self.store, self.views, days, now)

    @property
    def dead_letters(self) -> DeadLetters:
        """What was received but could not be recorded (list, read, drop; a retry goes
        through ``gateway.retry``, the way it came in)."""
        return self.store.dead_letters

    def events_after(self, after: int, limit: int) -> tuple[list[Envelope], int]:
        return self.store.read_envelopes(after, limit)

    def store_position(self) -> int:
        return self.store.app.recorder.max_notification_id() or 0

    def shared_positions(self) -> dict[str, int]:
        """Each view's position and the store's (``"store"``), read at most once every
        :data:`POSITIONS_MAX_AGE` seconds however many callers ask: the console's live feeds
        poll them while the views catch up, and a hundred open consoles each reading on its
        own would take a hundred pooled connections every 50 ms from the commands that need
        them. A caller that finds the snapshot stale reads it for everyone; the others wait
        for that read rather than making their own."""
        with self._positions_lock:
            at, positions = self._positions
            now = time.monotonic()
            if now - at >= POSITIONS_MAX_AGE:
                positions = self.views.positions() | {"store": self.store_position()}
                self._positions = (now, positions)
            return dict(positions)

    def status(self) -> dict[str, Any]:
        """Positions and lag, for /readyz, /metrics and ``hub status``."""
        top = self.store_position()
        positions = self.views.positions()
        self.metrics.store_position.set(top)
        for name, position in positions.items():
            self.metrics.projection_position.labels(name).set(position)
        lag = top - min(positions.values(), default=top)
        self.metrics.projection_lag.set(lag)
        set_aside = self.views.dead_letter_count()
        self.metrics.set_aside.set(set_aside)
        dead_letters = self.store.dead_letters.count()
        self.metrics.dead_letters_kept.set(dead_letters)
        return {
            "runtime": self.kind,
            "store_position": top,
            "projections": positions,
            "lag": lag,
            "set_aside": set_aside,
            "dead_letters": dead_letters,
        }

    def metric_families(self) -> list[Metric]:
        """The metrics of this process (for /metrics), collected now."""
        return list(self.metrics.registry.collect())

    def refresh_service_gauges(self) -> None:
        """Open conversations, SLA targets passing soon or passed, the longest wait: the
        live gauges of ``/metrics`` (docs/analytics.md)."""
        with self.views.engine.connect() as conn:
            found = service_gauges(conn, datetime.now(UTC))
        for channel, count in found.open_by_channel.items():
            self.metrics.open_conversations.labels(channel).set(count)
        for channel in self._open_channels - set(found.open_by_channel):
            self.metrics.open_conversations.labels(channel).set(0)
        self._open_channels |= set(found.open_by_channel)
        self.metrics.sla_breaching_soon.set(found.breaching_soon)
        self.metrics.sla_breached_open.set(found.breached)
        self.metrics.oldest_waiting.set(found.oldest_waiting_seconds)

    def problems(self) -> list[str]:
        """Why this process is not ready, if it is not."""
        found = []
        try:
            self.status()
        except Exception as exc:  # readiness reports, it does not raise
            found.append(f"store or views unreachable: {type(exc).__name__}")
        return found

    # -- change notification (SSE) ---------------------------------------------------------

    def _changed(self, _position: int) -> None:
        with self._waiters_lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(event.set)

    async def wait_for_change_or(self, event: asyncio.Event, timeout: float) -> None:
        """Return on a change, when ``event`` is set (a shutdown, a poke), or after
        ``timeout`` seconds, whichever comes first."""
        waits = {
            asyncio.ensure_future(self.wait_for_change(timeout)),
            asyncio.ensure_future(event.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the caller is cancelled: leave nothing waiting behind
            for task in waits:
                task.cancel()

    async def wait_for_change(self, timeout: float) -> None:
        """Return when this process records something, or after ``timeout`` seconds
        (writes by other processes are seen at the next poll)."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._waiters_lock:
            self._waiters.add(key)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._waiters_lock:
                self._waiters.discard(key)
