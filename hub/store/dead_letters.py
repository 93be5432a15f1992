"""Dead letters: what the hub received but could not record, kept whole and encrypted until an
operator retries or drops it, or it ages out.

An original is complete (a mail's raw bytes, a webhook request, an inbound interaction's JSON):
enough to hand it to the path it came in by again. It is sealed with AES-GCM under a key
derived from the master key; so are the reason and the last error, which may quote what was
received (a sender's address). Only what says nothing about a person is plain: id, kind,
source, times, size, attempts.

A letter's id derives from its kind, source and bytes (keyed, so it reveals nothing): the same
original set aside twice (a redelivered Kafka batch, a mail resent after a lost ``250``) is one
letter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    Uuid,
    and_,
    func,
    or_,
    select,
)

from hub.domain.errors import NotFound
from hub.events.common import scrub_text
from hub.sql import insert_ignoring_duplicates
from hub.store.keys import derive_key

__all__ = [
    "KINDS",
    "DeadLetter",
    "DeadLetters",
    "Kind",
    "NewDeadLetter",
    "Original",
    "dead_letters",
]

#: ``email``: a raw message (SMTP listener, IMAP poller); ``webhook``: a provider request;
#: ``interaction``: an inbound interaction's JSON (an item that failed to record, or a
#: ``hub.inbound`` record the distributed processor could never process).
Kind = Literal["email", "webhook", "interaction"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# HKDF labels: one key per purpose, none of them the master key itself (which wraps the
# customers' data keys).
_SEAL_INFO = b"interaction-hub/dead-letters/aes-gcm/v1"
_ID_INFO = b"interaction-hub/dead-letters/ids/v1"
_ID_NAMESPACE = UUID("5d1c3a9e-6f0b-4a4e-9c59-0d7f2b8e4a11")
_NONCE = 12

metadata = MetaData()
dead_letters = Table(
    "hub_dead_letters",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("source", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    # nonce + AES-GCM ciphertext, bound to the row's id and the column (additional data)
    Column("sealed_reason", LargeBinary, nullable=False),
    Column("sealed_last_error", LargeBinary, nullable=True),
    Column("sealed_original", LargeBinary, nullable=False),
    Index("hub_dead_letters_received", "received_at"),
)

#: The table the gateway kept before (size, hash and first bytes only): replaced, see
#: :meth:`DeadLetters.create_table`.
_REPLACED_TABLE = "connector_dead_letters"


@dataclass(frozen=True)
class Original:
    """What was received, complete.

    ``body`` is the raw message, the webhook's body or the interaction's JSON; ``fields`` the
    rest: for a webhook ``method``, ``hook``, ``url``, ``headers``, ``query``; for a mail how it
    came (``via``: ``smtp`` or ``imap``, the mailbox and UID); for an interaction the record's
    ``key``."""

    kind: Kind
    body: bytes
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def email(cls, raw: bytes, **fields: Any) -> Original:
        return cls("email", raw, fields)

    @classmethod
    def webhook(
        cls,
        *,
        method: str,
        hook: str,
        url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
    ) -> Original:
        fields = {
            "method": method,
            "hook": hook,
            "url": url,
            "headers": dict(headers),
            "query": dict(query),
        }
        return cls("webhook", body, fields)

    @classmethod
    def interaction(cls, value: bytes, **fields: Any) -> Original:
        return cls("interaction", value, fields)

    def to_bytes(self) -> bytes:
        """``len(header) header body``: the fields as JSON, then the body as it is (a mail
        of megabytes is not inflated by base64)."""
        header = json.dumps(dict(self.fields), separators=(",", ":")).encode()
        return len(header).to_bytes(4, "big") + header + self.body

    @classmethod
    def from_bytes(cls, kind: Kind, data: bytes) -> Original:
        size = int.from_bytes(data[:4], "big")
        return cls(kind, data[4 + size :], json.loads(data[4 : 4 + size]))


@dataclass(frozen=True)
class NewDeadLetter:
    """An original to set aside, with the reason it could not be recorded."""

    source: str
    reason: str
    original: Original
    received_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter; ``original`` is decrypted only when asked for (:meth:`DeadLetters.get`)."""

    id: UUID
    kind: Kind
    source: str
    reason: str
    received_at: datetime
    size: int
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    original: Original | None = None


class DeadLetters:
    """The dead-letter table of the state database: add, list, read, retry bookkeeping, drop,
    purge by age. ``clock`` gives receipt times and the age purges count from."""

    def __init__(
        self,
        engine: Engine,
        master_key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._seal = AESGCM(derive_key(master_key, _SEAL_INFO))
        self._id_key = derive_key(master_key, _ID_INFO)
        self.clock = clock

    @staticmethod
    def create_table(engine: Engine) -> None:
        """Create the table (called under the schema lock with the gateway's tables), and drop
        the one it replaces: that held a size, a hash and the first 8 KiB of each item, in
        plaintext and for ever, and nothing it kept can be retried."""
        metadata.create_all(engine)
        Table(_REPLACED_TABLE, MetaData()).drop(engine, checkfirst=True)

    # -- writing ---------------------------------------------------------------------------

    def letter_id(self, kind: Kind, source: str, body: bytes) -> UUID:
        """The id an original gets: the same bytes from the same source are one letter."""
        mac = hmac.new(self._id_key, f"{kind}\0{source}\0".encode(), hashlib.sha256)
        mac.update(body)
        return uuid.uuid5(_ID_NAMESPACE, mac.hexdigest())

    def add(self, letters: Sequence[NewDeadLetter]) -> list[UUID]:
        """Keep ``letters`` (one transaction); returns their ids. One already kept (the same
        original again) stays as it is."""
        rows: list[dict[str, Any]] = []
        ids: list[UUID] = []
        for letter in letters:
            original = letter.original
            letter_id = self.letter_id(original.kind, letter.source, original.body)
            ids.append(letter_id)
            rows.append(
                {
                    "id": letter_id,
                    "kind": original.kind,
                    "source": letter.source[:64],
                    "received_at": (letter.received_at or self.clock()).astimezone(UTC),
                    "size": len(original.body),
                    "attempts": 0,
                    "sealed_reason": self._sealed(letter_id, b"reason", _text(letter.reason)),
                    "sealed_original": self._sealed(letter_id, b"original", original.to_bytes()),
                }
            )
        if rows:
            with self._writing() as conn:
                insert_ignoring_duplicates(conn, dead_letters, rows)
        return ids

    def failed_again(self, letter_id: UUID, error: str) -> DeadLetter | None:
        """Record a retry that failed: attempts + 1, the new error. None if the letter is gone
        (dropped, or retried successfully elsewhere meanwhile)."""
        sealed = self._sealed(letter_id, b"last_error", _text(error))
        with self._writing() as conn:
            conn.execute(
                dead_letters.update()
                .where(dead_letters.c.id == letter_id)
                .values(
                    attempts=dead_letters.c.attempts + 1,
                    last_attempt_at=self.clock().astimezone(UTC),
                    sealed_last_error=sealed,
                )
            )
        return self.find(letter_id)

    def drop(self, letter_id: UUID) -> bool:
        """Forget a letter; False when there was none."""
        with self._writing() as conn:
            deleted = conn.execute(dead_letters.delete().where(dead_letters.c.id == letter_id))
        return bool(deleted.rowcount)

    def purge(self, older_than: datetime) -> int:
        """Drop every letter received before ``older_than``; returns how many."""
        with self._writing() as conn:
            deleted = conn.execute(
                dead_letters.delete().where(dead_letters.c.received_at < older_than.astimezone(UTC))
            )
        return int(deleted.rowcount or 0)

    def purge_mentioning(self, needles: Sequence[bytes]) -> int:
        """Drop every letter whose original, reason or last error contains one of ``needles``
        (compared case-insensitively): an erased customer's addresses. Letters are opened one
        page at a time; returns how many were dropped."""
        wanted = [n.lower() for n in needles if n]
        if not wanted:
            return 0
        doomed: list[UUID] = []
        columns = (
            dead_letters.c.id,
            dead_letters.c.sealed_original,
            dead_letters.c.sealed_reason,
            dead_letters.c.sealed_last_error,
        )
        after: UUID | None = None
        while True:
            query = select(*columns).order_by(dead_letters.c.id).limit(200)
            if after is not None:
                query = query.where(dead_letters.c.id > after)
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                break
            for letter_id, original, reason, last_error in rows:
                opened = [
                    self._opened(letter_id, b"original", original),
                    self._opened(letter_id, b"reason", reason),
                ]
                if last_error is not None:
                    opened.append(self._opened(letter_id, b"last_error", last_error))
                text = b"\0".join(opened).lower()
                if any(needle in text for needle in wanted):
                    doomed.append(letter_id)
            after = rows[-1][0]
        if doomed:
            with self._writing() as conn:
                conn.execute(dead_letters.delete().where(dead_letters.c.id.in_(doomed)))
        return len(doomed)

    def purge_expired(self, retention: timedelta) -> int:
        """Drop the letters older than ``retention`` by the clock."""
        return self.purge(self.clock() - retention)

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(dead_letters)) or 0)

    def list(
        self,
        limit: int = 100,
        *,
        after: UUID | None = None,
        kind: Kind | None = None,
        source: str | None = None,
    ) -> list[DeadLetter]:
        """Newest first, without originals; ``after``: the last id of the previous page."""
        query = select(*_LISTED).order_by(
            dead_letters.c.received_at.desc(), dead_letters.c.id.desc()
        )
        if kind is not None:
            query = query.where(dead_letters.c.kind == kind)
        if source is not None:
            query = query.where(dead_letters.c.source == source)
        with self._engine.connect() as conn:
            if after is not None:
                at = conn.scalar(
                    select(dead_letters.c.received_at).where(dead_letters.c.id == after)
                )
                if at is None:
                    raise NotFound(f"no dead letter {after} to page after", id=str(after))
                query = query.where(
                    or_(
                        dead_letters.c.received_at < at,
                        and_(dead_letters.c.received_at == at, dead_letters.c.id < after),
                    )
                )
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [self._letter(row) for row in rows]

    def find(self, letter_id: UUID, *, original: bool = False) -> DeadLetter | None:
        columns = [*_LISTED, dead_letters.c.sealed_original] if original else _LISTED
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(*columns).where(dead_letters.c.id == letter_id))
                .mappings()
                .first()
            )
        return None if row is None else self._letter(row, original=original)

    def get(self, letter_id: UUID) -> DeadLetter:
        """The letter with its original decrypted; :class:`NotFound` if there is none."""
        found = self.find(letter_id, original=True)
        if found is None:
            raise NotFound(f"no dead letter {letter_id}", id=str(letter_id))
        return found

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        # ``hub_write``: SQLite takes its write lock at BEGIN (see hub.store.database).
        with self._engine.connect().execution_options(hub_write=True) as conn, conn.begin():
            yield conn

    # -- sealing ---------------------------------------------------------------------------

    def _sealed(self, letter_id: UUID, column: bytes, plain: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._seal.encrypt(nonce, plain, letter_id.bytes + column)

    def _opened(self, letter_id: UUID, column: bytes, sealed: bytes) -> bytes:
        return self._seal.decrypt(sealed[:_NONCE], sealed[_NONCE:], letter_id.bytes + column)

    def _letter(self, row: RowMapping, *, original: bool = False) -> DeadLetter:
        letter_id: UUID = row["id"]
        kind: Kind = row["kind"]
        last_error = row["sealed_last_error"]
        last_attempt = row["last_attempt_at"]
        return DeadLetter(
            id=letter_id,
            kind=kind,
            source=row["source"],
            reason=self._opened(letter_id, b"reason", row["sealed_reason"]).decode(),
            received_at=as_utc(row["received_at"]),
            size=row["size"],
            attempts=row["attempts"],
            last_error=(
                self._opened(letter_id, b"last_error", last_error).decode()
                if last_error is not None
                else None
            ),
            last_attempt_at=as_utc(last_attempt) if last_attempt is not None else None,
            original=(
                Original.from_bytes(
                    kind, self._opened(letter_id, b"original", row["sealed_original"])
                )
                if original
                else None
            ),
        )


_LISTED = [c for c in dead_letters.columns if c.name != "sealed_original"]


def _text(value: str) -> bytes:
    # A reason may quote what was received, lone surrogates included: kept, not refused.
    return scrub_text(value).encode()


def as_utc(value: datetime) -> datetime:
    """A time from the table, aware whatever the backend returns (SQLite keeps no offset)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
