"""Meta's one webhook: the subscription challenge, the ``X-Hub-Signature-256`` check over the
raw body, and the collecting of a payload's items, where one item that does not parse is set
aside and its siblings go on."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import SecretStr, ValidationError

from hub.connectors.base import (
    DeliveryReport,
    InvalidSignature,
    MalformedPayload,
    SetAside,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.fields import Unusable, provider_json
from hub.events import AddressError, InboundInteraction

#: What parsing one item of a webhook gives: messages and delivery statuses.
Parsed = InboundInteraction | DeliveryReport


def challenge(request: WebhookRequest, verify_token: SecretStr | None) -> WebhookOutcome:
    """The answer to Meta's subscription check (``GET`` with ``hub.verify_token``)."""
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token")
    answer = request.query.get("hub.challenge")
    if mode != "subscribe" or token is None or answer is None:
        raise MalformedPayload("not a subscription challenge (hub.mode=subscribe...)")
    if verify_token is None or not hmac.compare_digest(
        token.encode(), verify_token.get_secret_value().encode()
    ):
        raise InvalidSignature("hub.verify_token does not match", status=403)
    return WebhookOutcome(status=200, body=answer.encode(), media_type="text/plain")


def verified_body(request: WebhookRequest, app_secret: SecretStr | None) -> dict[str, Any]:
    """The JSON object a ``POST`` carries, once its signature verifies."""
    header = request.headers.get("x-hub-signature-256")
    if not header:
        raise InvalidSignature("no X-Hub-Signature-256 header", status=401)
    if app_secret is None:
        raise InvalidSignature("no app_secret configured to verify with", status=403)
    expected = hmac.new(app_secret.get_secret_value().encode(), request.body, hashlib.sha256)
    if not hmac.compare_digest(header.encode(), f"sha256={expected.hexdigest()}".encode()):
        raise InvalidSignature("X-Hub-Signature-256 does not verify", status=403)
    try:
        body = provider_json(request.body)
    except ValueError:
        raise MalformedPayload("the webhook body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedPayload("the webhook body is not a JSON object")
    return body


@dataclass
class Collected:
    """The items of one webhook payload, as parsed so far."""

    interactions: list[InboundInteraction] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)

    def attempt(
        self, what: str, item: dict[str, Any], parse: Callable[..., list[Parsed]], *args: Any
    ) -> None:
        """Parse one item; one that does not parse is set aside and its siblings go on."""
        try:
            parsed = parse(*args)
        except (Unusable, AddressError) as exc:
            self.set_aside.append(SetAside(reason=f"{what}: {exc}", payload=item))
            return
        except ValidationError as exc:
            reason = f"{what} does not fit the inbound contract: {exc.errors()[0]['msg']}"
            self.set_aside.append(SetAside(reason=reason, payload=item))
            return
        for one in parsed:
            if isinstance(one, InboundInteraction):
                self.interactions.append(one)
            else:
                self.reports.append(one)

    def items(self, container: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        """The objects of list ``key``; what is not an object is set aside."""
        values = container.get(key, [])
        if not isinstance(values, list):
            self.set_aside.append(SetAside(reason=f"{key!r} is not a list", payload=container))
            return
        for value in values:
            if isinstance(value, dict):
                yield value
            else:
                self.set_aside.append(
                    SetAside(reason=f"{key!r} item is not an object", payload=value)
                )

    def outcome(self) -> WebhookOutcome:
        return WebhookOutcome(
            interactions=tuple(self.interactions),
            reports=tuple(self.reports),
            set_aside=tuple(self.set_aside),
        )


def unix_time(value: Any, *, millis: bool = False) -> datetime:
    """WhatsApp sends seconds as a string, Messenger and Instagram milliseconds as a number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unusable(f"timestamp {value!r} is not a Unix time")
    try:
        number = int(value)
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (ValueError, OverflowError, OSError):
        raise Unusable(f"timestamp {value!r} is not a Unix time") from None


def hub_message_id(value: Any) -> UUID | None:
    """The hub's message id a payload echoes back, if it is one."""
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None
