"""Per-customer data keys and the hub's secrets per day, wrapped by the master key, in tables of
their own.

A key is never in an event: destroying its row is what erases a customer's personal data;
destroying a day's secret is what expires the message bodies of that day (docs/retention.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    select,
)

from hub.sql import insert_ignoring_duplicates, write_transaction

metadata = MetaData()
data_keys = Table(
    "hub_data_keys",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
#: One secret per day (``yyyymmdd``, UTC) for the whole hub; a destroyed day keeps its row
#: with no secret, so it never gets a new one (whose values could be mistaken for its own).
period_secrets = Table(
    "hub_period_secrets",
    metadata,
    Column("period", String(8), primary_key=True),
    Column("wrapped_secret", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
)


class SqlKeyStore:
    """The ``KeyStore`` port on a SQL table; keys are AES-GCM wrapped with the master key."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = engine
        self._wrap = AESGCM(master_key)
        metadata.create_all(engine)

    def load(self, key_id: UUID) -> bytes | None:
        with self._engine.connect() as conn:
            wrapped = conn.scalar(
                select(data_keys.c.wrapped_key).where(data_keys.c.key_id == key_id)
            )
        if wrapped is None:
            return None
        return self._wrap.decrypt(wrapped[:12], wrapped[12:], key_id.bytes)

    def load_many(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes]:
        wanted = list(key_ids)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(data_keys.c.key_id, data_keys.c.wrapped_key).where(
                    data_keys.c.key_id.in_(wanted)
                )
            ).all()
        return {
            key_id: self._wrap.decrypt(wrapped[:12], wrapped[12:], key_id.bytes)
            for key_id, wrapped in rows
        }

    def save(self, keys: dict[UUID, bytes]) -> None:
        now = datetime.now(UTC)
        rows = []
        for key_id, raw in keys.items():
            nonce = os.urandom(12)
            wrapped = nonce + self._wrap.encrypt(nonce, raw, key_id.bytes)
            rows.append({"key_id": key_id, "wrapped_key": wrapped, "created_at": now})
        with self._engine.begin() as conn:
            insert_ignoring_duplicates(conn, data_keys, rows)

    def destroy(self, key_id: UUID) -> None:
        with self._engine.begin() as conn:
            conn.execute(data_keys.delete().where(data_keys.c.key_id == key_id))


class SqlPeriodSecrets:
    """The ``PeriodSecretStore`` port on a SQL table; secrets are AES-GCM wrapped with the
    master key, bound to their day."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = engine
        self._wrap = AESGCM(master_key)
        metadata.create_all(engine)

    def secret(self, period: str, *, create: bool) -> bytes | None:
        t = period_secrets.c
        with self._engine.begin() as conn:
            if create:  # racing processes: the first insert wins, everyone reads it back
                nonce = os.urandom(12)
                raw = os.urandom(32)
                wrapped = nonce + self._wrap.encrypt(nonce, raw, period.encode())
                row = {"period": period, "wrapped_secret": wrapped, "created_at": datetime.now(UTC)}
                insert_ignoring_duplicates(conn, period_secrets, [row])
            stored = conn.scalar(select(t.wrapped_secret).where(t.period == period))
        if stored is None:
            return None
        return self._wrap.decrypt(stored[:12], stored[12:], period.encode())

    def destroy_before(self, period: str) -> list[str]:
        t = period_secrets.c
        alive_before = (t.period < period) & t.wrapped_secret.is_not(None)
        with write_transaction(self._engine) as conn:  # reads, then writes: lock first
            days = list(conn.scalars(select(t.period).where(alive_before).order_by(t.period)))
            if days:
                conn.execute(
                    period_secrets.update()
                    .where(alive_before)
                    .values(wrapped_secret=None, destroyed_at=datetime.now(UTC))
                )
        return days


def destroyed_periods(engine: Engine) -> list[str]:
    """The days whose secrets were destroyed (``yyyymmdd``), oldest first."""
    t = period_secrets.c
    with engine.connect() as conn:
        query = select(t.period).where(t.wrapped_secret.is_(None)).order_by(t.period)
        return list(conn.scalars(query))


def derive_key(master_key: bytes, info: bytes) -> bytes:
    """A 256-bit key for one purpose (``info``), derived from the master key with HKDF: each
    purpose (dead letters, console forms...) has its own, and none is the wrapping key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)
