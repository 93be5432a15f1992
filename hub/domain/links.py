"""Signed links: tokens the hub puts in URLs it sends to customers (an email's unsubscribe
link, a double opt-in confirmation), so that opening the URL proves the hub issued it, for
whom and for what, without a login and without a table of issued tokens.

A token is ``<payload>.<mac>``, both unpadded base64url (so it fits a URL path segment as
is): the payload is the JSON of the caller's fields plus the token's ``kind`` and optional
expiry, the MAC an HMAC-SHA256 of it under a key derived from the master key
(``Store.links_key``). The kind is inside what is signed, so a token made for one purpose
(``unsubscribe``) is refused where another is expected (``double_opt_in``). Verification
compares MACs in constant time (:func:`hmac.compare_digest`) before it parses anything.

The signer lives in the domain because the dispatcher (``hub.runtime``) signs the unsubscribe
links it puts in outbound email, and the web routes that open them (``hub.web.links``,
``hub.api``) verify them; both may import the domain.

Tokens are not encrypted: a payload should hold ids and codes (a customer id, a channel, a
purpose), never an address or a name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.domain.errors import DomainError

__all__ = ["InvalidLink", "LinkSigner"]

_KIND = "k"
_EXPIRES = "x"
#: Longer than any link the hub makes: a longer token is refused before any work is done.
MAX_TOKEN_LENGTH = 2048


class InvalidLink(DomainError):
    """A token that is not one the hub issued for this kind of link (altered, truncated,
    made for another purpose, or made with another key), or one that expired. ``code`` is
    ``invalid_link`` (400) or ``link_expired`` (410)."""

    code = "invalid_link"
    status = 400

    def __init__(self, expired: bool = False) -> None:
        super().__init__(
            "this link has expired" if expired else "this link is not valid (altered or incomplete)"
        )
        self.expired = expired
        if expired:
            self.code, self.status = "link_expired", 410


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Signs and verifies link tokens with one key (``Store.links_key``)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a link key must be at least 32 bytes")
        self._key = key

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()

    def sign(
        self, kind: str, payload: Mapping[str, Any], expires_at: datetime | None = None
    ) -> str:
        """A url-safe token carrying ``payload`` (JSON-serialisable; UUIDs and datetimes are
        kept as strings) for links of ``kind``; after ``expires_at`` (if given) it is refused."""
        if _KIND in payload or _EXPIRES in payload:
            raise ValueError(f"payload keys {_KIND!r} and {_EXPIRES!r} are the token's own")
        fields: dict[str, Any] = {**payload, _KIND: kind}
        if expires_at is not None:
            fields[_EXPIRES] = int(expires_at.timestamp())
        body = _encode(orjson.dumps(fields))
        return f"{body}.{_encode(self._mac(body))}"

    def verify(self, kind: str, token: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The payload of a token this key signed for ``kind``; :class:`InvalidLink` for any
        other string, or for a token past its expiry (``now``: the current time by default)."""
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidLink()
        body, dot, mac = token.partition(".")
        if not dot:
            raise InvalidLink()
        # The MAC is compared as text: base64 decoders forgive stray characters and spare
        # bits, so comparing decoded bytes would accept more than one spelling of a token.
        if not hmac.compare_digest(mac, _encode(self._mac(body))):
            raise InvalidLink()
        try:
            fields = orjson.loads(_decode(body))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InvalidLink() from None
        if not isinstance(fields, dict) or fields.pop(_KIND, None) != kind:
            raise InvalidLink()
        expires = fields.pop(_EXPIRES, None)
        if expires is not None:
            at = now or datetime.now(UTC)
            if not isinstance(expires, int) or at.timestamp() >= expires:
                raise InvalidLink(expired=True)
        return fields
