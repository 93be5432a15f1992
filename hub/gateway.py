"""The connectors of one hub process: built from the settings, started and stopped with the
process, their listeners running, and what their providers deliver taken into the hub.

``take`` is the one way anything a connector received enters the hub: interactions are
recorded (embedded) or handed to ``hub.inbound`` (distributed ingest) before the provider is
answered; delivery reports are applied to the store; items set aside go to a dead-letter table
with their reason, so nothing a provider sent is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Engine, Integer, MetaData, String, Table, Text

from hub.config import Settings
from hub.connectors.base import Connector, ConnectorContext, InboundSink, WebhookOutcome
from hub.domain.application import HubApplication
from hub.events import InboundInteraction
from hub.metrics import Metrics
from hub.projections.base import upsert

log = logging.getLogger(__name__)

metadata = MetaData()
connector_dead_letters = Table(
    "connector_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connector", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
connector_state = Table(
    "connector_state",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("value", Text, nullable=False),
)


class SqlState:
    """A connector's durable key-value state (an IMAP cursor), in the state database."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self._engine = engine
        self._prefix = prefix

    def get(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            found = conn.scalar(
                connector_state.select()
                .with_only_columns(connector_state.c.value)
                .where(connector_state.c.key == self._prefix + key)
            )
        return str(found) if found is not None else None

    def set(self, key: str, value: str) -> None:
        with self._engine.begin() as conn:
            upsert(conn, connector_state, [{"key": self._prefix + key, "value": value}])


Record = Callable[[Sequence[InboundInteraction]], Awaitable[Any]]


class Gateway:
    """Connectors by name and by channel, and the sink their traffic goes into."""

    def __init__(
        self,
        settings: Settings,
        app: HubApplication,
        state_engine: Engine,
        metrics: Metrics,
        record: Record,
    ) -> None:
        self._settings = settings
        self._app = app
        self._engine = state_engine
        self._metrics = metrics
        self._record = record
        self.by_name: dict[str, Connector] = {}
        self.by_channel: dict[str, Connector] = {}
        self._listeners: list[asyncio.Task[None]] = []

    @staticmethod
    def create_tables(engine: Engine) -> None:
        """The gateway's tables and the web chat's (called under the schema lock: processes
        starting together on a new database must not race to create them)."""
        from hub.connectors.chat.mailbox import metadata as chat_metadata

        metadata.create_all(engine)
        chat_metadata.create_all(engine)

    async def start(
        self, configured: Sequence[tuple[type[Connector], Any]], *, listen: bool
    ) -> None:
        """Build and start the ``configured`` connectors (``ChannelPolicy.configured``)."""
        from hub.dispatch import by_channel

        for cls, section in configured:
            context = ConnectorContext(
                public_url=self._settings.public_url,
                state=SqlState(self._engine, f"{cls.name}:"),
                engine=self._engine,
            )
            connector = cls(section, context)
            await connector.start()
            self.by_name[cls.name] = connector
            if listen and type(connector).run is not Connector.run:
                self._listeners.append(
                    asyncio.create_task(self._listen(connector), name=f"listen-{cls.name}")
                )
        self.by_channel = by_channel((type(c), c) for c in self.by_name.values())
        if self.by_name:
            log.info("connectors on: %s", ", ".join(sorted(self.by_name)))

    async def _listen(self, connector: Connector) -> None:
        try:
            await connector.run(self.take_from(connector.name))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listener of %s stopped", connector.name)
            raise

    async def stop(self) -> None:
        for task in self._listeners:
            task.cancel()
        for task in self._listeners:
            with contextlib.suppress(BaseException):
                await task
        self._listeners.clear()
        for connector in self.by_name.values():
            with contextlib.suppress(Exception):
                await connector.stop()
        self.by_name.clear()
        self.by_channel.clear()

    def take_from(self, name: str) -> InboundSink:
        return functools.partial(self.take, name)

    async def take(self, name: str, outcome: WebhookOutcome) -> None:
        """Make what a provider delivered durable; returns once it is."""
        if outcome.interactions:
            await self._record(list(outcome.interactions))
        if outcome.reports:
            await asyncio.to_thread(self._app.outbound.apply_provider_reports, outcome.reports)
        if outcome.set_aside:
            rows = [
                {
                    "connector": name,
                    "reason": item.reason,
                    "payload": json.loads(json.dumps(item.payload, default=str)),
                    "received_at": datetime.now(UTC),
                }
                for item in outcome.set_aside
            ]
            await asyncio.to_thread(self._set_aside, rows)
            log.warning("%s: %d item(s) set aside as dead letters", name, len(rows))

    def _set_aside(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(connector_dead_letters.insert(), rows)

    def problems(self) -> list[str]:
        found = []
        for connector in self.by_name.values():
            found += [f"{connector.name}: {p}" for p in connector.problems()]
        for task in self._listeners:
            # A listener that returned had nothing to listen to (email that only sends);
            # one that raised has stopped taking traffic.
            if task.done() and (task.cancelled() or task.exception() is not None):
                found.append(f"listener {task.get_name()} stopped")
        return found
