"""Crypto-shredding: personal data in stored events is encrypted with a per-customer data key.

Destroying a customer's key (erasure) makes every copy of their personal data unreadable,
including in old events and replays. The domain sees keys through the :class:`KeyStore` port;
an adapter in ``hub.store.keys`` keeps them wrapped by a master key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.events.common import scrub_json

_PREFIX = "pd1:"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class KeyStore(Protocol):
    """Where per-customer data keys live."""

    def load(self, key_id: UUID) -> bytes | None:
        """The key, or None when it never existed or was destroyed."""

    def load_many(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes]:
        """The keys of these ids that exist, in one read."""

    def save(self, keys: dict[UUID, bytes]) -> None:
        """Keep new keys (in one transaction); an id that has a key already keeps its own."""

    def destroy(self, key_id: UUID) -> None:
        """Forget the key for good."""


class PersonalDataCipher:
    """Encrypts and decrypts personal fields with the key of the customer they belong to."""

    def __init__(self, keys: KeyStore, cache_size: int = 100_000) -> None:
        self._keys = keys
        self._cache: dict[UUID, AESGCM | None] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def new_key(self, key_id: UUID) -> bytes:
        """A fresh key for a new customer, usable at once; the caller saves it with
        :meth:`save_keys` before saving events encrypted with it."""
        raw = AESGCM.generate_key(bit_length=256)
        with self._lock:
            self._cache[key_id] = AESGCM(raw)
        return raw

    def save_keys(self, keys: dict[UUID, bytes]) -> None:
        if keys:
            self._keys.save(keys)

    def discard_keys(self, key_ids: list[UUID]) -> None:
        """Destroy keys made for customers that were never recorded (a lost race)."""
        for key_id in key_ids:
            self._keys.destroy(key_id)
            self.forget(key_id)

    def erase(self, customer_id: UUID) -> None:
        """Destroy every data key of the customer and drop them from the cache: their
        personal data is unreadable from now on, in every event and every replay."""
        self._keys.destroy(customer_id)
        self.forget(customer_id)

    def forget(self, key_id: UUID) -> None:
        """Drop a cached key (after erasure)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def prefetch(self, key_ids: Iterable[UUID]) -> None:
        """Load the keys of many customers in one read (before decrypting a batch)."""
        missing = {k for k in key_ids if k not in self._cache}
        if not missing:
            return
        loaded = self._keys.load_many(missing)
        with self._lock:
            if len(self._cache) + len(loaded) > self._cache_size:
                self._cache.clear()
            for key_id, raw in loaded.items():
                self._cache[key_id] = AESGCM(raw)

    def _aead(self, key_id: UUID) -> AESGCM | None:
        try:
            return self._cache[key_id]
        except KeyError:
            pass
        raw = self._keys.load(key_id)
        aead = AESGCM(raw) if raw is not None else None
        if aead is not None:  # a missing key may be created later; do not cache its absence
            with self._lock:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[key_id] = aead
        return aead

    def encrypt(self, key_id: UUID, value: str | None) -> str | None:
        if value is None:
            return None
        aead = self._aead(key_id)
        if aead is None:
            raise LookupError(f"no data key for {key_id}")
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, value.encode(), key_id.bytes)
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, key_id: UUID, token: str | None) -> str | None:
        """The plaintext, or None when the value is absent or its key was destroyed."""
        if token is None:
            return None
        aead = self._aead(key_id)
        if aead is None:
            return None
        raw = binascii.a2b_base64(token[len(_PREFIX) :])
        return aead.decrypt(raw[:12], raw[12:], key_id.bytes).decode()

    def is_erased(self, key_id: UUID) -> bool:
        return self._aead(key_id) is None

    def encrypt_json(self, key_id: UUID, value: Any) -> str | None:
        if not value:
            return None
        # Not ASCII-escaped: a lone surrogate must fail here, at the write, not as a "\\udXXX"
        # escape that decodes into text no reader can encode again.
        return self.encrypt(key_id, json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def decrypt_json(self, key_id: UUID, token: str | None) -> Any:
        plain = self.decrypt(key_id, token)
        if plain is None:
            return None
        value = json.loads(plain)
        # Stored before the hub refused them: such escapes would make the event unpublishable.
        return scrub_json(value) if _SURROGATE_ESCAPE.search(plain) else value
