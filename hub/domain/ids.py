"""Identifiers: time-ordered UUIDv7 and the deterministic ids the store's uniqueness relies on."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import datetime
from uuid import UUID

_MESSAGE_NAMESPACE = b"interaction-hub/message/v1\x00"


def _with_version(raw: bytes, version: int) -> UUID:
    buf = bytearray(raw[:16])
    buf[6] = (buf[6] & 0x0F) | (version << 4)
    buf[8] = (buf[8] & 0x3F) | 0x80  # RFC 9562 variant
    return UUID(bytes=bytes(buf))


def uuid7(at: datetime | None = None, seed: bytes | None = None) -> UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then random bits.

    With ``seed`` the "random" bits come from a hash of it, so the same (time, seed) always gives
    the same id: published event ids stay stable across replays.
    """
    millis = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    tail = hashlib.sha256(seed).digest()[:10] if seed is not None else os.urandom(10)
    return _with_version(millis.to_bytes(6, "big") + tail, 7)


def message_id(channel: str, provider_message_id: str) -> UUID:
    """The id of a message: the same provider message on the same channel always maps here."""
    digest = hashlib.sha256(
        _MESSAGE_NAMESPACE + channel.encode() + b"\x00" + provider_message_id.encode()
    ).digest()
    return _with_version(digest, 8)


def address_id(address: str, pepper: bytes) -> UUID:
    """The id of an address claim: keyed hash, so the id does not reveal a phone number."""
    return _with_version(hmac.new(pepper, address.encode(), hashlib.sha256).digest(), 8)
