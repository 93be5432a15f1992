"""The web chat under the connector contract (tests/connectors/contract.py).

The chat is its own provider, so its two sides are the hub's own:

- inbound, the provider delivering a message is a widget sending a ``message`` frame: each
  delivery opens a :class:`ChatSession` (the connector's protocol, without the WebSocket the
  route adapts, as the webhook contract calls ``handle_webhook`` without HTTP), says ``hello``
  as a returning visitor and sends the frame. What the session hands the hub through its port
  is what the connector made of it; a frame it refuses (an ``error`` frame to the visitor,
  nothing recorded) counts as set aside. The real socket and the real hub: test_chat.py and
  test_chat_hostile.py;
- outbound, the provider's endpoint is the visitor's mailbox in the state database (a real
  SQLite file): :class:`MailboxPeer` reads what reached it, and fails the next write with the
  errors the SQLite driver raises (unavailable, busy, a row refused).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.exc import DBAPIError

from hub.config import Settings
from hub.connectors.base import (
    Connector,
    ConnectorContext,
    OutboundMessage,
    SetAside,
    WebhookOutcome,
)
from hub.connectors.chat import ChatConnector
from hub.connectors.chat.mailbox import chat_mailbox
from hub.connectors.chat.port import KnownIdentity, ShownMessage, Taken
from hub.connectors.chat.session import ChatSession
from hub.connectors.settings import ChatSettings
from hub.events import InboundInteraction
from tests.connectors.contract import ConnectorContract
from tests.support.api import running_app
from tests.support.processes import free_port

VISITOR = "contractvisitor"
SETTINGS = ChatSettings(
    secret="contract-secret",
    # One visitor from one network sends every example: limits out of the way.
    visitors_per_ip_per_minute=100_000,
    messages_per_visitor_per_minute=100_000,
    messages_per_ip_per_minute=100_000,
)

#: What a status of a loopback HTTP peer is for the chat's database: the DBAPI error raised.
_FAULTS: dict[int, Callable[[], Exception]] = {
    503: lambda: sqlite3.OperationalError("unable to open database file"),
    429: lambda: sqlite3.OperationalError("database is locked"),
    400: lambda: sqlite3.IntegrityError("NOT NULL constraint failed: chat_mailbox.visitor_id"),
}


class MailboxPeer:
    """The chat's provider endpoint: the mailboxes in the state database. ``requests`` are the
    messages posted to them; :meth:`fail_next` makes the next write fail as the driver would."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._failures: list[Exception] = []
        event.listen(engine, "before_cursor_execute", self._before_execute)

    @property
    def requests(self) -> list[tuple[str, uuid.UUID, str]]:
        m = chat_mailbox.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(m.visitor_id, m.message_id, m.direction).order_by(m.seq))
            return [tuple(row) for row in rows]

    def fail_next(
        self, status: int, body: Any = None, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self._failures += [_FAULTS[status]() for _ in range(times)]

    def _before_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self._failures and statement.lstrip().upper().startswith("INSERT"):
            error = self._failures.pop(0)
            raise DBAPIError.instance(statement, None, error, sqlite3.Error)


class RecordingHub:
    """The hub behind the chat's port, in memory: what the session records is kept."""

    def __init__(self) -> None:
        self.recorded: list[InboundInteraction] = []

    async def record(self, item: InboundInteraction) -> Taken:
        self.recorded.append(item)
        seen = {i.provider_message_id for i in self.recorded[:-1]}
        message_id = uuid.uuid5(uuid.NAMESPACE_URL, f"chat {item.provider_message_id}")
        return Taken(message_id, item.provider_message_id in seen)

    def link_email(
        self, owner: str, email: str, *, verified: bool, reason: str, display_name: str | None
    ) -> str:
        return "linked"

    def mark_delivered(self, message_id: uuid.UUID, at: datetime) -> None:
        return None

    def identities(self, address: str) -> Sequence[KnownIdentity]:
        return ()

    def messages(self, message_ids: Sequence[uuid.UUID]) -> Mapping[uuid.UUID, ShownMessage]:
        return {}

    async def wait_for_change(self, poke: asyncio.Event, timeout: float) -> None:
        await asyncio.sleep(timeout)

    def mailer(self) -> Connector | None:
        return None


async def started(engine: Engine) -> ChatConnector:
    assert ChatConnector.tables is not None
    ChatConnector.tables.create_all(engine)  # as the gateway does before starting it
    connector = ChatConnector(SETTINGS, ConnectorContext(engine=engine))
    await connector.start()
    return connector


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
async def connector(engine: Engine) -> AsyncIterator[ChatConnector]:
    c = await started(engine)
    yield c
    await c.stop()


@pytest.fixture
def peer(engine: Engine, connector: ChatConnector) -> MailboxPeer:
    return MailboxPeer(engine)


class TestChatContract(ConnectorContract):
    name = "chat"
    carries_lone_surrogates = True  # JSON text frames: "\ud800" is a valid escape

    async def deliver_inbound(
        self, connector: ChatConnector, *, text: str, provider_message_id: str
    ) -> WebhookOutcome:
        hub, frames = RecordingHub(), []

        async def send(frame: dict[str, Any]) -> None:
            frames.append(frame)

        session = ChatSession(connector, hub, send, "127.0.0.1")
        _, token = connector.tokens.issue(VISITOR)
        assert await session.open(json.dumps({"type": "hello", "token": token})) is None
        frame = {"type": "message", "client_id": provider_message_id, "text": text}
        await session.receive(json.dumps(frame))
        welcome, answer = frames
        assert (welcome["type"], welcome["resumed"]) == ("welcome", True)
        assert answer["client_id"] == provider_message_id
        if answer["type"] == "error":
            assert not hub.recorded
            return WebhookOutcome(set_aside=(SetAside(answer["message"], answer),))
        assert answer["type"] == "ack"
        return WebhookOutcome(interactions=tuple(hub.recorded))

    def outbound(self) -> OutboundMessage:
        return OutboundMessage(
            message_id=uuid.uuid4(),
            channel="chat",
            address=f"chat:{VISITOR}",
            text="An agent's answer.",
        )

    async def unreachable_connector(self) -> ChatConnector:
        """Its state database on a PostgreSQL port nothing listens on."""
        url = f"postgresql+psycopg://hub:hub@127.0.0.1:{free_port()}/hub"
        connector = ChatConnector(SETTINGS, ConnectorContext(engine=create_engine(url)))
        await connector.start()
        return connector

    def test_off_without_settings(self) -> None:
        """The one connector that is on without settings: the hub is its own provider. Off
        only when turned off."""
        assert ChatSettings().enabled
        assert not ChatSettings(enabled=False).enabled


def test_the_gateway_creates_the_chat_tables_when_the_chat_is_on(
    make_settings: Callable[..., Settings], backend: str
) -> None:
    """A connector's tables (``Connector.tables``) come with it: none while it is off."""
    with running_app(make_settings(backend, chat={"enabled": False})) as api:
        assert api.runtime is not None
        tables = inspect(api.runtime.store.state_engine).get_table_names()
        assert "chat_mailbox" not in tables
    with running_app(make_settings(backend)) as api:
        assert api.runtime is not None
        assert {"chat_mailbox", "chat_keys"} <= set(
            inspect(api.runtime.store.state_engine).get_table_names()
        )
