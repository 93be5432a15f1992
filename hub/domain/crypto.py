"""Crypto-shredding: personal data in stored events is encrypted with a per-customer data key.

Destroying a customer's key (erasure) makes every copy of their personal data unreadable,
including in old events and replays. The domain sees keys through the :class:`KeyStore` port;
an adapter in ``hub.store.keys`` keeps them wrapped by a master key.

Message bodies (text, subject, attachments' names and URLs, metadata) are *dated*: sealed
(``pd2:<yyyymmdd>:...``) with a key derived from the customer's key AND a secret of the day the
message happened (:class:`PeriodSecretStore`), so destroying either makes them unreadable:
erasure destroys the customer's key, retention by age destroys the day's secret
(docs/retention.md). With a retention period set, values of a time before it read as None at
once, whatever their format, and new values dated before it are not kept at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub import memory
from hub.events.common import scrub_json

_PREFIX = "pd1:"
#: Dated values: ``pd2:<yyyymmdd>:<base64 nonce + ciphertext>`` (see :meth:`encrypt_dated`).
_DATED_PREFIX = "pd2:"
_DATED_INFO = b"interaction-hub dated personal data v1:"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: How every encrypted value starts (``pd1:``, and any later format).
_SEALED = re.compile(r"pd\d+:")


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


class PeriodSecretStore(Protocol):
    """Where the hub's secret of each day (``yyyymmdd``, UTC) lives: one for the whole hub,
    whatever the customer. Retention by age destroys them (docs/retention.md)."""

    def secret(self, period: str, *, create: bool) -> bytes | None:
        """The day's secret. With ``create``, one is made first if the day never had one
        (processes racing to make it agree on one); a destroyed day never gets one again.
        None when the day's secret was destroyed (or, without ``create``, never made)."""

    def destroy_before(self, period: str) -> list[str]:
        """Destroy for good the secrets of every day before ``period``; the days destroyed
        by this call."""


def period_of(at: datetime) -> str:
    """The day (``yyyymmdd``, UTC) a dated value of time ``at`` is sealed under."""
    return at.astimezone(UTC).strftime("%Y%m%d")


#: Customers' data keys (and their dated keys), raw.
KEYS = memory.Part("customer keys", share=0.05, entry_bytes=220)


def _now() -> datetime:
    return datetime.now(UTC)


class PersonalDataCipher:
    """Encrypts and decrypts personal fields with the key of the customer they belong to.

    ``periods`` and ``retention`` enable dated values (:meth:`encrypt_dated`): without a
    period store they are sealed as plain ``pd1:`` values; without a retention nothing
    expires by age. ``clock`` gives "now" for the retention's cutoff.
    """

    def __init__(
        self,
        keys: KeyStore,
        cache_size: int | None = None,
        *,
        periods: PeriodSecretStore | None = None,
        retention: timedelta | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._keys = keys
        #: Raw customer keys by id. Raw bytes, not AESGCM objects: each of those holds an
        #: OpenSSL context of ~2.4 KB outside Python's heap, which at ``cache_size`` keys was
        #: most of a busy process's memory; building one per use costs ~1 us.
        self._cache: dict[UUID, bytes] = {}
        self._cache_size = KEYS.entries if cache_size is None else cache_size
        self._lock = threading.Lock()
        self._periods = periods
        self.retention = retention
        self._clock = clock
        #: The day secrets known alive; destroyed ones are never cached.
        self._secrets: dict[str, bytes] = {}
        #: Dated keys per customer and day, raw (bounded like ``_cache``, by customers).
        self._dated: dict[UUID, dict[str, bytes]] = {}

    def new_key(self, key_id: UUID) -> bytes:
        """A fresh key for a new customer, usable at once; the caller saves it with
        :meth:`save_keys` before saving events encrypted with it."""
        raw = AESGCM.generate_key(bit_length=256)
        with self._lock:
            self._cache[key_id] = raw
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
        """Drop a cached key (after erasure), and the dated keys derived from it."""
        with self._lock:
            self._cache.pop(key_id, None)
            self._dated.pop(key_id, None)

    def prefetch(self, key_ids: Iterable[UUID]) -> None:
        """Load the keys of many customers in one read (before decrypting a batch)."""
        missing = {k for k in key_ids if k not in self._cache}
        if not missing:
            return
        loaded = self._keys.load_many(missing)
        with self._lock:
            if len(self._cache) + len(loaded) > self._cache_size:
                self._cache.clear()
            self._cache.update(loaded)

    def _raw_key(self, key_id: UUID) -> bytes | None:
        """The customer's key, from the cache or the key store (None: destroyed, or not yet
        made)."""
        try:
            return self._cache[key_id]
        except KeyError:
            pass
        raw = self._keys.load(key_id)
        if raw is not None:  # a missing key may be created later; do not cache its absence
            with self._lock:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[key_id] = raw
        return raw

    def _aead(self, key_id: UUID) -> AESGCM | None:
        raw = self._raw_key(key_id)
        return AESGCM(raw) if raw is not None else None

    def encrypt(self, key_id: UUID, value: str | None) -> str | None:
        if value is None:
            return None
        aead = self._aead(key_id)
        if aead is None:
            raise LookupError(f"no data key for {key_id}")
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, value.encode(), key_id.bytes)
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def encrypt_dated(self, key_id: UUID, value: str | None, at: datetime) -> str | None:
        """``value`` sealed under the customer's key and the secret of the day of ``at`` (when
        the message it belongs to happened): destroying either makes it unreadable. None
        for None, and for a time the retention has expired already (or whose day's secret
        was destroyed): such a value could never be read, so it is not kept at all."""
        if value is None or self.expired(at):
            return None
        if self._periods is None:
            return self.encrypt(key_id, value)
        period = period_of(at)
        aead = self._dated_aead(key_id, period, create=True)
        if aead is None:
            if self._aead(key_id) is None:
                raise LookupError(f"no data key for {key_id}")
            return None  # the day's secret is destroyed
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, value.encode(), _dated_aad(key_id, period))
        return f"{_DATED_PREFIX}{period}:" + base64.b64encode(nonce + sealed).decode()

    def encrypt_json_dated(self, key_id: UUID, value: Any, at: datetime) -> str | None:
        """:meth:`encrypt_json` as a dated value (see :meth:`encrypt_dated`)."""
        if not value:
            return None
        return self.encrypt_dated(key_id, _json_text(value), at)

    def expired(self, at: datetime) -> bool:
        """Whether the retention hides the bodies of messages of time ``at``: it lies more
        than the retention period before now (never, without a retention)."""
        return self.retention is not None and at < self._clock() - self.retention

    def destroy_periods_before(self, cutoff: datetime) -> list[str]:
        """Destroy the secrets of the days wholly before ``cutoff`` (UTC): every dated value
        of those days is unreadable from now on, in every event and every replay. The days
        destroyed by this call."""
        period = period_of(cutoff)
        destroyed = self._periods.destroy_before(period) if self._periods is not None else []
        self.forget_periods_before(period)
        return destroyed

    def forget_periods_before(self, period: str) -> None:
        """Drop cached day secrets and dated keys of the days before ``period``."""
        with self._lock:
            for day in [d for d in self._secrets if d < period]:
                del self._secrets[day]
            for keys in self._dated.values():
                for day in [d for d in keys if d < period]:
                    del keys[day]

    def _first_kept_period(self) -> str | None:
        """The first day the retention keeps (None: every day)."""
        if self.retention is None:
            return None
        return period_of(self._clock() - self.retention)

    def _secret(self, period: str, create: bool) -> bytes | None:
        found = self._secrets.get(period)
        if found is not None or self._periods is None:
            return found
        secret = self._periods.secret(period, create=create)
        if secret is not None:
            with self._lock:
                self._secrets[period] = secret
        return secret

    def _dated_aead(self, key_id: UUID, period: str, create: bool) -> AESGCM | None:
        """The key of the customer's values of one day: HKDF of the customer's key, salted
        with the day's secret; None when either is gone."""
        known = self._dated.get(key_id)
        if known is not None and period in known:
            return AESGCM(known[period])
        raw = self._raw_key(key_id)
        if raw is None:
            return None
        secret = self._secret(period, create)
        if secret is None:
            return None
        info = _DATED_INFO + period.encode() + key_id.bytes
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=secret, info=info).derive(raw)
        with self._lock:
            if key_id not in self._dated and len(self._dated) >= self._cache_size:
                self._dated.clear()
            self._dated.setdefault(key_id, {})[period] = derived
        return AESGCM(derived)

    def _decrypt_dated(self, key_id: UUID, token: str) -> str | None:
        period, _, body = token[len(_DATED_PREFIX) :].partition(":")
        first_kept = self._first_kept_period()
        if first_kept is not None and period < first_kept:
            if period in self._secrets:  # destroyed by another process, or soon by this one
                self.forget_periods_before(first_kept)
            return None
        aead = self._dated_aead(key_id, period, create=False)
        if aead is None:
            return None
        raw = binascii.a2b_base64(body)
        return aead.decrypt(raw[:12], raw[12:], _dated_aad(key_id, period)).decode()

    def decrypt(self, key_id: UUID, token: str | None, *, at: datetime | None = None) -> str | None:
        """The plaintext, or None when the value is absent or its key was destroyed, a
        dated value's day secret was destroyed or is past the retention, or (given ``at``,
        the time of the message the value belongs to) the retention hides that time
        whatever the value's format."""
        if token is None or (at is not None and self.expired(at)):
            return None
        if token.startswith(_DATED_PREFIX):
            return self._decrypt_dated(key_id, token)
        aead = self._aead(key_id)
        if aead is None:
            return None
        raw = binascii.a2b_base64(token[len(_PREFIX) :])
        return aead.decrypt(raw[:12], raw[12:], key_id.bytes).decode()

    def decrypt_text(self, key_id: UUID, value: str | None) -> str | None:
        """Like :meth:`decrypt` for a field that was stored in clear before the hub encrypted
        it (a merge's reason): a value without the prefix is returned as it was, unless the
        customer was erased."""
        if value is None or _SEALED.match(value):
            return self.decrypt(key_id, value)
        return None if self.is_erased(key_id) else value

    def is_erased(self, key_id: UUID) -> bool:
        return self._raw_key(key_id) is None

    def encrypt_json(self, key_id: UUID, value: Any) -> str | None:
        if not value:
            return None
        return self.encrypt(key_id, _json_text(value))

    def decrypt_json(self, key_id: UUID, token: str | None, *, at: datetime | None = None) -> Any:
        """The JSON value, or None as :meth:`decrypt` says."""
        plain = self.decrypt(key_id, token, at=at)
        if plain is None:
            return None
        value = json.loads(plain)
        # Stored before the hub refused them: such escapes would make the event unpublishable.
        return scrub_json(value) if _SURROGATE_ESCAPE.search(plain) else value


def _json_text(value: Any) -> str:
    # Not ASCII-escaped: a lone surrogate must fail here, at the write, not as a "\\udXXX"
    # escape that decodes into text no reader can encode again.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _dated_aad(key_id: UUID, period: str) -> bytes:
    """What a dated value is bound to: its customer and its day."""
    return key_id.bytes + period.encode()
