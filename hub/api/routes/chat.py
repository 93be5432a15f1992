"""The web chat: the widget's script, a page that shows it, and its WebSocket ``/chat/ws``.

The protocol is JSON text frames (docs/chat.md has the full list):

- the widget opens with ``hello`` (its visitor token, if it has one, and the last ``seq`` it
  showed); the hub answers ``welcome`` with a token to keep, then every message after ``seq``;
- ``message`` (``client_id``, ``text``): recorded like any channel's interaction, then ``ack``.
  The provider message id is the visitor's ``client_id``, so a message resent after a lost
  connection is recorded once;
- ``identify`` (``email``): the address is linked to the visitor unverified, and a code is
  mailed to it; ``verify`` (``code``) proves it: then the address is marked verified, and if
  another customer owned it, the visitor's customer is merged into theirs;
- ``received`` (``message_id``): the widget showed an agent's message: it is delivered.

The hub pushes ``message`` frames (both directions, so every tab of a visitor stays in step) as
they become visible in the visitor's mailbox (``hub.connectors.chat.mailbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hub.api.auth import RuntimeDep
from hub.api.errors import ApiError
from hub.connectors.base import Connector, ConnectorError, OutboundMessage
from hub.connectors.chat import ChatConnector
from hub.domain.errors import DomainError
from hub.events import AddressError, InboundInteraction, normalise_address
from hub.runtime import Runtime
from hub.writes import Unrecorded

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"])

_HELLO_SECONDS = 10.0
_POLL_SECONDS = 1.0  # how often a socket looks for messages other processes posted
_LAG_RETRY_SECONDS = 0.05  # a posted message the timeline has not projected yet
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_CODE_SENDS = 3
_CODE_RESEND_SECONDS = 30.0
_MAX_CODE_ATTEMPTS = 5
_POLICY_VIOLATION = 1008


def _widget_source() -> str:
    return files("hub.connectors.chat").joinpath("widget.js").read_text(encoding="utf-8")


@router.get("/widget.js", include_in_schema=False)
async def widget_script(runtime: RuntimeDep) -> Response:
    """The embeddable widget: ``<script src="https://hub.example.com/chat/widget.js" async>``."""
    if "chat" not in runtime.gateway.by_name:
        raise ApiError(404, "not_found", "the web chat is off (HUB_CHAT__ENABLED)")
    return Response(
        _widget_source(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/", include_in_schema=False)
async def demo_page(runtime: RuntimeDep) -> HTMLResponse:
    """A page with the widget on it, to try the chat (``make run``)."""
    if "chat" not in runtime.gateway.by_name:
        raise ApiError(404, "not_found", "the web chat is off (HUB_CHAT__ENABLED)")
    title = runtime.settings.chat.title
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}: web chat demo</title></head><body>"
        "<main><h1>Web chat demo</h1><p>The chat button sits at the bottom right. What you "
        "write shows in the agents' timeline; their replies come back here.</p></main>"
        f'<script src="/chat/widget.js" data-title="{escape(title)}" async></script>'
        "</body></html>"
    )


@router.websocket("/ws")
async def chat_socket(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    connector = runtime.gateway.by_name.get("chat")
    if not isinstance(connector, ChatConnector):
        await websocket.close(code=_POLICY_VIOLATION, reason="the web chat is off")
        return
    allowed = connector.settings.allowed_origins
    origin = websocket.headers.get("origin")
    if allowed and origin not in allowed:
        log.info("chat connection from origin %r refused", origin)
        await websocket.close(code=_POLICY_VIOLATION, reason="origin not allowed")
        return
    await websocket.accept()
    session = ChatSession(runtime, connector, websocket)
    with contextlib.suppress(WebSocketDisconnect):
        await session.run()


class ChatSession:
    """One open widget: a visitor, the ``seq`` it has been shown, its pending verification."""

    def __init__(self, runtime: Runtime, connector: ChatConnector, socket: WebSocket) -> None:
        self.runtime = runtime
        self.connector = connector
        self.socket = socket
        self.visitor_id = ""
        self.name: str | None = None
        self.language: str | None = None  # the browser's, sent with the visitor's messages
        self.seq = 0
        self.shown_outbound: set[UUID] = set()
        self.poke = asyncio.Event()
        self.stopping: asyncio.Event = socket.app.state.stopping
        self.pending_email: str | None = None
        self.code_sends: list[float] = []
        self.code_attempts = 0

    @property
    def address(self) -> str:
        return f"chat:{self.visitor_id}"

    async def run(self) -> None:
        if not await self._hello():
            return
        pusher = asyncio.create_task(self._push())
        try:
            await self._read()
        finally:
            pusher.cancel()
            with contextlib.suppress(BaseException):
                await pusher

    async def send(self, frame: dict[str, Any]) -> None:
        await self.socket.send_text(json.dumps(frame, separators=(",", ":"), default=str))

    async def error(self, code: str, message: str, **details: Any) -> None:
        await self.send({"type": "error", "code": code, "message": message, **details})

    # -- hello -----------------------------------------------------------------------------

    async def _hello(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.socket.receive_text(), _HELLO_SECONDS)
            frame = json.loads(raw)
        except (TimeoutError, json.JSONDecodeError, KeyError):
            frame = None
        if not isinstance(frame, dict) or frame.get("type") != "hello":
            await self.error("hello_expected", "the first frame must be a hello")
            await self.socket.close(code=_POLICY_VIOLATION)
            return False
        tokens = self.connector.tokens
        token = frame.get("token")
        known = tokens.visitor(token) if isinstance(token, str) else None
        after = frame.get("after")
        self.seq = after if known and isinstance(after, int) and after >= 0 else 0
        name, language = frame.get("name"), frame.get("language")
        self.name = name.strip()[:200] or None if isinstance(name, str) else None
        self.language = language.strip()[:35] or None if isinstance(language, str) else None
        # A known visitor gets a fresh token (its validity runs from today).
        self.visitor_id, new_token = tokens.issue(known)
        email = await run_in_threadpool(self._verified_email) if known else None
        await self.send(
            {
                "type": "welcome",
                "token": new_token,
                "visitor_id": self.visitor_id,
                "resumed": known is not None,
                "title": self.connector.settings.title,
                "verification": self._email_connector() is not None,
                "email": email,
            }
        )
        return True

    def _verified_email(self) -> str | None:
        """The email the visitor has proven, if any (the widget then asks no more)."""
        with self.runtime.read() as conn:
            directory = self.runtime.views.directory
            found = directory.by_address(conn, self.address)
            profile = directory.profile(conn, found.customer_id) if found else None
        if profile is None:
            return None
        for identity in profile.identities:
            if identity.kind == "email" and identity.verified:
                return identity.address.partition(":")[2]
        return None

    # -- the visitor's frames ----------------------------------------------------------------

    async def _read(self) -> None:
        while not self.stopping.is_set():
            raw = await self.socket.receive_text()
            try:
                frame = json.loads(raw)
            except json.JSONDecodeError:
                await self.error("invalid_json", "a frame must be a JSON object")
                continue
            kind = frame.get("type") if isinstance(frame, dict) else None
            handler = {
                "message": self._message,
                "identify": self._identify,
                "verify": self._verify,
                "received": self._received,
                "ping": self._ping,
            }.get(kind if isinstance(kind, str) else "")
            if handler is None:
                await self.error("unknown_type", f"unknown frame type {kind!r}")
                continue
            try:
                await handler(frame)
            except DomainError as exc:
                await self.error(exc.code, exc.message, retryable=exc.status >= 500)

    async def _ping(self, _: dict[str, Any]) -> None:
        await self.send({"type": "pong"})

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("client_id"), frame.get("text")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            await self.error("invalid_message", "client_id: 1 to 64 letters, digits, - or _")
            return
        limit = self.connector.settings.max_text
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            await self.error(
                "invalid_message", f"text: 1 to {limit} characters", client_id=client_id
            )
            return
        try:
            item = InboundInteraction(
                channel="chat",
                direction="inbound",
                address=self.address,
                provider_message_id=f"{self.visitor_id}:{client_id}",
                occurred_at=datetime.now(UTC),
                text=text,
                contact_name=self.name,
                metadata={"language": self.language} if self.language else {},
            )
        except ValidationError as exc:
            reason = exc.errors()[0].get("msg", "invalid")
            await self.error("invalid_message", str(reason), client_id=client_id)
            return
        (result,) = await self.runtime.record_async([item])
        if isinstance(result, Unrecorded):  # only this message failed; the socket goes on
            await self.error(
                "unrecordable", "the message could not be recorded", client_id=client_id
            )
            return
        await run_in_threadpool(
            self.connector.mailbox.post, self.visitor_id, result.message_id, "inbound"
        )
        self.poke.set()
        await self.send(
            {
                "type": "ack",
                "client_id": client_id,
                "message_id": str(result.message_id),
                "duplicate": bool(getattr(result, "duplicate", False)),
            }
        )

    async def _identify(self, frame: dict[str, Any]) -> None:
        email, name = frame.get("email"), frame.get("name")
        try:
            address = str(normalise_address(f"email:{email}" if isinstance(email, str) else ""))
        except AddressError as exc:
            await self.error("invalid_email", str(exc))
            return
        if isinstance(name, str) and name.strip():
            self.name = name.strip()[:200]
        found = await run_in_threadpool(
            lambda: self.runtime.link_address(
                self.address,
                address,
                verified=False,
                reason="chat_visitor",
                display_name=self.name,
            )
        )
        self.pending_email = address
        self.code_attempts = 0
        sent = await self._send_code(address)
        await self.send(
            {
                "type": "identity",
                "email": address.partition(":")[2],
                "verified": False,
                "linked": found.outcome != "needs_verification",
                "code_sent": sent,
            }
        )

    async def _send_code(self, address: str) -> bool:
        email = self._email_connector()
        now = time.monotonic()
        recent = [t for t in self.code_sends if now - t < _CODE_RESEND_SECONDS]
        if email is None or len(self.code_sends) >= _MAX_CODE_SENDS or recent:
            return False
        code = self.connector.tokens.code(self.visitor_id, address)
        minutes = self.connector.settings.code_minutes
        message = OutboundMessage(
            message_id=uuid4(),
            channel="email",
            address=address,
            subject=f"Your code: {code}",
            text=(
                f"Your verification code is {code}.\n\nType it in the chat window to confirm "
                f"that this address is yours. It is valid for {minutes} minutes. If you did "
                "not ask for it, ignore this message."
            ),
        )
        try:
            await email.send(message)
        except ConnectorError as exc:
            log.warning("chat: the verification code could not be mailed: %s", exc.reason)
            return False
        self.code_sends.append(now)
        return True

    async def _verify(self, frame: dict[str, Any]) -> None:
        code = frame.get("code")
        address = self.pending_email
        if address is None:
            await self.error("nothing_to_verify", "identify with an email first")
            return
        if self.code_attempts >= _MAX_CODE_ATTEMPTS:
            await self.error("too_many_attempts", "identify again to get a new code")
            return
        self.code_attempts += 1
        if not isinstance(code, str) or not self.connector.tokens.check_code(
            self.visitor_id, address, code
        ):
            await self.error(
                "invalid_code",
                "that code is not the one we mailed, or it expired",
                attempts_left=_MAX_CODE_ATTEMPTS - self.code_attempts,
            )
            return
        found = await run_in_threadpool(
            lambda: self.runtime.link_address(
                self.address, address, verified=True, reason="verification"
            )
        )
        self.pending_email = None
        await self.send(
            {
                "type": "identity",
                "email": address.partition(":")[2],
                "verified": True,
                "linked": True,
                "merged": found.outcome == "merged",
            }
        )

    async def _received(self, frame: dict[str, Any]) -> None:
        try:
            message_id = UUID(str(frame.get("message_id")))
        except ValueError:
            await self.error("invalid_message_id", "message_id must be a UUID")
            return
        if message_id not in self.shown_outbound:
            return  # not a message this widget was shown: nothing to say about it
        self.shown_outbound.discard(message_id)
        await run_in_threadpool(
            self.runtime.update_delivery, message_id, "delivered", datetime.now(UTC)
        )

    def _email_connector(self) -> Connector | None:
        return self.runtime.gateway.by_channel.get("email")

    # -- pushing what the visitor should see -------------------------------------------------

    async def _push(self) -> None:
        while True:
            sent, waiting = await self._push_once()
            if sent:
                continue
            if waiting:
                await asyncio.sleep(_LAG_RETRY_SECONDS)
                continue
            await self._wait()

    async def _push_once(self) -> tuple[int, bool]:
        """Send what was posted after ``seq``; returns (how many, whether one is not in the
        timeline yet)."""
        posted = await run_in_threadpool(self.connector.mailbox.after, self.visitor_id, self.seq)
        if not posted:
            return 0, False

        def load() -> dict[UUID, Any]:
            with self.runtime.read() as conn:
                return self.runtime.views.timeline.messages(conn, [p.message_id for p in posted])

        items = await run_in_threadpool(load)
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
                    "client_id": _client_id(item.provider_message_id, self.visitor_id),
                }
            )
            self.seq = entry.seq
            sent += 1
        return sent, False

    async def _wait(self) -> None:
        try:
            await self.runtime.wait_for_change_or(self.poke, _POLL_SECONDS)
        finally:
            self.poke.clear()


def _client_id(provider_message_id: str | None, visitor_id: str) -> str | None:
    prefix = f"{visitor_id}:"
    if provider_message_id and provider_message_id.startswith(prefix):
        return provider_message_id[len(prefix) :]
    return None
