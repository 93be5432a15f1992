"""The web chat over HTTP: the widget's script, a page that shows it, and its WebSocket
``/chat/ws``.

The protocol itself is ``hub.connectors.chat`` (a visitor's session: ``session``; the frames:
``frames``; codes mailed to prove an email: ``verification``; docs/chat.md has the full list).
This module only adapts the socket: the origin check, reading each frame for the session,
writing the frames it sends, closing with the code it names, and the hub's errors as error
frames. :class:`RuntimeChatHub` is the hub the session talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from importlib.resources import files
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response

from hub.api.auth import RuntimeDep
from hub.connectors.base import Connector
from hub.connectors.chat import ChatConnector
from hub.connectors.chat.frames import HELLO_SECONDS, POLICY_VIOLATION, Frame, encode
from hub.connectors.chat.origins import origin_allowed
from hub.connectors.chat.port import KnownIdentity, NotRecorded, ShownMessage, Taken
from hub.connectors.chat.session import ChatSession
from hub.domain.errors import DomainError
from hub.events import InboundInteraction
from hub.runtime import Runtime
from hub.runtime.group_commit import Unrecorded
from hub.web.errors import ApiError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"])


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
        await websocket.close(code=POLICY_VIOLATION, reason="the web chat is off")
        return
    origin = websocket.headers.get("origin")
    if not origin_allowed(
        origin,
        connector.settings.allowed_origins,
        runtime.settings.public_url,
        websocket.headers.get("host"),
    ):
        log.info("chat connection from origin %r refused", origin)
        await websocket.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    await websocket.accept()

    async def send(frame: Frame) -> None:
        await websocket.send_text(encode(frame))

    # Behind a proxy: the X-Forwarded-For address uvicorn trusts (FORWARDED_ALLOW_IPS).
    client_host = websocket.client.host if websocket.client else None
    session = ChatSession(connector, RuntimeChatHub(runtime), send, client_host)
    with contextlib.suppress(WebSocketDisconnect):
        await _converse(session, websocket, websocket.app.state.stopping)


async def _converse(session: ChatSession, websocket: WebSocket, stopping: asyncio.Event) -> None:
    try:
        first = await asyncio.wait_for(_next_frame(websocket), HELLO_SECONDS)
    except TimeoutError:
        first = None
    close_code = await session.open(first)
    if close_code is not None:
        await websocket.close(code=close_code)
        return
    pusher = asyncio.create_task(session.push())
    try:
        while not stopping.is_set():
            text = await _next_frame(websocket)
            try:
                await session.receive(text)
            except DomainError as exc:
                await session.error(exc.code, exc.message, retryable=exc.status >= 500)
    finally:
        pusher.cancel()
        with contextlib.suppress(BaseException):
            await pusher


async def _next_frame(websocket: WebSocket) -> str | None:
    """The next frame's text (None: a binary frame); :class:`WebSocketDisconnect` at the end."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


class RuntimeChatHub:
    """The runtime as a chat session's hub (:class:`hub.connectors.chat.port.ChatHub`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def record(self, item: InboundInteraction) -> Taken:
        (result,) = await self.runtime.submit([item])
        if isinstance(result, Unrecorded):
            raise NotRecorded(str(result.error))
        # A distributed ingest's answer (Accepted) cannot say whether it was a duplicate.
        return Taken(result.message_id, bool(getattr(result, "duplicate", False)))

    def link_email(
        self, owner: str, email: str, *, verified: bool, reason: str, display_name: str | None
    ) -> str:
        found = self.runtime.commands.identity.link_address(
            owner, email, verified=verified, reason=reason, display_name=display_name
        )
        return found.outcome

    def mark_delivered(self, message_id: UUID, at: datetime) -> None:
        self.runtime.commands.update_delivery(message_id, "delivered", at)

    def identities(self, address: str) -> Sequence[KnownIdentity]:
        with self.runtime.read() as conn:
            directory = self.runtime.views.directory
            found = directory.by_address(conn, address)
            profile = directory.profile(conn, found.customer_id) if found else None
        return profile.identities if profile else ()

    def messages(self, message_ids: Sequence[UUID]) -> Mapping[UUID, ShownMessage]:
        with self.runtime.read() as conn:
            return self.runtime.views.timeline.messages(conn, message_ids)

    async def wait_for_change(self, poke: asyncio.Event, timeout: float) -> None:
        await self.runtime.wait_for_change_or(poke, timeout)

    def mailer(self) -> Connector | None:
        return self.runtime.gateway.by_channel.get("email")
