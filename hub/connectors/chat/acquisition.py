"""Where a chat visitor came from: the widget's page (its ``utm_source``, ``utm_medium`` and
``utm_campaign``) and the page that led there (``document.referrer``), as the ``hello`` frame
gives them (docs/profile.md). Only a customer's first contact keeps it (``hub.domain``).

The referrer is kept without its query string and fragment (they may carry search terms,
emails, session ids: more than "where from" needs), and dropped when it is a page of the
widget's own site (that says nothing about where the visitor came from).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import ValidationError

from hub.events.common import scrub_text
from hub.events.inbound import InboundSource

#: Longer URLs are not looked at.
MAX_URL = 4096
_UTM = {"source": "utm_source", "medium": "utm_medium", "campaign": "utm_campaign"}


def _url(value: object) -> tuple[str, str, str, str, str] | None:
    """An http(s) URL's parts, or None for anything else."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    try:
        parts = urlsplit(scrub_text(value.strip()))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment


def page_source(page: object, referrer: object) -> InboundSource | None:
    """The source a widget's page tells (None: nothing, or nothing usable)."""
    page_parts, referrer_parts = _url(page), _url(referrer)
    values: dict[str, str | None] = dict.fromkeys(_UTM)
    if page_parts is not None:
        query = parse_qs(page_parts[3], max_num_fields=100)
        for name, parameter in _UTM.items():
            found = (query.get(parameter) or [""])[0].strip()
            values[name] = found[:100] or None
    came_from = None
    if referrer_parts is not None and (page_parts is None or referrer_parts[1] != page_parts[1]):
        scheme, host, path = referrer_parts[:3]
        came_from = urlunsplit((scheme, host, path, "", ""))[:2000]
    try:
        source = InboundSource(via="chat_page", referrer=came_from, **values)
    except ValidationError:
        return None
    return None if source.empty else source
