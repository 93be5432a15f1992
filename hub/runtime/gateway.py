"""The connectors of one hub process: built from the settings, started and stopped with the
process, their listeners running, and what their providers deliver taken into the hub.

``receive`` is the one way anything a connector received enters the hub: interactions are
recorded (embedded) or handed to ``hub.inbound`` (distributed ingest) before the provider is
answered; delivery reports are applied to the store; what cannot be recorded becomes a dead
letter keeping the complete original (the webhook request, the raw mail, the interaction),
encrypted, with its reason, so nothing a provider sent is lost or half-kept. ``retry`` hands a
dead letter to the path it came in by again; retention purges old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import Column, Engine, MetaData, String, Table, Text

from hub.config import Settings
from hub.connectors.base import (
    Connector,
    ConnectorContext,
    InboundSink,
    SetAside,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.email.parse import parse_message
from hub.connectors.registry import by_channel, configured
from hub.domain.application import HubApplication, Recorded
from hub.events import InboundInteraction
from hub.runtime.group_commit import Unrecorded, is_outage
from hub.sql import upsert, write_transaction
from hub.store.database import schema_lock
from hub.store.dead_letters import DeadLetter, DeadLetters, NewDeadLetter, Original

log = logging.getLogger(__name__)

#: How often a started gateway purges dead letters past their retention (also once at start).
PURGE_EVERY_SECONDS = 3600.0

metadata = MetaData()
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


#: Makes channel traffic durable (``Runtime.submit_traffic``); may return one result per item,
#: where an :class:`~hub.runtime.group_commit.Unrecorded` one becomes a dead letter (None: all
#: durable).
Submit = Callable[[Sequence[InboundInteraction]], Awaitable[Sequence[object] | None]]
#: Records in the store at once and answers (``Runtime.record_now``): a retry's path.
RecordNow = Callable[[Sequence[InboundInteraction]], list[Recorded]]


class RetryFailed(Exception):
    """A dead letter that still cannot be recorded; the message says why."""


@dataclass(frozen=True)
class RetryOutcome:
    """What retrying a dead letter did. Succeeded: the letter is gone and ``recorded`` new
    interactions (``duplicates`` were in the store already) and ``reports`` delivery reports
    went in. Failed: the letter stays, ``letter`` shows its new attempts and ``error``."""

    letter: DeadLetter
    succeeded: bool
    recorded: int = 0
    duplicates: int = 0
    reports: int = 0
    error: str | None = None


class Gateway:
    """Connectors by name and by channel, the sink their traffic goes into, and the dead
    letters of what could not be recorded."""

    def __init__(
        self,
        settings: Settings,
        app: HubApplication,
        state_engine: Engine,
        submit: Submit,
        record_now: RecordNow,
        dead_letters: DeadLetters,
    ) -> None:
        self._settings = settings
        self._app = app
        self._engine = state_engine
        self._submit = submit
        self._record_now = record_now
        self.dead_letters = dead_letters
        self.by_name: dict[str, Connector] = {}
        self.by_channel: dict[str, Connector] = {}
        self._listeners: list[asyncio.Task[None]] = []
        self._retention: asyncio.Task[None] | None = None

    @staticmethod
    def create_tables(engine: Engine) -> None:
        """The gateway's tables and the dead letters' (called under the schema lock: processes
        starting together on a new database must not race to create them). A connector's own
        tables (``Connector.tables``) are created when it is built (:meth:`_build`), so a
        connector that is off has none."""
        metadata.create_all(engine)
        DeadLetters.create_table(engine)

    async def _build(self, cls: type[Connector], section: Any) -> Connector:
        """A started connector of ``cls``, its tables created first (under the schema lock)."""
        if cls.tables is not None:
            await asyncio.to_thread(self._create_connector_tables, cls.tables)
        connector = cls(section, self._context(cls))
        await connector.start()
        return connector

    def _create_connector_tables(self, tables: MetaData) -> None:
        # A write transaction: SQLite's lock taken up front, so the DDL waits for a writer of
        # another thread (the access log, a follower) instead of failing as "locked".
        with (
            schema_lock(self._settings.resolved_store_url()),
            write_transaction(self._engine) as conn,
        ):
            tables.create_all(conn)

    async def start(
        self, configured: Sequence[tuple[type[Connector], Any]], *, listen: bool
    ) -> None:
        """Build and start the ``configured`` connectors (``ConfiguredChannels.configured``), and
        the dead letters' retention."""
        for cls, section in configured:
            connector = await self._build(cls, section)
            self.by_name[cls.name] = connector
            if listen and type(connector).run is not Connector.run:
                self._listeners.append(
                    asyncio.create_task(self._listen(connector), name=f"listen-{cls.name}")
                )
        self.by_channel = by_channel((type(c), c) for c in self.by_name.values())
        if self.by_name:
            log.info("connectors on: %s", ", ".join(sorted(self.by_name)))
        self._retention = asyncio.create_task(self._keep_retention(), name="dead-letter-retention")

    def _context(self, cls: type[Connector]) -> ConnectorContext:
        return ConnectorContext(
            public_url=self._settings.public_url,
            state=SqlState(self._engine, f"{cls.name}:"),
            engine=self._engine,
        )

    async def _listen(self, connector: Connector) -> None:
        try:
            await connector.run(self.receiver(connector.name))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listener of %s stopped", connector.name)
            raise

    async def stop(self) -> None:
        tasks = [*self._listeners, *([self._retention] if self._retention else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._listeners.clear()
        self._retention = None
        for connector in self.by_name.values():
            with contextlib.suppress(Exception):
                await connector.stop()
        self.by_name.clear()
        self.by_channel.clear()

    # -- receiving -------------------------------------------------------------------------

    def receiver(self, name: str) -> InboundSink:
        return functools.partial(self.receive, name)

    async def receive(
        self, name: str, outcome: WebhookOutcome, request: WebhookRequest | None = None
    ) -> None:
        """Make what a provider delivered durable; returns once it is. ``request``: the
        webhook request ``outcome`` came from, kept whole when anything of it is set aside."""
        letters: list[NewDeadLetter] = []
        if outcome.interactions:
            items = list(outcome.interactions)
            results = await self._submit(items)
            for item, result in zip(items, results or (), strict=False):
                if isinstance(result, Unrecorded):
                    letters.append(
                        NewDeadLetter(
                            name,
                            f"not recorded: {type(result.error).__name__}: {result.error}",
                            Original.interaction(item.model_dump_json().encode()),
                        )
                    )
        if outcome.reports:
            await asyncio.to_thread(self._app.dispatch.apply_provider_reports, outcome.reports)
        if outcome.set_aside:
            letters += _set_aside_letters(name, outcome.set_aside, request)
        if letters:
            await asyncio.to_thread(self.dead_letters.add, letters)
            log.warning("%s: %d item(s) kept as dead letters", name, len(letters))

    # -- dead letters ----------------------------------------------------------------------

    async def retry(self, letter_id: UUID) -> RetryOutcome:
        """Hand a dead letter to the path it came in by again (a mail to the parser, a webhook
        request to its connector, whose signature check must pass again, an interaction to
        the store) and record what comes out directly in the store. The hub dedupes by
        provider message id, so what is recorded already is not recorded twice.

        Raises :class:`~hub.domain.errors.NotFound`, and what the store raises when it is
        unavailable (the letter stays as it was)."""
        letter = await asyncio.to_thread(self.dead_letters.get, letter_id)
        try:
            outcome = await self._rerun(letter)
            if outcome.set_aside:
                raise RetryFailed("; ".join(item.reason for item in outcome.set_aside))
            results = await asyncio.to_thread(self._record_now, list(outcome.interactions))
            if outcome.reports:
                await asyncio.to_thread(self._app.dispatch.apply_provider_reports, outcome.reports)
        except Exception as exc:
            if is_outage(exc):
                raise
            error = str(exc) if isinstance(exc, RetryFailed) else f"{type(exc).__name__}: {exc}"
            # The error may quote the sender (it is sealed in the letter): not in the log.
            log.warning("dead letter %s failed again: %s", letter_id, type(exc).__name__)
            again = await asyncio.to_thread(self.dead_letters.failed_again, letter_id, error)
            return RetryOutcome(again or letter, succeeded=False, error=error)
        await asyncio.to_thread(self.dead_letters.drop, letter_id)
        duplicates = sum(r.duplicate for r in results)
        log.info("dead letter %s retried: %d recorded", letter_id, len(results) - duplicates)
        return RetryOutcome(
            letter,
            succeeded=True,
            recorded=len(results) - duplicates,
            duplicates=duplicates,
            reports=len(outcome.reports),
        )

    async def _rerun(self, letter: DeadLetter) -> WebhookOutcome:
        original = letter.original
        assert original is not None, "DeadLetters.get gives the original"
        if original.kind == "email":
            if not original.body:
                raise RetryFailed(
                    "the message was never received whole (it is still where it came from: "
                    f"{original.fields}), so there is nothing to retry"
                )
            return parse_message(original.body, received_at=letter.received_at)
        if original.kind == "webhook":
            fields = original.fields
            request = WebhookRequest(
                method=fields["method"],
                hook=fields["hook"],
                url=fields["url"],
                headers=fields["headers"],
                query=fields["query"],
                body=original.body,
            )
            async with self._connector(letter.source) as connector:
                if request.hook not in type(connector).webhooks:
                    raise RetryFailed(f"{connector.name} has no webhook {request.hook!r} now")
                return connector.handle_webhook(request)
        try:
            item = InboundInteraction.model_validate_json(original.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "record"
            raise RetryFailed(f"invalid inbound interaction: {where}: {first['msg']}") from None
        return WebhookOutcome(interactions=(item,))

    @contextlib.asynccontextmanager
    async def _connector(self, name: str) -> AsyncIterator[Connector]:
        """The running connector ``name``, or one built for the moment (a CLI, a process
        whose roles run no connectors), as the settings configure it."""
        running = self.by_name.get(name)
        if running is not None:
            yield running
            return
        for cls, section in configured(self._settings):
            if cls.name == name:
                connector = await self._build(cls, section)
                try:
                    yield connector
                finally:
                    await connector.stop()
                return
        raise RetryFailed(f"connector {name!r} is not configured here")

    async def _keep_retention(self) -> None:
        retention = self._settings.dead_letter_retention
        while True:
            try:
                purged = await asyncio.to_thread(self.dead_letters.purge_expired, retention)
            except Exception as exc:  # the store may be away for a while; next round
                log.warning("dead letters not purged: %s: %s", type(exc).__name__, exc)
            else:
                if purged:
                    log.info("purged %d dead letter(s) older than %s", purged, retention)
            await asyncio.sleep(PURGE_EVERY_SECONDS)

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


def _set_aside_letters(
    name: str, items: Sequence[SetAside], request: WebhookRequest | None
) -> list[NewDeadLetter]:
    """A webhook request is kept once, whole, for all its items set aside (a retry runs the
    whole request again; what it recorded the first time dedupes). A listener's item keeps
    the mail it came from."""
    if request is not None:
        reason = "; ".join(item.reason for item in items)
        original = Original.webhook(
            method=request.method,
            hook=request.hook,
            url=request.url,
            headers=request.headers,
            query=request.query,
            body=request.body,
        )
        return [NewDeadLetter(name, reason, original)]
    # Only the email connector has listeners: its items carry the raw mail (an IMAP message
    # too large to fetch carries where it lies instead).
    letters = []
    for item in items:
        fields = item.payload if isinstance(item.payload, dict) else {"payload": item.payload}
        original = Original.email(item.original or b"", **fields)
        letters.append(NewDeadLetter(name, item.reason, original))
    return letters
