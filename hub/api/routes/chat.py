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

Anyone can open the socket, so it is guarded: only pages of allowed origins (by default the
hub's own), new visitors and messages rate-limited per client network and per visitor
(``hub.connectors.chat.limits``), and every frame checked before use: a malformed frame or
text gets an ``error`` frame and the socket goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit
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
from hub.events.common import check_text, scrub_text
from hub.runtime import Runtime
from hub.runtime.group_commit import Unrecorded

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"])

_HELLO_SECONDS = 10.0
_POLL_SECONDS = 1.0  # how often a socket looks for messages other processes posted
_LAG_RETRY_SECONDS = 0.05  # a posted message the timeline has not projected yet
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A BCP 47 language tag as browsers give it (navigator.language); anything else is dropped.
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,6}")
_MAX_NAME = 200
_MAX_EMAIL = 320
_MAX_SEQ = 2**63 - 1  # the mailbox's BIGINT
_MAX_CODE_SENDS = 3
_CODE_RESEND_SECONDS = 30.0
_MAX_CODE_ATTEMPTS = 5
_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    origin = websocket.headers.get("origin")
    if not origin_allowed(
        origin,
        connector.settings.allowed_origins,
        runtime.settings.public_url,
        websocket.headers.get("host"),
    ):
        log.info("chat connection from origin %r refused", origin)
        await websocket.close(code=_POLICY_VIOLATION, reason="origin not allowed")
        return
    await websocket.accept()
    session = ChatSession(runtime, connector, websocket)
    with contextlib.suppress(WebSocketDisconnect):
        await session.run()


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower case and without a default port; None when
    it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    shown = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown}"


def origin_allowed(
    origin: str | None, allowed: tuple[str, ...], public_url: str | None, host: str | None
) -> bool:
    """Whether a page of ``origin`` may open the chat: one of ``allowed`` (``*``: any), or
    the hub's own: ``public_url``'s origin, or without one, the host the browser asked for
    (the hub's own ``/chat/`` page). A socket without an Origin comes from no page: refused
    unless any origin is allowed."""
    if "*" in allowed:
        return True
    if origin is None:
        return False
    asked = _origin(origin)
    if asked is None:
        return False
    if public_url:
        own = _origin(public_url)
    else:
        own = _origin(f"{urlsplit(origin).scheme}://{host}") if host else None
    return asked == own or asked in {_origin(a) for a in allowed}


class FrameError(Exception):
    """A frame the hub refuses: answered with an ``error`` frame, and the socket goes on."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _rate_limited(wait: float, message: str, **details: Any) -> FrameError:
    seconds = max(1, math.ceil(wait))
    return FrameError(
        "rate_limited", f"{message}; try again in {seconds} s", retry_after=seconds, **details
    )


def _name(value: object) -> str | None:
    """A display name as given: scrubbed (U+FFFD for NUL and lone surrogates, see
    ``scrub_text``) rather than refused, since a hello must not fail for it."""
    if not isinstance(value, str):
        return None
    return scrub_text(value).strip()[:_MAX_NAME].strip() or None


def _language(value: object) -> str | None:
    return value if isinstance(value, str) and _LANGUAGE.fullmatch(value) else None


class ChatSession:
    """One open widget: a visitor, the ``seq`` it has been shown, its pending verification."""

    def __init__(self, runtime: Runtime, connector: ChatConnector, socket: WebSocket) -> None:
        self.runtime = runtime
        self.connector = connector
        self.socket = socket
        # Behind a proxy: the X-Forwarded-For address uvicorn trusts (FORWARDED_ALLOW_IPS).
        self.client_host = socket.client.host if socket.client else None
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

    async def _receive_frame(self) -> dict[str, Any]:
        """The next frame, a JSON object; :class:`FrameError` for anything else."""
        message = await self.socket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        text = message.get("text")
        if not isinstance(text, str):
            raise FrameError("invalid_json", "a frame must be JSON text, not binary")
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):  # also: a number of over 4300 digits, deep nesting
            frame = None
        if not isinstance(frame, dict):
            raise FrameError("invalid_json", "a frame must be a JSON object")
        return frame

    def _spend(self, **details: Any) -> None:
        """Count a frame that records or mails something against this visitor's and this
        client network's budgets; :class:`FrameError` ``rate_limited`` when one is spent."""
        wait = self.connector.limits.message(self.client_host, self.visitor_id)
        if wait > 0:
            raise _rate_limited(wait, "you are sending messages too fast", **details)

    # -- hello -----------------------------------------------------------------------------

    async def _hello(self) -> bool:
        frame: dict[str, Any] | None
        try:
            frame = await asyncio.wait_for(self._receive_frame(), _HELLO_SECONDS)
        except (TimeoutError, FrameError):
            frame = None
        if frame is None or frame.get("type") != "hello":
            await self.error("hello_expected", "the first frame must be a hello")
            await self.socket.close(code=_POLICY_VIOLATION)
            return False
        tokens = self.connector.tokens
        token = frame.get("token")
        known = tokens.visitor(token) if isinstance(token, str) else None
        if known is None:
            wait = self.connector.limits.new_visitor(self.client_host)
            if wait > 0:
                refused = _rate_limited(wait, "too many new chats from your network")
                await self.error(refused.code, refused.message, **refused.details)
                await self.socket.close(code=_TRY_AGAIN_LATER)
                return False
        after = frame.get("after")
        # Not a bool (an int to Python), and within the mailbox's BIGINT.
        if known and isinstance(after, int) and not isinstance(after, bool):
            self.seq = after if 0 <= after <= _MAX_SEQ else 0
        self.name = _name(frame.get("name"))
        self.language = _language(frame.get("language"))
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
        handlers = {
            "message": self._message,
            "identify": self._identify,
            "verify": self._verify,
            "received": self._received,
            "ping": self._ping,
        }
        while not self.stopping.is_set():
            try:
                frame = await self._receive_frame()
                kind = frame.get("type")
                handler = handlers.get(kind) if isinstance(kind, str) else None
                if handler is None:
                    shown = repr(kind[:40]) if isinstance(kind, str) else "(none)"
                    raise FrameError("unknown_type", f"unknown frame type {shown}")
                await handler(frame)
            except FrameError as exc:
                await self.error(exc.code, exc.message, **exc.details)
            except DomainError as exc:
                await self.error(exc.code, exc.message, retryable=exc.status >= 500)

    async def _ping(self, _: dict[str, Any]) -> None:
        await self.send({"type": "pong"})

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("client_id"), frame.get("text")
        if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
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
        self._spend(client_id=client_id)
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
            raise FrameError("invalid_message", str(reason), client_id=client_id) from None
        (result,) = await self.runtime.submit([item])
        if isinstance(result, Unrecorded):  # only this message failed; the socket goes on
            raise FrameError(
                "unrecordable", "the message could not be recorded", client_id=client_id
            )
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
        email = frame.get("email")
        if not isinstance(email, str) or not email.strip() or len(email) > _MAX_EMAIL:
            raise FrameError("invalid_email", f"email: 1 to {_MAX_EMAIL} characters")
        try:
            check_text(email)
            address = str(normalise_address(f"email:{email}"))
        except (AddressError, ValueError) as exc:
            raise FrameError("invalid_email", str(exc)) from None
        self._spend()  # it may mail a code: counted like a message
        self.name = _name(frame.get("name")) or self.name
        found = await run_in_threadpool(
            lambda: self.runtime.commands.identity.link_address(
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
            raise FrameError("nothing_to_verify", "identify with an email first")
        if self.code_attempts >= _MAX_CODE_ATTEMPTS:
            raise FrameError("too_many_attempts", "identify again to get a new code")
        self._spend()  # guessing codes costs budget too
        wait = self.connector.limits.code_guess(self.visitor_id, address)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise FrameError(
                "too_many_attempts",
                f"too many codes tried for this address; try again in {seconds} s",
                retry_after=seconds,
            )
        self.code_attempts += 1
        if not isinstance(code, str) or not self.connector.tokens.check_code(
            self.visitor_id, address, code
        ):
            raise FrameError(
                "invalid_code",
                "that code is not the one we mailed, or it expired",
                attempts_left=_MAX_CODE_ATTEMPTS - self.code_attempts,
            )
        found = await run_in_threadpool(
            lambda: self.runtime.commands.identity.link_address(
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
        await run_in_threadpool(
            self.runtime.commands.update_delivery, shown, "delivered", datetime.now(UTC)
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
