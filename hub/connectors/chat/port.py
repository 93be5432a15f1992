"""What a chat session needs of the hub, named here so the chat stays below the runtime.

A connector imports ``hub.events`` and its own package only; the web chat also talks to the
visitor, so it needs more of the hub than a webhook does: recording a message and learning its
id at once, linking an email, marking a message delivered, reading what the timeline and the
directory show. :class:`ChatHub` is that, and ``hub.api.routes.chat`` passes the runtime's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from hub.connectors.base import Connector
from hub.events import InboundInteraction


class NotRecorded(Exception):
    """This message could not be recorded on its own (what was recorded with it was): the
    visitor is told, and the socket goes on."""


@dataclass(frozen=True, slots=True)
class Taken:
    """A visitor's message the hub took: its id, and whether it had been recorded already."""

    message_id: UUID
    duplicate: bool


class ShownMessage(Protocol):
    """A message as the timeline shows it."""

    @property
    def item_id(self) -> UUID: ...
    @property
    def direction(self) -> str | None: ...
    @property
    def text(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def provider_message_id(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class KnownIdentity(Protocol):
    """An address the directory shows for a customer."""

    @property
    def address(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def verified(self) -> bool: ...


class ChatHub(Protocol):
    """The hub as a chat session sees it. The synchronous calls block on the store or the
    views (the session runs them in a thread); the hub's own errors pass through them."""

    async def record(self, item: InboundInteraction) -> Taken:
        """Record a visitor's message (grouped with concurrent requests); raises
        :class:`NotRecorded` when only this one failed."""
        ...

    def link_email(
        self, owner: str, email: str, *, verified: bool, reason: str, display_name: str | None
    ) -> str:
        """Link ``email`` to the customer of address ``owner``; the outcome
        (``needs_verification`` when another customer owns it and it is not proven,
        ``merged`` when proving it merged the two)."""
        ...

    def mark_delivered(self, message_id: UUID, at: datetime) -> None:
        """The visitor was shown an agent's message."""
        ...

    def identities(self, address: str) -> Sequence[KnownIdentity]:
        """Every address of the customer (group) that owns ``address``; none when unknown."""
        ...

    def messages(self, message_ids: Sequence[UUID]) -> Mapping[UUID, ShownMessage]:
        """Messages by id, as the timeline shows them (those not projected yet are missing)."""
        ...

    async def wait_for_change(self, poke: asyncio.Event, timeout: float) -> None:
        """Return when the hub records something, ``poke`` is set, or after ``timeout``."""
        ...

    def mailer(self) -> Connector | None:
        """The connector that sends email (verification codes), when email is on."""
        ...
