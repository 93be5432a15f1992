"""The unsubscribe link of outbound email (RFC 8058 one-click), opened without a login.

Every email the dispatcher sends carries ``List-Unsubscribe: <{public_url}/unsubscribe/TOKEN>``
and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (``hub.runtime.dispatcher``): the
token is signed for the recipient (customer id), the channel, the purpose the message was sent
for, and the message (``hub.domain.links``, kind ``unsubscribe``). Without a public URL
(``HUB_PUBLIC_URL``) the hub cannot make a link anyone could open, and sends none.

- ``GET`` shows what the link would do and a button; it changes nothing (mail scanners and
  link previews open links);
- ``POST`` (the button, or the mail client's one-click ``List-Unsubscribe=One-Click`` body)
  withdraws the customer's consent for that purpose on email, source ``unsubscribe_link``,
  evidence the message. Idempotent. The body is not needed: the signed token is the proof.

A token that is not one the hub signed answers a 400 page, an erased customer a page saying
there is nothing left to unsubscribe. The pages hold no personal data.
"""

from __future__ import annotations

import logging
from html import escape
from uuid import UUID

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from hub.api.auth import RuntimeDep
from hub.domain.errors import CustomerErased, NotFound
from hub.runtime import Runtime
from hub.runtime.dispatcher import UNSUBSCRIBE_LINK
from hub.web.links import InvalidLink, link_page, refused_link_page, signer_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/unsubscribe", tags=["privacy"])

_PURPOSES = {
    "service": "replies to your conversations with us",
    "marketing": "news and offers",
}


class _Link:
    """What a verified unsubscribe token names."""

    def __init__(self, fields: dict[str, object]) -> None:
        try:
            self.customer_id = UUID(str(fields["c"]))
            self.channel = str(fields["ch"])
            self.purpose = str(fields["p"])
            self.message_id = UUID(str(fields["m"])) if fields.get("m") else None
        except (KeyError, ValueError):
            raise InvalidLink() from None


def _link(runtime: Runtime, token: str) -> _Link:
    return _Link(signer_of(runtime.store).verify(UNSUBSCRIBE_LINK, token))


def _what(link: _Link) -> str:
    described = _PURPOSES.get(link.purpose, f"{link.purpose} messages")
    return f"{link.channel} messages for {link.purpose} ({described})"


def _gone() -> HTMLResponse:
    return link_page(
        "Nothing to unsubscribe",
        "<p>We no longer hold any data about the recipient of this link, and send nothing "
        "to them.</p>",
        status=410,
    )


@router.get("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """The page the link opens: what unsubscribing does, and a button. Changes nothing."""
    try:
        link = _link(runtime, token)
    except InvalidLink as exc:
        return refused_link_page(exc)
    form = (
        f"<p>Unsubscribe from {escape(_what(link))}? You will receive no more of them.</p>"
        # No action: the form posts to the page's own URL, token included.
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return link_page("Unsubscribe", form)


@router.post("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """Withdraw the consent the link names (RFC 8058 one-click, or the page's button).
    Again: nothing more is recorded, the same answer."""
    try:
        link = _link(runtime, token)
        await run_in_threadpool(
            runtime.commands.outbound.unsubscribe,
            link.customer_id,
            link.channel,
            link.purpose,
            link.message_id,
        )
    except InvalidLink as exc:
        return refused_link_page(exc)
    except (CustomerErased, NotFound):
        return _gone()
    log.info("unsubscribe link used (purpose %s, channel %s)", link.purpose, link.channel)
    return link_page(
        "Unsubscribed",
        f"<p>You will receive no more {escape(_what(link))}.</p>",
    )
