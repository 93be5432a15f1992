"""One open widget: a visitor's session, from its ``hello`` to the frames it sends and the
messages pushed to it (the protocol: docs/chat.md).

The session knows no WebSocket: the route (``hub.api.routes.chat``) reads each frame's text
and hands it over (:meth:`ChatSession.open`, then :meth:`ChatSession.receive`), runs
:meth:`ChatSession.push` beside it, and writes the frames the session sends. It talks to the
hub through :class:`~hub.connectors.chat.port.ChatHub`.

- ``message``: recorded like any channel's interaction, then ``ack``. The provider message id
  is ``<visitor id>:<client id>``, so a message resent after a lost connection is recorded once.
  One with ``choice: true`` is a survey button's answer (its text the score): its metadata
  says so (``survey_choice``), and the survey records the score ``via`` button;
- ``identify`` / ``verify``: an email linked unverified, then proven by a mailed code
  (``verification``); proving an address another customer owns merges into theirs;
- ``received``: the widget showed an agent's message: it is delivered.

Messages are pushed as they become visible in the visitor's mailbox (``mailbox``), both
directions, so every tab of a visitor stays in step; a survey's question carries its answer
buttons (``survey``), a button's answer says it was one (``choice``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from hub.connectors.chat.acquisition import page_source
from hub.connectors.chat.connector import ChatConnector
from hub.connectors.chat.frames import (
    CHOICE,
    CLIENT_ID,
    MAX_EMAIL,
    MAX_SEQ,
    POLICY_VIOLATION,
    SURVEY_CHOICE,
    TRY_AGAIN_LATER,
    Frame,
    FrameError,
    clean_language,
    clean_name,
    client_id_of,
    decode,
    is_choice,
    rate_limited,
    survey_of,
)
from hub.connectors.chat.port import ChatHub, NotRecorded
from hub.connectors.chat.verification import Verification
from hub.events import AddressError, InboundInteraction, normalise_address
from hub.events.common import check_text
from hub.events.inbound import InboundSource

#: Writes one frame to the widget.
Send = Callable[[Frame], Awaitable[None]]

_POLL_SECONDS = 1.0  # how often a session looks for messages other processes posted
_LAG_RETRY_SECONDS = 0.05  # a posted message the timeline has not projected yet


class ChatSession:
    """One open widget: a visitor, the ``seq`` it has been shown, its pending verification."""

    def __init__(
        self, connector: ChatConnector, hub: ChatHub, send: Send, client_host: str | None
    ) -> None:
        self.connector = connector
        self.hub = hub
        self.send = send
        self.client_host = client_host  # whose network budgets it spends
        self.visitor_id = ""
        self.name: str | None = None
        self.language: str | None = None  # the browser's, sent with the visitor's messages
        #: The page's utm_* and referrer (hello's page and referrer): the first contact's
        #: acquisition source.
        self.source: InboundSource | None = None
        self.seq = 0
        self.shown_outbound: set[UUID] = set()
        self.poke = asyncio.Event()
        self.verification = Verification(
            connector.tokens, connector.limits, connector.settings.code_minutes
        )
        self._handlers: dict[str, Callable[[Frame], Awaitable[None]]] = {
            "message": self._message,
            "identify": self._identify,
            "verify": self._verify,
            "received": self._received,
            "ping": self._ping,
        }

    @property
    def address(self) -> str:
        return f"chat:{self.visitor_id}"

    async def error(self, code: str, message: str, **details: Any) -> None:
        await self.send({"type": "error", "code": code, "message": message, **details})

    # -- hello -----------------------------------------------------------------------------

    async def open(self, text: str | None) -> int | None:
        """Take the first frame (``text`` None: none came in time, or a binary one) and
        answer ``welcome``; else the code to close the socket with."""
        try:
            frame: Frame | None = decode(text)
        except FrameError:
            frame = None
        if frame is None or frame.get("type") != "hello":
            await self.error("hello_expected", "the first frame must be a hello")
            return POLICY_VIOLATION
        tokens = self.connector.tokens
        token = frame.get("token")
        known = tokens.visitor(token) if isinstance(token, str) else None
        if known is None:
            wait = self.connector.limits.new_visitor(self.client_host)
            if wait > 0:
                await self.send(rate_limited(wait, "too many new chats from your network").frame())
                return TRY_AGAIN_LATER
        after = frame.get("after")
        # Not a bool (an int to Python), and within the mailbox's BIGINT.
        if known and isinstance(after, int) and not isinstance(after, bool):
            self.seq = after if 0 <= after <= MAX_SEQ else 0
        self.name = clean_name(frame.get("name"))
        self.language = clean_language(frame.get("language"))
        self.source = page_source(frame.get("page"), frame.get("referrer"))
        # A known visitor gets a fresh token (its validity runs from today).
        self.visitor_id, new_token = tokens.issue(known)
        email = await asyncio.to_thread(self._verified_email) if known else None
        await self.send(
            {
                "type": "welcome",
                "token": new_token,
                "visitor_id": self.visitor_id,
                "resumed": known is not None,
                "title": self.connector.settings.title,
                "verification": self.hub.mailer() is not None,
                "email": email,
            }
        )
        return None

    def _verified_email(self) -> str | None:
        """The email the visitor has proven, if any (the widget then asks no more)."""
        for identity in self.hub.identities(self.address):
            if identity.kind == "email" and identity.verified:
                return identity.address.partition(":")[2]
        return None

    # -- the visitor's frames ----------------------------------------------------------------

    async def receive(self, text: str | None) -> None:
        """Handle one frame after the hello (``text`` None: a binary one). A refused frame is
        answered with an ``error`` frame; the hub's own errors pass through."""
        try:
            frame = decode(text)
            kind = frame.get("type")
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                shown = repr(kind[:40]) if isinstance(kind, str) else "(none)"
                raise FrameError("unknown_type", f"unknown frame type {shown}")
            await handler(frame)
        except FrameError as exc:
            await self.send(exc.frame())

    def _spend(self, **details: Any) -> None:
        """Count a frame that records or mails something against this visitor's and this
        client network's budgets; :class:`FrameError` ``rate_limited`` when one is spent."""
        wait = self.connector.limits.message(self.client_host, self.visitor_id)
        if wait > 0:
            raise rate_limited(wait, "you are sending messages too fast", **details)

    async def _ping(self, _: Frame) -> None:
        await self.send({"type": "pong"})

    async def _message(self, frame: Frame) -> None:
        client_id, text = frame.get("client_id"), frame.get("text")
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise FrameError("invalid_message", "client_id: 1 to 64 letters, digits, - or _")
        limit = self.connector.settings.max_text
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise FrameError(
                "invalid_message", f"text: 1 to {limit} characters", client_id=client_id
            )
        try:
            # Refused, not scrubbed: the visitor is there to be told, and what a customer
            # wrote is never silently altered.
            check_text(text)
        except ValueError as exc:
            raise FrameError("invalid_text", f"text: {exc}", client_id=client_id) from None
        choice = frame.get("choice")  # absent, null or false: a message the visitor wrote
        marked = choice is True
        if not (choice is None or choice is False or (marked and CHOICE.fullmatch(text))):
            raise FrameError(
                "invalid_message",
                "choice: true only for a survey button's score (0 to 10) as the text",
                client_id=client_id,
            )
        self._spend(client_id=client_id)
        metadata: dict[str, Any] = {"language": self.language} if self.language else {}
        if marked:
            metadata[SURVEY_CHOICE] = True
        try:
            item = InboundInteraction(
                channel="chat",
                direction="inbound",
                address=self.address,
                provider_message_id=f"{self.visitor_id}:{client_id}",
                occurred_at=datetime.now(UTC),
                text=text,
                contact_name=self.name,
                metadata=metadata,
                source=self.source,
            )
        except ValidationError as exc:
            reason = exc.errors()[0].get("msg", "invalid")
            raise FrameError("invalid_message", str(reason), client_id=client_id) from None
        try:
            taken = await self.hub.record(item)
        except NotRecorded:  # only this message failed; the socket goes on
            raise FrameError(
                "unrecordable", "the message could not be recorded", client_id=client_id
            ) from None
        await asyncio.to_thread(
            self.connector.mailbox.post, self.visitor_id, taken.message_id, "inbound"
        )
        self.poke.set()
        await self.send(
            {
                "type": "ack",
                "client_id": client_id,
                "message_id": str(taken.message_id),
                "duplicate": taken.duplicate,
            }
        )

    async def _identify(self, frame: Frame) -> None:
        email = frame.get("email")
        if not isinstance(email, str) or not email.strip() or len(email) > MAX_EMAIL:
            raise FrameError("invalid_email", f"email: 1 to {MAX_EMAIL} characters")
        try:
            check_text(email)
            address = str(normalise_address(f"email:{email}"))
        except (AddressError, ValueError) as exc:
            raise FrameError("invalid_email", str(exc)) from None
        self._spend()  # it may mail a code: counted like a message
        self.name = clean_name(frame.get("name")) or self.name
        outcome = await asyncio.to_thread(
            lambda: self.hub.link_email(
                self.address,
                address,
                verified=False,
                reason="chat_visitor",
                display_name=self.name,
            )
        )
        self.verification.begin(address)
        sent = await self.verification.mail_code(self.hub.mailer(), self.visitor_id, address)
        await self.send(
            {
                "type": "identity",
                "email": address.partition(":")[2],
                "verified": False,
                "linked": outcome != "needs_verification",
                "code_sent": sent,
            }
        )

    async def _verify(self, frame: Frame) -> None:
        address = self.verification.expecting()
        self._spend()  # guessing codes costs budget too
        self.verification.check(self.visitor_id, address, frame.get("code"))
        outcome = await asyncio.to_thread(
            lambda: self.hub.link_email(
                self.address, address, verified=True, reason="verification", display_name=None
            )
        )
        self.verification.proven()
        await self.send(
            {
                "type": "identity",
                "email": address.partition(":")[2],
                "verified": True,
                "linked": True,
                "merged": outcome == "merged",
            }
        )

    async def _received(self, frame: Frame) -> None:
        message_id = frame.get("message_id")
        try:
            shown = UUID(message_id) if isinstance(message_id, str) else None
        except ValueError:
            shown = None
        if shown is None:
            raise FrameError("invalid_message_id", "message_id must be a UUID")
        if shown not in self.shown_outbound:
            return  # not a message this widget was shown: nothing to say about it
        self.shown_outbound.discard(shown)
        await asyncio.to_thread(self.hub.mark_delivered, shown, datetime.now(UTC))

    # -- pushing what the visitor should see -------------------------------------------------

    async def push(self) -> None:
        """Send the visitor's messages as they become visible, until cancelled."""
        while True:
            sent, waiting = await self._push_once()
            if sent:
                continue
            if waiting:
                await asyncio.sleep(_LAG_RETRY_SECONDS)
                continue
            try:
                await self.hub.wait_for_change(self.poke, _POLL_SECONDS)
            finally:
                self.poke.clear()

    async def _push_once(self) -> tuple[int, bool]:
        """Send what was posted after ``seq``; returns (how many, whether one is not in the
        timeline yet)."""
        posted = await asyncio.to_thread(self.connector.mailbox.after, self.visitor_id, self.seq)
        if not posted:
            return 0, False
        items = await asyncio.to_thread(self.hub.messages, [p.message_id for p in posted])
        sent = 0
        for entry in posted:
            item = items.get(entry.message_id)
            if item is None:
                return sent, True  # the projection lags: keep the order, wait for it
            if entry.direction == "outbound":
                self.shown_outbound.add(item.item_id)
            await self.send(
                {
                    "type": "message",
                    "seq": entry.seq,
                    "message_id": str(item.item_id),
                    "direction": item.direction,
                    "text": item.text,
                    "at": item.occurred_at.isoformat(),
                    "author": item.data.get("author"),
                    "client_id": client_id_of(item.provider_message_id, self.visitor_id),
                    # A survey's question: its answer buttons; a visitor's: whether it was one.
                    "survey": survey_of(item.data) if item.direction == "outbound" else None,
                    "choice": item.direction == "inbound" and is_choice(item.data),
                }
            )
            self.seq = entry.seq
            sent += 1
        return sent, False
