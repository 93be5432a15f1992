"""The Meta connector: WhatsApp, Messenger and Instagram through one Meta app, one webhook
for all three and the Graph API to send."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import BaseModel

from hub.connectors.base import (
    Connector,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    SendResult,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.meta import messaging, whatsapp
from hub.connectors.meta.graph import GraphApi
from hub.connectors.meta.webhook import Collected, challenge, verified_body
from hub.connectors.settings import MetaSettings
from hub.events import Channel


class MetaConnector(Connector):
    """WhatsApp, Messenger and Instagram through one Meta app."""

    name: ClassVar[str] = "meta"
    channels: ClassVar[tuple[Channel, ...]] = ("whatsapp", "messenger", "instagram")
    settings_model: ClassVar[type[BaseModel] | None] = MetaSettings
    webhooks: ClassVar[tuple[str, ...]] = ("",)
    status_hook: ClassVar[str | None] = None  # statuses come to the same webhook
    idempotent_sends: ClassVar[bool] = False
    rate_per_second: ClassVar[float] = 20.0
    service_windows: ClassVar[dict[str, timedelta]] = {
        "whatsapp": timedelta(hours=24),
        "messenger": timedelta(hours=24),
        "instagram": timedelta(hours=24),
    }

    settings: MetaSettings
    _graph: GraphApi | None = None

    async def start(self) -> None:
        self._graph = GraphApi(self.settings)

    async def stop(self) -> None:
        if self._graph is not None:
            await self._graph.aclose()
            self._graph = None

    # -- inbound ---------------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method == "GET":
            return challenge(request, self.settings.verify_token)
        if request.method != "POST":
            raise MalformedPayload(f"Meta webhooks are GET or POST, not {request.method}")
        body = verified_body(request, self.settings.app_secret)
        out = Collected()
        kind = body.get("object")
        if kind == "whatsapp_business_account":
            whatsapp.collect(body, out)
        elif kind == "page":
            messaging.collect("messenger", body, out)
        elif kind == "instagram":
            messaging.collect("instagram", body, out)
        # Other objects (user, permissions...) are not messages: acknowledged, nothing kept.
        return out.outcome()

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.template is not None and message.channel != "whatsapp":
            raise PermanentError("message templates are WhatsApp only")
        if message.channel == "whatsapp":
            sender, body = whatsapp.send_request(message, self.settings.whatsapp_phone_number_id)
        elif message.channel in ("messenger", "instagram"):
            sender, body = messaging.send_request(message, self.settings)
        else:
            raise PermanentError(f"the meta connector does not send on {message.channel!r}")
        if self._graph is None:
            raise RuntimeError("MetaConnector.send before start()")
        answer = await self._graph.post(message.channel, f"/{sender}/messages", body)
        if message.channel == "whatsapp":
            provider_id = whatsapp.sent_id(answer)
        else:
            provider_id = messaging.sent_id(answer)
        if provider_id is None:
            raise PermanentError("the Graph API accepted the message but gave no message id")
        return SendResult(provider_message_id=provider_id, status="accepted")
