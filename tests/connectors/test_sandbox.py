"""The sandbox connector: a send is answered like a provider answers and then reported sent,
delivered and read, in order, through a signed status webhook; its webhooks refuse a bad
signature; nothing it does leaves loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from starlette.requests import Request
from starlette.responses import Response

from hub.config import Settings
from hub.connectors import load
from hub.connectors.base import (
    InvalidSignature,
    OutboundMessage,
    PermanentError,
    WebhookOutcome,
    WebhookRequest,
)
from hub.connectors.registry import by_channel, channel_states, configured
from hub.connectors.sandbox import SIGNATURE_HEADER, SandboxConnector, sign
from hub.connectors.settings import SandboxSettings, TwilioSettings
from tests.peers.http import Peer, SeenRequest, running

FAST = SandboxSettings(enabled=True, sent_after=0.01, delivered_after=0.03, read_after=0.05)
MARIA = "phone:+15550101001"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HUB_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def connector() -> AsyncIterator[tuple[SandboxConnector, list[WebhookOutcome]]]:
    """A started sandbox whose listener hands what it reports to a list."""
    sandbox = SandboxConnector(FAST)
    await sandbox.start()
    received: list[WebhookOutcome] = []

    async def sink(outcome: WebhookOutcome) -> None:
        received.append(outcome)

    listener = asyncio.create_task(sandbox.run(sink))
    await asyncio.sleep(0)
    yield sandbox, received
    listener.cancel()
    await sandbox.stop()


def _message(channel: str = "sms", address: str = MARIA, **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid4(), channel=channel, address=address, text="Hello Maria", **extra
    )


async def _settled(received: list[WebhookOutcome], count: int) -> None:
    for _ in range(200):
        if len(received) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(received)} of {count} reports")


def test_on_only_when_asked_for_and_first_for_its_channels() -> None:
    assert channel_states(Settings())["sandbox"] == "off"
    assert load("sandbox") is SandboxConnector
    both = Settings(
        sandbox=True,
        twilio=TwilioSettings(account_sid="AC1", auth_token="t", from_number="+15550001111"),
    )
    assert channel_states(both)["sandbox"] == "on"
    served = by_channel((cls, cls.name) for cls, _ in configured(both))
    assert served["sms"] == served["whatsapp"] == served["email"] == "sandbox"
    assert served["telegram"] == "sandbox"
    assert served["chat"] == "chat"


async def test_a_send_is_answered_then_reported_sent_delivered_read(
    connector: tuple[SandboxConnector, list[WebhookOutcome]],
) -> None:
    sandbox, received = connector
    message = _message()
    result = await sandbox.send(message)
    assert result.status == "queued"
    assert result.provider_message_id == f"SB{message.message_id.hex}"
    assert await sandbox.send(message) == result  # idempotent by the hub's id
    await _settled(received, 3)
    reports = [r for outcome in received for r in outcome.reports]
    assert [r.status for r in reports] == ["sent", "delivered", "read"]
    assert {r.provider_message_id for r in reports} == {result.provider_message_id}
    assert {r.message_id for r in reports} == {message.message_id}
    (contact,) = sandbox.world.contacts.values()
    assert contact.address == MARIA
    assert [e.text for e in contact.entries] == ["Hello Maria"]
    assert contact.statuses[str(message.message_id)] == "read"


async def test_an_email_gets_a_message_id_and_a_reply_threads_to_it(
    connector: tuple[SandboxConnector, list[WebhookOutcome]],
) -> None:
    sandbox, _ = connector
    result = await sandbox.send(_message("email", "email:maria.garcia@example.net"))
    assert result.provider_message_id.endswith("@sandbox.invalid>")
    body = sandbox.customer_reply(
        "email", "email:maria.garcia@example.net", "Thanks!", subject="Re: order"
    )
    outcome = sandbox.handle_webhook(_request("inbound", body, sign(sandbox.key, body)))
    (item,) = outcome.interactions
    assert (item.channel, item.direction, item.text) == ("email", "inbound", "Thanks!")
    assert item.thread_ref == result.provider_message_id
    assert item.subject == "Re: order"


async def test_a_send_it_cannot_make_is_permanent(
    connector: tuple[SandboxConnector, list[WebhookOutcome]],
) -> None:
    sandbox, _ = connector
    with pytest.raises(PermanentError):
        await sandbox.send(_message("sms", "email:maria.garcia@example.net"))
    with pytest.raises(PermanentError):
        await sandbox.send(_message("messenger", "messenger:123"))


def _request(hook: str, body: bytes, signature: str | None) -> WebhookRequest:
    headers = {SIGNATURE_HEADER: signature} if signature else {}
    return WebhookRequest(
        "POST", hook, f"http://127.0.0.1/webhooks/sandbox/{hook}", headers, {}, body
    )


def test_a_bad_or_missing_signature_is_refused() -> None:
    sandbox = SandboxConnector(FAST)
    body = sandbox.customer_reply("sms", MARIA, "Hi")
    with pytest.raises(InvalidSignature) as missing:
        sandbox.handle_webhook(_request("inbound", body, None))
    assert missing.value.status == 401
    for signature in (sign(b"another key", body), sign(sandbox.key, body + b" "), "sha256=00"):
        with pytest.raises(InvalidSignature) as bad:
            sandbox.handle_webhook(_request("inbound", body, signature))
        assert bad.value.status == 403
    assert not sandbox.world.contacts  # nothing recorded of a refused request
    outcome = sandbox.handle_webhook(_request("inbound", body, sign(sandbox.key, body)))
    assert [i.address for i in outcome.interactions] == [MARIA]


async def test_nothing_leaves_loopback(
    connector: tuple[SandboxConnector, list[WebhookOutcome]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status callback URL that is not on loopback is never called: the report goes to the
    listener's sink instead."""
    sandbox, received = connector
    connected: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        connected.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: connected.append(a) or [])
    message = _message(
        status_callback_url="https://hub.example.com/webhooks/sandbox/status?message_id=x"
    )
    await sandbox.send(message)
    await _settled(received, 3)
    assert connected == []


async def test_a_loopback_status_callback_gets_signed_reports(
    connector: tuple[SandboxConnector, list[WebhookOutcome]],
) -> None:
    """With a status callback URL on loopback (the hub's own, ``HUB_PUBLIC_URL``), the reports
    are POSTed there as webhooks the sandbox's own check accepts, and not to the sink."""
    sandbox, received = connector

    async def ok(request: Request, seen: SeenRequest) -> Response:
        return Response(b"")

    with running(Peer([("POST", "/webhooks/sandbox/status", ok)])) as hub:
        message = _message(
            status_callback_url=f"{hub.url}/webhooks/sandbox/status?message_id=placeholder"
        )
        await sandbox.send(message)
        for _ in range(200):
            if len(hub.requests) >= 3:
                break
            await asyncio.sleep(0.01)
    statuses = []
    for seen in hub.requests:
        outcome = sandbox.handle_webhook(
            WebhookRequest(
                "POST", "status", message.status_callback_url or "", seen.headers, {}, seen.body
            )
        )
        statuses += [(r.status, r.message_id) for r in outcome.reports]
    assert statuses == [(s, message.message_id) for s in ("sent", "delivered", "read")]
    assert received == []
