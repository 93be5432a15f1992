"""The connector port: what the hub needs of a channel, in both directions.

A connector is one class with its metadata as class attributes (``name``, ``channels``,
``settings_model``, ``webhooks``...). The runtime builds it with its typed settings, calls
:meth:`Connector.start` once (clients are built there, never at import time), and then:

- hands it provider webhooks (``POST``/``GET /webhooks/{name}/{hook}``) as a
  :class:`WebhookRequest`; it verifies the signature and answers with a :class:`WebhookOutcome`
  (interactions to record, delivery reports to apply, items it set aside, the reply body);
- runs its listeners (:meth:`Connector.run`: an SMTP server, an IMAP poll) which hand what they
  receive to an :class:`InboundSink` and only then acknowledge it to their peer;
- asks it to :meth:`Connector.send` an :class:`OutboundMessage` (the dispatcher).

Failures are typed (:class:`RetryableError`, :class:`PermanentError`, :class:`InvalidSignature`,
:class:`MalformedPayload`): the runtime decides retry, dead-letter or 4xx from the type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from hub.events import Channel, DeliveryStatus, InboundInteraction

if TYPE_CHECKING:
    from sqlalchemy import Engine, MetaData


class ConnectorError(Exception):
    """A failure talking to a provider; ``retryable`` decides retry versus recorded failure."""

    retryable: ClassVar[bool] = False

    def __init__(self, reason: str, *, provider_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider_code = provider_code


class RetryableError(ConnectorError):
    """Worth trying again later (timeouts, connection refused, 429, 5xx, SMTP 4xx)."""

    retryable = True

    def __init__(
        self, reason: str, *, provider_code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, provider_code=provider_code)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Trying again will not help (invalid number, rejected content, bad credentials)."""


class InvalidSignature(PermanentError):
    """An inbound request whose provider signature is missing or does not verify: the hub
    answers 401/403 and records nothing."""

    def __init__(self, reason: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


class MalformedPayload(PermanentError):
    """A verified request whose body the connector cannot parse at all: answered 400."""


# -- inbound -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """One provider request, as the hub received it.

    ``url`` is the URL the provider called: the hub's ``HUB_PUBLIC_URL`` + path + query (what
    providers sign), not the address the server happens to listen on. Header names are lower
    case.
    """

    method: str
    hook: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class SetAside:
    """An item of a verified request that cannot be recorded (malformed in a way the provider
    would retry for days): acknowledged to the provider and kept on the dead-letter list.

    ``original`` is the complete message a listener received (a mail's raw bytes), kept
    encrypted with the dead letter so it can be retried; a webhook's request is kept by the
    route instead."""

    reason: str
    payload: JsonValue
    original: bytes | None = None


@dataclass(frozen=True)
class WebhookOutcome:
    """What one provider request carried, and what to answer it."""

    interactions: Sequence[InboundInteraction] = ()
    reports: Sequence[DeliveryReport] = ()
    set_aside: Sequence[SetAside] = ()
    status: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


class InboundSink(Protocol):
    """Where a listener hands what it received. Returns once it is durable (recorded, or
    acknowledged by the broker): only then may the listener acknowledge its peer or move a
    cursor."""

    def __call__(self, outcome: WebhookOutcome) -> Awaitable[None]: ...


class StateStore(Protocol):
    """Small durable key-value state of a connector (an IMAP UID cursor)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


class DeliveryReport(BaseModel):
    """A provider's status callback (or a bounce), turned into the hub's terms.

    ``provider_message_id`` is the provider's id of the outbound message (a Twilio SID, an
    email Message-ID). ``message_id`` is the hub's own id when the provider echoes it back
    (a status callback URL that carries it): it lets the hub reconcile a send whose result it
    never got.
    """

    model_config = ConfigDict(frozen=True)

    channel: Channel
    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime
    message_id: UUID | None = None
    error_code: str | None = None
    error_message: str | None = None
    revoke_consent: bool = Field(
        default=False,
        description="The address cannot receive (a hard bounce): stop sending to it.",
    )


# -- outbound ------------------------------------------------------------------------------


class WhatsAppTemplate(BaseModel):
    """An approved message template (WhatsApp, outside the 24-hour service window)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en", min_length=2, max_length=15)
    parameters: tuple[str, ...] = ()


class OutboundMessage(BaseModel):
    """A message the hub asks a connector to send.

    ``address`` is the customer's normalised address (``phone:+4915112345678``);
    ``message_id`` is the hub's id of the message, also the idempotency key where the provider
    takes one; ``status_callback_url`` is where the provider should report delivery, when the
    connector has a status hook.
    """

    model_config = ConfigDict(frozen=True)

    message_id: UUID
    channel: Channel
    address: str
    text: str
    subject: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    template: WhatsAppTemplate | None = None
    status_callback_url: str | None = None
    unsubscribe_url: str | None = None
    html: str | None = Field(
        default=None, description="Email: an HTML alternative of ``text`` (templates)."
    )


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_message_id: str
    status: DeliveryStatus = "accepted"


# -- the port ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorContext:
    """What the runtime gives every connector besides its settings."""

    public_url: str | None = None
    state: StateStore | None = None
    #: The hub's state database, for a connector that keeps tables of its own
    #: (:attr:`Connector.tables`: the web chat's mailboxes).
    engine: Engine | None = None


class Connector(ABC):
    """One provider, serving one or more channels.

    Subclasses set the class attributes and implement :meth:`send` and, when they have
    webhooks, :meth:`handle_webhook`.
    """

    #: Registry name; webhooks are served under ``/webhooks/{name}/...``.
    name: ClassVar[str]
    #: Channels this connector sends and receives.
    channels: ClassVar[tuple[Channel, ...]]
    #: Typed settings (``HUB_{NAME}__...``); ``None`` for a connector without settings.
    settings_model: ClassVar[type[BaseModel] | None] = None
    #: Hook names served at ``/webhooks/{name}/{hook}`` (``""``: ``/webhooks/{name}``).
    webhooks: ClassVar[tuple[str, ...]] = ()
    #: The hook the provider reports delivery status to (for ``status_callback_url``).
    status_hook: ClassVar[str | None] = None
    #: Whether the provider dedupes sends by the idempotency key (``message_id``); if not,
    #: a send interrupted by a crash is not repeated but reconciled from status callbacks.
    idempotent_sends: ClassVar[bool] = False
    #: Sends per second the provider allows by default (overridable in settings).
    rate_per_second: ClassVar[float] = 10.0
    #: Channels where free text may only go out within this time of the customer's last
    #: message (WhatsApp's customer-service window); outside it only templates.
    service_windows: ClassVar[Mapping[str, timedelta]] = {}
    #: Tables the connector keeps in the hub's state database (``context.engine``): the
    #: gateway creates them before :meth:`start` (under the schema lock, as the hub's own).
    tables: ClassVar[MetaData | None] = None

    def __init__(self, settings: Any, context: ConnectorContext | None = None) -> None:
        self.settings = settings
        self.context = context or ConnectorContext()

    @classmethod
    def forget(cls, engine: Engine, addresses: Sequence[str]) -> int:
        """Delete what the connector's ``tables`` keep of these addresses (an erased
        customer's, ``kind:value``), whether or not the connector is on; returns how many
        rows went. A connector whose tables hold anything of a customer must override it."""
        return 0

    def forget_in_memory(self, addresses: Sequence[str]) -> int:
        """Drop what this running connector holds in memory of these addresses (an erased
        customer's); returns how many items went. One that keeps nothing has nothing to do."""
        return 0

    @property
    def send_rate(self) -> float:
        """Sends per second: the operator's ``rate_per_second`` setting, else the class's."""
        configured: float | None = getattr(self.settings, "rate_per_second", None)
        return configured or self.rate_per_second

    async def start(self) -> None:
        """Build clients (HTTP, SMTP, SDK). Called once before anything else."""
        return None

    async def stop(self) -> None:
        """Close what :meth:`start` built."""
        return None

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify and parse one provider request (``POST``, or ``GET`` for a subscription
        challenge). Raises :class:`InvalidSignature` or :class:`MalformedPayload`."""
        raise MalformedPayload(f"{self.name} has no webhook {request.hook!r}")

    async def run(self, sink: InboundSink) -> None:
        """Listeners of this connector (SMTP server, IMAP poll), until cancelled. Default:
        none."""
        return None

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand a message to the provider; raises :class:`ConnectorError` subclasses."""

    def problems(self) -> list[str]:
        """Why this connector is not ready, if it is not (for ``/readyz``)."""
        return []


def is_configured(settings: BaseModel | None) -> bool:
    """A connector is on when its settings exist and say so (their ``enabled`` property,
    true when every setting the connector cannot work without is set)."""
    return settings is not None and bool(getattr(settings, "enabled", True))
