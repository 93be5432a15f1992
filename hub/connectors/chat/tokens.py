"""Visitor tokens and email verification codes of the web chat, both HMAC-signed.

A visitor token is what the widget keeps in the browser: ``<visitor id>.<issued>.<mac>``. It
names the visitor (address ``chat:<visitor id>``) and cannot be forged without the key; an
expired or forged one simply gets the browser a new visitor.

A verification code proves that the visitor reads the mailbox they gave: six digits derived
from the key, the visitor, the address and the time slot, so nothing needs storing; a code is
valid in its slot and the next one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from uuid import uuid4

_SEPARATOR = "."
# ASCII only, checked before anything else: ``str.isdigit`` takes "²" (which ``int`` refuses)
# and ``hmac.compare_digest`` raises on non-ASCII text, and a token comes from anyone.
_VISITOR = re.compile(r"[A-Za-z0-9]{1,64}")
_ISSUED = re.compile(r"[0-9]{1,12}")
_MAC = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CODE = re.compile(r"[0-9]{6}")


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def new_key() -> str:
    """A fresh signing key (when ``HUB_CHAT__SECRET`` is not set)."""
    return secrets.token_urlsafe(32)


class VisitorTokens:
    """Issue and check visitor tokens and verification codes with one key."""

    def __init__(self, key: str, *, max_age_seconds: float, code_seconds: float) -> None:
        self._key = key.encode()
        self._max_age = max_age_seconds
        self._code_seconds = code_seconds

    def issue(self, visitor_id: str | None = None, now: float | None = None) -> tuple[str, str]:
        """A new token for ``visitor_id`` (a new visitor when None): ``(visitor_id, token)``."""
        visitor = visitor_id or uuid4().hex
        issued = str(int(now if now is not None else time.time()))
        mac = base64.urlsafe_b64encode(_mac(self._key, "visitor", visitor, issued)).decode()
        return visitor, _SEPARATOR.join((visitor, issued, mac.rstrip("=")))

    def visitor(self, token: str, now: float | None = None) -> str | None:
        """The visitor a token names, or None when it is forged, malformed or expired."""
        parts = token.split(_SEPARATOR)
        if len(parts) != 3:
            return None
        visitor, issued, mac = parts
        if not (_VISITOR.fullmatch(visitor) and _ISSUED.fullmatch(issued) and _MAC.fullmatch(mac)):
            return None
        expected = base64.urlsafe_b64encode(_mac(self._key, "visitor", visitor, issued))
        if not hmac.compare_digest(expected.decode().rstrip("="), mac):
            return None
        age = (now if now is not None else time.time()) - int(issued)
        return visitor if 0 <= age <= self._max_age else None

    def code(self, visitor_id: str, address: str, now: float | None = None) -> str:
        """The six-digit code that proves ``visitor_id`` reads ``address``, for now."""
        return self._code_at(visitor_id, address, self._slot(now))

    def check_code(
        self, visitor_id: str, address: str, code: str, now: float | None = None
    ) -> bool:
        code = code.strip()
        if not _CODE.fullmatch(code):
            return False
        slot = self._slot(now)
        return any(
            hmac.compare_digest(self._code_at(visitor_id, address, s), code)
            for s in (slot, slot - 1)
        )

    def _slot(self, now: float | None) -> int:
        return int((now if now is not None else time.time()) // self._code_seconds)

    def _code_at(self, visitor_id: str, address: str, slot: int) -> str:
        digest = _mac(self._key, "verify", visitor_id, address, str(slot))
        return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"
