"""The contract every connector passes: one abstract test case, subclassed per connector
(``tests/connectors/test_<name>.py``), so every channel goes through the same checks.

A subclass provides, as fixtures or methods:

- ``connector``: a started connector whose provider endpoints are a loopback peer;
- ``peer``: that peer (:class:`tests.peers.http.Peer` or an object with the same
  ``requests`` and ``fail_next``), when the connector sends over HTTP;
- :meth:`deliver_inbound`: one inbound message delivered as the provider delivers it (a signed
  webhook, an SMTP transaction...), returning what the connector made of it;
- :meth:`outbound`: a message to a test address on the connector's first channel;
- :meth:`unreachable_connector`: the same connector pointed at a port nothing listens on.

Webhook connectors also subclass :class:`SignedWebhookContract`.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings

from hub.connectors import BUILTIN, Connector, load
from hub.connectors.base import (
    InvalidSignature,
    OutboundMessage,
    PermanentError,
    RetryableError,
    WebhookOutcome,
    WebhookRequest,
)
from hub.events import InboundInteraction
from tests.support.hostile import HOSTILE_TEXT, as_utf8_wire

_hostile_ids = itertools.count(1)


class ConnectorContract:
    name: ClassVar[str]
    #: Whether the provider's wire format can carry a lone surrogate (a JSON ``"\\ud800"``
    #: escape); a UTF-8 form or MIME body cannot.
    carries_lone_surrogates: ClassVar[bool] = False

    # -- provided by the subclass ------------------------------------------------------

    async def deliver_inbound(
        self, connector: Any, *, text: str, provider_message_id: str
    ) -> WebhookOutcome:
        raise NotImplementedError

    def outbound(self) -> OutboundMessage:
        raise NotImplementedError

    async def unreachable_connector(self) -> Connector:
        raise NotImplementedError

    # -- the checks --------------------------------------------------------------------

    def test_registered_by_name(self) -> None:
        cls = load(self.name)
        assert BUILTIN[self.name].endswith(cls.__name__)
        assert cls.name == self.name
        assert cls.channels

    def test_off_without_settings(self) -> None:
        cls = load(self.name)
        assert cls.settings_model is not None
        assert not getattr(cls.settings_model(), "enabled", True)

    async def test_inbound_becomes_the_contract(self, connector: Any) -> None:
        outcome = await self.deliver_inbound(
            connector, text="Hello from the contract", provider_message_id="contract-1"
        )
        (item,) = outcome.interactions
        assert isinstance(item, InboundInteraction)
        assert item.channel in type(connector).channels
        assert item.direction == "inbound"
        assert "Hello from the contract" in item.text
        # The contract re-validates: the address is normalised, the time aware.
        assert InboundInteraction.model_validate(item.model_dump()) == item

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        # One connector serves every example (parsing keeps no state); each subclass is its
        # own executor of the same inherited test, which is what differing_executors flags.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(text=HOSTILE_TEXT)
    async def test_any_text_is_kept_or_set_aside(self, connector: Any, text: str) -> None:
        """Whatever text a provider signs and sends, the connector hands over an interaction
        the store and every reader can take, or sets the item aside: it never raises."""
        if not self.carries_lone_surrogates:
            text = as_utf8_wire(text)
        outcome = await self.deliver_inbound(
            connector, text=text, provider_message_id=f"hostile-{next(_hostile_ids)}"
        )
        kept = len(outcome.interactions) + len(outcome.set_aside)
        # An empty text is no message on some channels (a Telegram service message).
        assert kept == 1 if text else kept <= 1
        for item in outcome.interactions:
            # Encodable, and valid again on the way back (what the store and readers do).
            assert InboundInteraction.model_validate_json(item.model_dump_json()) == item

    async def test_replay_has_the_same_identity(self, connector: Any) -> None:
        """A provider retry must dedupe: same channel and provider message id."""
        first = await self.deliver_inbound(connector, text="again", provider_message_id="rp-1")
        second = await self.deliver_inbound(connector, text="again", provider_message_id="rp-1")
        ids = [(i.channel, i.provider_message_id) for i in first.interactions]
        assert ids == [(i.channel, i.provider_message_id) for i in second.interactions]

    async def test_send_reaches_the_peer(self, connector: Any, peer: Any) -> None:
        before = len(peer.requests)
        result = await connector.send(self.outbound())
        assert result.provider_message_id
        assert len(peer.requests) > before

    async def test_provider_outage_is_retryable(self, connector: Any, peer: Any) -> None:
        peer.fail_next(503, {"error": "unavailable"})
        with pytest.raises(RetryableError):
            await connector.send(self.outbound())

    async def test_rate_limit_is_retryable(self, connector: Any, peer: Any) -> None:
        peer.fail_next(429, {"error": "slow down"}, headers={"Retry-After": "3"})
        with pytest.raises(RetryableError):
            await connector.send(self.outbound())

    async def test_provider_refusal_is_permanent(self, connector: Any, peer: Any) -> None:
        peer.fail_next(400, {"error": "invalid recipient"})
        with pytest.raises(PermanentError) as caught:
            await connector.send(self.outbound())
        assert caught.value.reason

    async def test_unreachable_provider_is_retryable(self) -> None:
        connector = await self.unreachable_connector()
        try:
            with pytest.raises(RetryableError):
                await connector.send(self.outbound())
        finally:
            await connector.stop()


class SignedWebhookContract(ConnectorContract):
    """Checks of connectors whose provider signs its webhooks."""

    def signed_request(self, *, text: str, provider_message_id: str) -> WebhookRequest:
        raise NotImplementedError

    def without_signature(self, request: WebhookRequest) -> WebhookRequest:
        raise NotImplementedError

    def with_wrong_signature(self, request: WebhookRequest) -> WebhookRequest:
        raise NotImplementedError

    async def deliver_inbound(
        self, connector: Any, *, text: str, provider_message_id: str
    ) -> WebhookOutcome:
        request = self.signed_request(text=text, provider_message_id=provider_message_id)
        outcome: WebhookOutcome = connector.handle_webhook(request)
        return outcome

    def test_missing_signature_is_refused(self, connector: Any) -> None:
        request = self.signed_request(text="x", provider_message_id="nosig-1")
        with pytest.raises(InvalidSignature):
            connector.handle_webhook(self.without_signature(request))

    def test_wrong_signature_is_refused(self, connector: Any) -> None:
        request = self.signed_request(text="x", provider_message_id="badsig-1")
        with pytest.raises(InvalidSignature):
            connector.handle_webhook(self.with_wrong_signature(request))

    def test_tampered_body_is_refused(self, connector: Any) -> None:
        request = self.signed_request(text="original", provider_message_id="tamper-1")
        tampered = WebhookRequest(
            method=request.method,
            hook=request.hook,
            url=request.url,
            headers=request.headers,
            query=request.query,
            body=request.body.replace(b"original", b"tampered"),
        )
        with pytest.raises(InvalidSignature):
            connector.handle_webhook(tampered)
