"""The connector port: what the hub needs of a channel, in both directions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings

from hub.events import Channel, DeliveryStatus, InboundInteraction


class ConnectorError(Exception):
    """A failure talking to a provider; ``retryable`` decides retry versus dead-letter."""

    retryable: ClassVar[bool] = False

    def __init__(self, reason: str, *, provider_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider_code = provider_code


class RetryableError(ConnectorError):
    """Worth trying again later (timeouts, 429, 5xx)."""

    retryable = True


class PermanentError(ConnectorError):
    """Trying again will not help (invalid number, rejected content, bad credentials)."""


class InvalidSignature(PermanentError):
    """An inbound request whose provider signature does not verify: record nothing."""


class OutboundMessage(BaseModel):
    """A message the hub asks a connector to send."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    channel: Channel
    address: str
    text: str
    subject: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_message_id: str
    status: DeliveryStatus = "accepted"


class DeliveryReport(BaseModel):
    """A provider's status callback, turned into the hub's terms."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime
    error_code: str | None = None
    error_message: str | None = None


class Connector(ABC):
    """One channel. Subclasses set ``name``, ``channels`` and ``settings_model``."""

    name: ClassVar[str]
    channels: ClassVar[tuple[Channel, ...]]
    settings_model: ClassVar[type[BaseSettings]]

    @abstractmethod
    def parse_inbound(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[InboundInteraction]:
        """Verify the provider's signature and parse the request into interactions.
        Raises :class:`InvalidSignature` or :class:`PermanentError` for a malformed payload."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand a message to the provider; raises :class:`ConnectorError` subclasses."""

    def parse_status(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[DeliveryReport]:
        """Verify and parse a status callback; channels without callbacks return nothing."""
        return ()
