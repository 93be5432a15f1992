"""The web chat channel: the hub is its own provider.

Visitors talk to ``/chat/ws``: the route (``hub.api.routes.chat``) adapts the WebSocket, a
:class:`~hub.connectors.chat.session.ChatSession` speaks the protocol. This connector is what
both share, and the part the dispatcher sees: "sending" an agent's reply posts it to the
visitor's mailbox, from which every open widget of that visitor receives it at once (and a
widget that connects later, on resume); the widget's receipt marks it delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from hub.connectors.base import (
    Connector,
    OutboundMessage,
    PermanentError,
    RetryableError,
    SendResult,
)
from hub.connectors.chat.limits import ChatLimits
from hub.connectors.chat.mailbox import Mailbox, metadata
from hub.connectors.chat.tokens import VisitorTokens, new_key
from hub.connectors.settings import ChatSettings
from hub.events import Channel

_DAY = 86_400.0


class ChatConnector(Connector):
    name: ClassVar[str] = "chat"
    channels: ClassVar[tuple[Channel, ...]] = ("chat",)
    settings_model = ChatSettings
    #: The mailboxes and the signing key, in the hub's state database.
    tables: ClassVar[MetaData | None] = metadata
    #: Posting to a mailbox is keyed by the message id: a repeated send is harmless.
    idempotent_sends: ClassVar[bool] = True
    rate_per_second: ClassVar[float] = 1000.0

    settings: ChatSettings
    mailbox: Mailbox
    tokens: VisitorTokens

    @classmethod
    def forget(cls, engine: Engine, addresses: Sequence[str]) -> int:
        """An erased visitor's mailbox goes (message ids, but the list is theirs)."""
        visitors = [a.partition(":")[2] for a in addresses if a.startswith("chat:")]
        return Mailbox(engine).forget(visitors) if visitors else 0

    limits: ChatLimits

    async def start(self) -> None:
        if self.context.engine is None:
            raise RuntimeError("the chat connector needs the hub's state database")
        self.mailbox = Mailbox(self.context.engine)
        self.limits = ChatLimits(self.settings)  # this process's share of the traffic
        configured = self.settings.secret
        key = (
            configured.get_secret_value()
            if configured is not None
            else await asyncio.to_thread(self.mailbox.signing_key, new_key())
        )
        self.tokens = VisitorTokens(
            key,
            max_age_seconds=self.settings.token_days * _DAY,
            code_seconds=self.settings.code_minutes * 60.0,
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        """Post to the visitor's mailbox. The state database is this channel's provider:
        unreachable or busy is :class:`RetryableError`, a row it refuses is
        :class:`PermanentError`."""
        kind, _, visitor_id = message.address.partition(":")
        if kind != "chat" or not visitor_id:
            raise PermanentError(f"the web chat cannot reach a {kind!r} address")
        try:
            await asyncio.to_thread(self.mailbox.post, visitor_id, message.message_id, "outbound")
        except (OperationalError, InterfaceError) as exc:
            raise RetryableError(f"the chat mailbox is unavailable: {exc.orig}") from exc
        except (DataError, IntegrityError) as exc:
            raise PermanentError(f"the chat mailbox refused the message: {exc.orig}") from exc
        return SendResult(provider_message_id=f"chat:{message.message_id}", status="sent")
