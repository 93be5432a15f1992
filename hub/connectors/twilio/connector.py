"""The Twilio connector: SMS and MMS on one number or Messaging Service, its two webhooks
verified and read, sends through the Messages API."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from hub.connectors.base import (
    Connector,
    ConnectorContext,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    RetryableError,
    SendResult,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.settings import TwilioSettings
from hub.connectors.twilio import webhooks
from hub.connectors.twilio.sending import MessagesApi, create_arguments
from hub.connectors.twilio.signature import verified_fields
from hub.events import Channel


class TwilioConnector(Connector):
    """Twilio Programmable Messaging: SMS and MMS on one number or Messaging Service."""

    name: ClassVar[str] = "twilio"
    channels: ClassVar[tuple[Channel, ...]] = ("sms",)
    settings_model: ClassVar[type[BaseModel] | None] = TwilioSettings
    webhooks: ClassVar[tuple[str, ...]] = ("sms", "status")
    status_hook: ClassVar[str | None] = "status"
    # The Messages API has no idempotency key (I-Twilio-Idempotency-Token is a header Twilio
    # puts on the webhooks it sends, not one its API honours).
    idempotent_sends: ClassVar[bool] = False
    # A US long code sends one message segment per second.
    rate_per_second: ClassVar[float] = 1.0

    settings: TwilioSettings

    def __init__(self, settings: TwilioSettings, context: ConnectorContext | None = None) -> None:
        super().__init__(settings, context)
        self._messages: MessagesApi | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._messages = MessagesApi(self.settings)

    async def stop(self) -> None:
        messages, self._messages = self._messages, None
        if messages is not None:
            await messages.close()

    def problems(self) -> list[str]:
        found = []
        if not self.settings.enabled:
            found.append(
                "twilio needs account_sid, auth_token and from_number or messaging_service_sid"
            )
        if self._messages is None:
            found.append("twilio is not started")
        return found

    # -- webhooks ----------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.hook not in self.webhooks:
            raise MalformedPayload(f"twilio has no webhook {request.hook!r}")
        fields = verified_fields(request, self.settings)
        if fields.get("AccountSid") != self.settings.account_sid:
            raise InvalidSignature("AccountSid is not the configured account", status=403)
        if request.hook == "sms":
            return webhooks.incoming(fields)
        return webhooks.status(request.url, fields)

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._messages is None:
            raise RetryableError("twilio is not started")
        if message.channel not in self.channels:
            raise PermanentError(f"twilio does not send on {message.channel!r}")
        return await self._messages.create(create_arguments(message, self.settings))
