"""The built-in SMTP listener: an aiosmtpd server on the connector's own event loop that takes
mail for the configured domains, parses it and answers ``250`` only once the sink has it."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from hub.connectors.base import InboundSink
from hub.connectors.email.parse import parse_message

log = logging.getLogger(__name__)

__all__ = ["InboundHandler", "parse_listen", "serve"]


class InboundHandler:
    """aiosmtpd hooks: refuse recipients outside ``domains``, hand each message to the sink."""

    def __init__(
        self,
        domains: list[str],
        sink: InboundSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.domains = frozenset(d.strip().lower().rstrip(".") for d in domains if d.strip())
        self.sink = sink
        self.clock = clock

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        domain = address.rpartition("@")[2].strip().lower().rstrip(".")
        if domain not in self.domains:
            # Not ours: accepting it would make the hub an open relay or a spam trap.
            return "550 5.7.1 Relaying denied: not a domain of this server"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8") if isinstance(content, str) else content or b""
        # A message parse_message cannot make sense of comes back set aside: accepting it
        # puts it on the dead-letter list; refusing it would have the sender retry for days.
        outcome = parse_message(raw, received_at=self.clock())
        try:
            await self.sink(outcome)
        except Exception:
            # Not durable, so not accepted: the sending MTA keeps it and retries.
            log.exception("email: the sink failed; answering 451 so the sender retries")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 OK: message accepted"


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) -> ``(host, port)``."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen must be host:port, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(
    handler: InboundHandler,
    listen: str,
    *,
    max_message_bytes: int,
    hostname: str,
    on_bound: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Serve SMTP on ``listen`` until cancelled, on the running loop (the sink belongs to it)."""
    loop = asyncio.get_running_loop()
    host, port = parse_listen(listen)
    # Weak: a finished session must not be kept alive just to be closed on shutdown.
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def protocol() -> SMTP:
        smtp = SMTP(
            handler,
            data_size_limit=max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            # Given, so aiosmtpd does not resolve the machine's FQDN per connection.
            hostname=hostname,
            ident="interaction-hub",
            loop=loop,
        )
        sessions.add(smtp)
        return smtp

    server = await loop.create_server(protocol, host, port)
    bound: Any = server.sockets[0].getsockname()
    log.info("email: SMTP listener on %s:%s", bound[0], bound[1])
    if on_bound is not None:
        on_bound((str(bound[0]), int(bound[1])))
    try:
        await server.serve_forever()
    finally:
        server.close()
        for smtp in list(sessions):
            if smtp.transport is not None:
                smtp.transport.close()
        await server.wait_closed()
