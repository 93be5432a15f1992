"""Per-customer data keys, wrapped by the master key, in a table of their own.

A key is never in an event: destroying its row is what erases a customer's personal data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Column, DateTime, Engine, LargeBinary, MetaData, Table, Uuid, select

from hub.sql import insert_ignoring_duplicates

metadata = MetaData()
data_keys = Table(
    "hub_data_keys",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
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


def derive_key(master_key: bytes, info: bytes) -> bytes:
    """A 256-bit key for one purpose (``info``), derived from the master key with HKDF: each
    purpose (dead letters, console forms...) has its own, and none is the wrapping key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)
