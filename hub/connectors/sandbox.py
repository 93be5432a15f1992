"""The sandbox: simulated customers on SMS, WhatsApp, email and Telegram, for the demo.

On only when asked for (``HUB_SANDBOX=true``, ``hub serve --demo``). It takes the hub's sends
in this process (nothing goes beyond loopback), answers like a provider (an id, ``queued``),
then reports the message sent, delivered and read a moment later. Its reports and its
customers' replies are webhook requests signed with its own key (``X-Sandbox-Signature``) that
:meth:`SandboxConnector.handle_webhook` verifies like any provider's: a report goes to the
hub's status callback URL when that is on loopback, else to the listener's sink, the same way
in either case; a reply comes from the console's customer simulator (``/sandbox/``) through
``/webhooks/sandbox/inbound`` (or, for an email, a mail to the hub's SMTP listener when it
has one). The :class:`World` (per process, in memory) keeps what each
address was sent and wrote back, for that page.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
from pydantic import BaseModel, ValidationError

from hub.connectors.base import (
    Connector,
    DeliveryReport,
    InboundSink,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    SendResult,
    SetAside,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.settings import SandboxSettings
from hub.events import (
    CHANNEL_ADDRESS_KINDS,
    AddressError,
    Channel,
    DeliveryStatus,
    InboundInteraction,
    normalise_address,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-sandbox-signature"
#: The hook the simulated provider reports delivery to, and the one customers write to.
STATUS_HOOK = "status"
INBOUND_HOOK = "inbound"
#: The domain of the simulated provider's email Message-IDs (``.invalid``: never routable).
MAIL_DOMAIN = "sandbox.invalid"


def sign(key: bytes, body: bytes) -> str:
    """The ``X-Sandbox-Signature`` of ``body``: ``sha256=`` and the hex HMAC."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Entry:
    """One message on a simulated customer's phone or in their mailbox."""

    direction: Literal["to_customer", "from_customer"]
    channel: str
    text: str
    at: datetime
    provider_message_id: str
    subject: str | None = None


@dataclass
class Contact:
    address: str
    name: str | None = None
    entries: list[Entry] = field(default_factory=list)
    #: Hub message id -> the status last reported to the hub.
    statuses: dict[str, DeliveryStatus] = field(default_factory=dict)


class World:
    """What each simulated customer address was sent and wrote back (in memory, per
    process: the demo's, gone with it)."""

    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}

    def contact(self, address: str, name: str | None = None) -> Contact:
        found = self.contacts.setdefault(address, Contact(address))
        if name and not found.name:
            found.name = name
        return found

    def forget(self, addresses: Sequence[str]) -> int:
        """Drop these addresses' simulated customers; how many messages went with them."""
        gone = [self.contacts.pop(a) for a in addresses if a in self.contacts]
        return sum(len(c.entries) for c in gone)

    def last_sent(self, address: str, channel: str) -> Entry | None:
        contact = self.contacts.get(address)
        for entry in reversed(contact.entries if contact else []):
            if entry.direction == "to_customer" and entry.channel == channel:
                return entry
        return None


class SandboxConnector(Connector):
    """The simulated provider of SMS, WhatsApp, email and Telegram."""

    name: ClassVar[str] = "sandbox"
    channels: ClassVar[tuple[Channel, ...]] = ("sms", "whatsapp", "email", "telegram")
    settings_model: ClassVar[type[BaseModel] | None] = SandboxSettings
    webhooks: ClassVar[tuple[str, ...]] = (INBOUND_HOOK, STATUS_HOOK)
    status_hook: ClassVar[str | None] = STATUS_HOOK
    idempotent_sends: ClassVar[bool] = True
    rate_per_second: ClassVar[float] = 50.0

    settings: SandboxSettings

    def __init__(self, settings: Any, context: Any = None) -> None:
        super().__init__(settings, context)
        secret = self.settings.secret
        self.key = secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
        self.world = World()
        self._sent: dict[UUID, SendResult] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sink: InboundSink | None = None
        self._client: httpx.AsyncClient | None = None

    def forget_in_memory(self, addresses: Sequence[str]) -> int:
        """An erased customer's simulated phone and mailbox go with them."""
        return self.world.forget(addresses)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10.0)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, sink: InboundSink) -> None:
        """Holds the sink that delivery reports go to without a loopback callback URL."""
        self._sink = sink
        try:
            await asyncio.Event().wait()
        finally:
            self._sink = None

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.channel not in self.channels:
            raise PermanentError(f"the sandbox does not send on {message.channel!r}")
        try:
            address = normalise_address(message.address)
        except AddressError as exc:
            raise PermanentError(exc.reason) from None
        if address.kind not in CHANNEL_ADDRESS_KINDS[message.channel]:
            raise PermanentError(f"{message.channel} cannot reach a {address.kind}: address")
        done = self._sent.get(message.message_id)
        if done is not None:  # the same send again: the provider dedupes by our key
            return done
        provider_id = (
            f"<{message.message_id}@{MAIL_DOMAIN}>"
            if message.channel == "email"
            else f"SB{message.message_id.hex}"
        )
        result = SendResult(provider_message_id=provider_id, status="queued")
        self._sent[message.message_id] = result
        contact = self.world.contact(str(address))
        contact.entries.append(
            Entry(
                "to_customer",
                message.channel,
                message.text,
                datetime.now(UTC),
                provider_id,
                message.subject,
            )
        )
        contact.statuses[str(message.message_id)] = "queued"
        task = asyncio.create_task(self._report_later(message, provider_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return result

    async def _report_later(self, message: OutboundMessage, provider_id: str) -> None:
        settings = self.settings
        elapsed = 0.0
        steps: Sequence[tuple[float, DeliveryStatus]] = (
            (settings.sent_after, "sent"),
            (settings.delivered_after, "delivered"),
            (settings.read_after, "read"),
        )
        for after, status in steps:
            await asyncio.sleep(max(0.0, after - elapsed))
            elapsed = max(elapsed, after)
            try:
                await self._report(message, provider_id, status)
            except Exception as exc:  # a demo's tick lost: say so, try the next one
                log.warning("sandbox: %s report not delivered: %s", status, exc)

    def status_request(
        self, message: OutboundMessage, provider_id: str, status: DeliveryStatus
    ) -> WebhookRequest:
        """The signed status callback the simulated provider makes for ``message``."""
        body = json.dumps(
            {
                "channel": message.channel,
                "id": provider_id,
                "message_id": str(message.message_id),
                "status": status,
                "at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        url = message.status_callback_url or f"sandbox:/{STATUS_HOOK}"
        return WebhookRequest(
            method="POST",
            hook=STATUS_HOOK,
            url=url,
            headers={"content-type": "application/json", SIGNATURE_HEADER: sign(self.key, body)},
            query={},
            body=body,
        )

    async def _report(
        self, message: OutboundMessage, provider_id: str, status: DeliveryStatus
    ) -> None:
        request = self.status_request(message, provider_id, status)
        callback = message.status_callback_url
        if callback and is_loopback(callback) and self._client is not None:
            response = await self._client.post(
                callback, content=request.body, headers=dict(request.headers)
            )
            response.raise_for_status()
        elif self._sink is not None:
            await self._sink(self.handle_webhook(request))
        else:
            log.warning("sandbox: nowhere to report %s to (no listener, no loopback URL)", status)
            return
        for contact in self.world.contacts.values():
            if str(message.message_id) in contact.statuses:
                contact.statuses[str(message.message_id)] = status

    # -- inbound ---------------------------------------------------------------------------

    def customer_reply(
        self,
        channel: str,
        address: str,
        text: str,
        subject: str | None = None,
    ) -> bytes:
        """The body of a simulated customer's message (``/webhooks/sandbox/inbound``), replying
        to the last message the hub sent this address on ``channel``."""
        last = self.world.last_sent(address, channel)
        if channel == "email" and not subject:
            subject = f"Re: {last.subject}" if last and last.subject else None
        return json.dumps(
            {
                "channel": channel,
                "from": address,
                "id": f"sandbox-in-{uuid4()}",
                "text": text,
                "subject": subject,
                "in_reply_to": last.provider_message_id if last else None,
                "at": datetime.now(UTC).isoformat(),
            }
        ).encode()

    def customer_mail(
        self, address: str, to: str, text: str, subject: str | None = None
    ) -> EmailMessage:
        """A simulated customer's mail to the hub's own address ``to`` (for its SMTP
        listener), replying to the last message the hub sent ``address``."""
        last = self.world.last_sent(address, "email")
        now = datetime.now(UTC)
        if not subject:
            subject = f"Re: {last.subject}" if last and last.subject else "(no subject)"
        mail = EmailMessage()
        mail["From"] = address.partition(":")[2]
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = f"<sandbox-in-{uuid4()}@{MAIL_DOMAIN}>"
        if last is not None:
            mail["In-Reply-To"] = mail["References"] = last.provider_message_id
        mail.set_content(text)
        self.world.contact(address).entries.append(
            Entry("from_customer", "email", text, now, str(mail["Message-ID"]), subject)
        )
        return mail

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method != "POST":
            raise MalformedPayload(f"sandbox webhooks are POST, not {request.method}")
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise InvalidSignature("no X-Sandbox-Signature header", status=401)
        if not hmac.compare_digest(given.encode(), sign(self.key, request.body).encode()):
            raise InvalidSignature("X-Sandbox-Signature does not match", status=403)
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise MalformedPayload("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise MalformedPayload("the body is not a JSON object")
        try:
            if request.hook == STATUS_HOOK:
                return WebhookOutcome(reports=(self._report_of(payload, request),))
            return WebhookOutcome(interactions=(self._interaction(payload),))
        except (ValidationError, AddressError, KeyError, TypeError, ValueError) as exc:
            reason = f"not a sandbox {request.hook} message: {type(exc).__name__}"
            return WebhookOutcome(set_aside=(SetAside(reason=reason, payload=payload),))

    @staticmethod
    def _report_of(payload: dict[str, Any], request: WebhookRequest) -> DeliveryReport:
        message_id = (
            payload.get("message_id")
            or parse_qs(urlsplit(request.url).query).get("message_id", [None])[0]
        )
        return DeliveryReport(
            channel=payload["channel"],
            provider_message_id=payload["id"],
            status=payload["status"],
            occurred_at=datetime.fromisoformat(payload["at"]),
            message_id=UUID(message_id) if message_id else None,
        )

    def _interaction(self, payload: dict[str, Any]) -> InboundInteraction:
        channel = payload["channel"]
        if channel not in self.channels:
            raise ValueError(f"the sandbox has no channel {channel!r}")
        address = str(normalise_address(payload["from"]))
        interaction = InboundInteraction(
            channel=channel,
            direction="inbound",
            address=address,
            provider_message_id=payload["id"],
            occurred_at=datetime.fromisoformat(payload["at"]),
            text=payload.get("text") or "",
            subject=payload.get("subject") or None,
            thread_ref=payload.get("in_reply_to") or None,
            metadata={"sandbox": True},
        )
        self.world.contact(address).entries.append(
            Entry(
                "from_customer",
                channel,
                interaction.text,
                interaction.occurred_at,
                interaction.provider_message_id,
                interaction.subject,
            )
        )
        return interaction
