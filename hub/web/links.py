"""Signed links for the web routes that customers open without a login (an email's
unsubscribe link, a double opt-in confirmation): the signer (:class:`LinkSigner`, built on
``Store.links_key``) and its refusal (:class:`InvalidLink`, a 400 ``invalid_link`` or a 410
``link_expired``), and the plain HTML page such a route answers with.

The signing itself is ``hub.domain.links`` (the dispatcher signs the unsubscribe links it puts
in outbound email, and the runtime cannot import the web packages); this module is what the
web packages use.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

from hub.domain.links import InvalidLink, LinkSigner
from hub.store import Store

__all__ = ["InvalidLink", "LinkSigner", "link_page", "refused_link_page", "signer_of"]


def signer_of(store: Store) -> LinkSigner:
    """The signer of this hub's links (keyed with a derivative of the master key)."""
    return LinkSigner(store.links_key)


def link_page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    """A minimal, self-contained page (no script, no external resource) for a customer who
    opened a link: ``title`` is escaped, ``body_html`` is inserted as given (escape any text
    in it). Not cached, not indexed, no referrer sent onwards (the URL holds a token)."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body_html}</body></html>"
    )
    return HTMLResponse(
        page,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex",
        },
    )


def refused_link_page(error: InvalidLink) -> HTMLResponse:
    """The page for a link that is not valid (400) or expired (410)."""
    text = (
        "This link has expired. Please use the link in a more recent message."
        if error.expired
        else "This link is not valid. It may have been cut off or changed; please open the "
        "complete link from the message."
    )
    return link_page("Link not valid", f"<p>{escape(text)}</p>", status=error.status)
