"""The email connector: sends through an SMTP relay (aiosmtplib), receives through the built-in
SMTP listener and, when a mailbox is configured, the IMAP poller."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import ClassVar

import aiosmtplib

from hub.connectors.base import (
    Connector,
    ConnectorContext,
    InboundSink,
    OutboundMessage,
    PermanentError,
    RetryableError,
    SendResult,
)
from hub.connectors.email.imap import ImapPoller
from hub.connectors.email.smtp_listener import InboundHandler, serve
from hub.connectors.settings import EmailSettings
from hub.events.addresses import AddressError, check_deliverable_email

log = logging.getLogger(__name__)

__all__ = ["EmailConnector"]

_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class EmailConnector(Connector):
    """Email in and out. A new SMTP connection per send: sends are few per second, and a
    fresh connection has no stale-session failure modes (relays drop idle clients)."""

    name: ClassVar[str] = "email"
    channels = ("email",)
    settings_model = EmailSettings
    # SMTP takes no idempotency key: a send cut off by a crash is reconciled, not repeated.
    idempotent_sends = False
    rate_per_second = 5.0

    settings: EmailSettings

    def __init__(self, settings: EmailSettings, context: ConnectorContext | None = None) -> None:
        super().__init__(settings, context)
        #: Where the SMTP listener is bound once :meth:`run` started it (port 0 picks one).
        self.listening_on: tuple[str, int] | None = None

    def problems(self) -> list[str]:
        found = []
        if not self.settings.from_address:
            found.append("email: from_address is not set")
        if self.settings.listen and not self.settings.domains:
            found.append("email: the SMTP listener accepts no recipients (domains is empty)")
        return found

    # -- inbound -------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        async with asyncio.TaskGroup() as tasks:
            if self.settings.listen:
                if not self.settings.domains:
                    log.warning("email: domains is empty; the SMTP listener refuses all mail")
                handler = InboundHandler(self.settings.domains, sink)
                tasks.create_task(
                    serve(
                        handler,
                        self.settings.listen,
                        max_message_bytes=self.settings.max_message_bytes,
                        hostname=self._domain() or "localhost",
                        on_bound=self._bound,
                    )
                )
            if self.settings.imap_url is not None:
                tasks.create_task(ImapPoller(self.settings, self.context.state).run(sink))

    def _bound(self, address: tuple[str, int]) -> None:
        self.listening_on = address

    # -- outbound ------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        settings = self.settings
        if not settings.smtp_host or not settings.from_address:
            raise PermanentError("email: smtp_host and from_address must be set to send")
        mail = self.compose(message)
        security = settings.smtp_security
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value()
                if settings.smtp_username and settings.smtp_password
                else None
            ),
            timeout=settings.smtp_timeout,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            cert_bundle=settings.smtp_ca_file,
        )
        try:
            async with client:
                await client.send_message(mail)
        except Exception as exc:
            raise _classify(exc) from exc
        return SendResult(provider_message_id=str(mail["Message-ID"]), status="sent")

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The RFC 5322 message for ``message`` (public for tests and previews)."""
        kind, _, recipient = message.address.partition(":")
        if kind != "email" or "@" not in recipient:
            raise PermanentError(f"email cannot send to {message.address!r}")
        try:
            # An identity may be any valid address (``.local``, ``@intranet``); a destination
            # must be reachable across the internet, as the hub always required.
            check_deliverable_email(recipient)
        except AddressError as exc:
            raise PermanentError(
                f"email cannot send to {message.address!r}: {exc.reason}"
            ) from None
        domain = self._domain()
        if domain is None:
            raise PermanentError("email: from_address must be set to send")
        mail = EmailMessage()
        mail["From"] = Address(
            display_name=self.settings.from_name or "", addr_spec=self.settings.from_address or ""
        )
        mail["To"] = recipient
        # The caller decides the subject ("Re: ..." included); none given stays empty rather
        # than a made-up "(no subject)" the customer would see.
        mail["Subject"] = message.subject or ""
        mail["Date"] = format_datetime(datetime.now(UTC))
        # Derived from the hub's id, so a resend after a crash carries the same Message-ID and
        # replies and bounces match whichever copy arrived.
        mail["Message-ID"] = f"<{message.message_id}@{domain}>"
        references = [_bracketed(r) for r in message.references]
        if message.in_reply_to:
            parent = _bracketed(message.in_reply_to)
            mail["In-Reply-To"] = parent
            if parent not in references:  # RFC 5322 3.6.4: References ends with the parent
                references.append(parent)
        if references:
            mail["References"] = " ".join(references)
        if message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        mail.set_content(message.text, charset="utf-8")
        if message.html:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        return mail

    def _domain(self) -> str | None:
        address = self.settings.from_address
        if not address:
            return None
        return address.rpartition("@")[2].strip().lower() or None


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def _classify(exc: Exception) -> Exception:
    """An aiosmtplib failure as the hub's retry-or-not error."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = f"{exc.code}"
        enhanced = _ENHANCED_STATUS.match(exc.message)
        if enhanced:
            code = f"{code} {enhanced.group(1)}"
        reason = f"SMTP {exc.code}: {exc.message}"
        if 400 <= exc.code < 500:
            return RetryableError(reason, provider_code=code)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return PermanentError(f"SMTP authentication failed: {exc.message}", provider_code=code)
        if exc.code >= 500:
            return PermanentError(reason, provider_code=code)
        return RetryableError(reason, provider_code=code)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. STARTTLS required by settings but not offered: configuration, not weather.
        return PermanentError(f"SMTP server does not support it: {exc}")
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return RetryableError(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    return exc
