"""The customer simulator (``/sandbox/``, admins, only while the sandbox is on): the sandbox's
simulated customers, what the hub sent each of them, and a form to write back as one of them.

A reply goes in through the sandbox connector's real inbound path: a request signed with its
key, posted to the hub's own ``/webhooks/sandbox/inbound`` (through the application itself, so
nothing leaves the process), which verifies it and records it like any provider's webhook. An
email goes to the hub's own SMTP listener instead when the email connector runs one on
loopback, as a customer's mail would.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console.shared import Agent, AgentDep, PostingAgent, page, runtime_of
from hub.events import CHANNEL_ADDRESS_KINDS, AddressError, normalise_address
from hub.runtime.sandbox import (
    INBOUND_HOOK,
    SIGNATURE_HEADER,
    SandboxConnector,
    is_loopback,
    sandbox_of,
    sign,
)
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
MAX_TEXT = 4000
MAX_SUBJECT = 200


def _sandbox(request: Request, agent: Agent) -> SandboxConnector:
    connector = sandbox_of(runtime_of(request))
    if connector is None:
        raise ApiError(404, "not_found", "the sandbox is off (HUB_SANDBOX, hub serve --demo)")
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may use the customer simulator")
    return connector


def channels_of(address: str) -> list[str]:
    """The sandbox's channels that reach ``address`` (a phone: SMS and WhatsApp)."""
    kind = address.partition(":")[0]
    return [c for c in SandboxConnector.channels if kind in CHANNEL_ADDRESS_KINDS[c]]


@router.get("/sandbox/", response_class=HTMLResponse)
async def sandbox_page(
    request: Request, agent: AgentDep, sent: str | None = None, error: str | None = None
) -> Response:
    """Every simulated customer with their messages and a form to write back."""
    connector = _sandbox(request, agent)
    contacts = sorted(connector.world.contacts.values(), key=lambda c: (c.name or "~", c.address))
    return page(
        request,
        "sandbox.html",
        agent=agent,
        contacts=contacts,
        channels_of=channels_of,
        sent=sent,
        error=error,
    )


@router.post("/sandbox/reply")
async def write_back(
    request: Request,
    agent: PostingAgent,
    address: Annotated[str, Form(max_length=320)],
    channel: Annotated[str, Form(max_length=20)],
    text: Annotated[str, Form(max_length=MAX_TEXT)],
    subject: Annotated[str, Form(max_length=MAX_SUBJECT)] = "",
) -> Response:
    """Write as the customer at ``address`` on ``channel``: a signed webhook to the hub."""
    connector = _sandbox(request, agent)
    try:
        normalised = str(normalise_address(address))
    except AddressError as exc:
        return _back(error=exc.reason)
    if channel not in channels_of(normalised):
        return _back(error=f"the sandbox cannot write from {normalised} on {channel!r}")
    if not text.strip():
        return _back(error="write something first")
    subject_given = subject.strip() or None if channel == "email" else None
    if channel == "email" and _listener(request) is not None:
        refused = await _mail(request, connector, normalised, text, subject_given)
        return _back(error=refused) if refused else _back(sent=normalised)
    body = connector.customer_reply(channel, normalised, text, subject_given)
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as client:
        answer = await client.post(
            f"/webhooks/sandbox/{INBOUND_HOOK}",
            content=body,
            headers={
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(connector.key, body),
            },
        )
    if answer.status_code != 200:
        return _back(error=f"the hub answered {answer.status_code}: {answer.text[:200]}")
    return _back(sent=normalised)


def _listener(request: Request) -> tuple[str, int, str] | None:
    """Host, port and the hub's address of the email connector's SMTP listener, when one runs
    on loopback here."""
    runtime = runtime_of(request)
    email = runtime.settings.email
    if "email" not in runtime.gateway.by_name or not email.listen or not email.from_address:
        return None
    host, _, port = email.listen.strip().rpartition(":")
    host = host.strip("[]")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (a bind-all)
    if not port.isdigit() or not is_loopback(
        f"smtp://[{host}]" if ":" in host else f"smtp://{host}"
    ):
        return None
    return host, int(port), email.from_address


async def _mail(
    request: Request, connector: SandboxConnector, address: str, text: str, subject: str | None
) -> str | None:
    """Mail ``text`` from ``address`` to the hub's SMTP listener; the reason it was refused."""
    import aiosmtplib  # only here: the console loads with every hub, the mail client seldom

    found = _listener(request)
    assert found is not None
    host, port, to = found
    mail = connector.customer_mail(address, to, text, subject)
    try:
        await aiosmtplib.send(mail, hostname=host, port=port, start_tls=False, timeout=10)
    except aiosmtplib.SMTPException as exc:
        return f"the hub's SMTP listener refused the mail: {exc}"
    return None


def _back(**query: str) -> RedirectResponse:
    return RedirectResponse(f"/sandbox/?{urlencode(query)}", 303)
