"""What each chat visitor has been shown: an ordered list of message ids per visitor.

The widget resumes from the last sequence number it saw, so the list is ordered by when a
message became visible to the visitor (the visitor's own once recorded, an agent's once the
dispatcher handed it over), not by when it was written. It holds ids only: the text comes from
the timeline, so erasing a customer leaves nothing personal here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    inspect,
    select,
)

from hub.sql import insert_ignoring_duplicates, write_transaction

metadata = MetaData()
chat_mailbox = Table(
    "chat_mailbox",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("visitor_id", String(64), nullable=False),
    Column("message_id", Uuid, nullable=False),
    Column("direction", String(16), nullable=False),
    UniqueConstraint("visitor_id", "message_id", name="uq_chat_mailbox_message"),
    Index("ix_chat_mailbox_visitor", "visitor_id", "seq"),
)
#: The signing key of visitor tokens when the operator set none (one row, the first wins).
chat_keys = Table(
    "chat_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("key", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Posted:
    seq: int
    message_id: UUID
    direction: str


class Mailbox:
    """The chat mailboxes, in the hub's state database (``metadata``'s tables: the
    connector's ``tables``, which the gateway creates)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def signing_key(self, candidate: str) -> str:
        """The hub's chat signing key: ``candidate`` if no process stored one before."""
        with self._engine.begin() as conn:
            insert_ignoring_duplicates(
                conn, chat_keys, [{"name": "visitor_tokens", "key": candidate}]
            )
            key = conn.scalar(select(chat_keys.c.key).where(chat_keys.c.name == "visitor_tokens"))
        return str(key)

    def post(self, visitor_id: str, message_id: UUID, direction: str) -> None:
        """Make a message visible to the visitor; posting it again changes nothing."""
        with self._engine.begin() as conn:
            row = {"visitor_id": visitor_id, "message_id": message_id, "direction": direction}
            insert_ignoring_duplicates(conn, chat_mailbox, [row])

    def forget(self, visitor_ids: Sequence[str]) -> int:
        """Delete these visitors' mailboxes (their customer was erased); returns the rows."""
        with write_transaction(self._engine) as conn:  # reads, then writes: lock first
            if not inspect(conn).has_table(chat_mailbox.name):
                return 0
            gone = conn.execute(
                chat_mailbox.delete().where(chat_mailbox.c.visitor_id.in_(visitor_ids))
            )
        return int(gone.rowcount or 0)

    def after(self, visitor_id: str, seq: int, limit: int = 200) -> Sequence[Posted]:
        """The visitor's messages after ``seq``, oldest first."""
        m = chat_mailbox.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(m.seq, m.message_id, m.direction)
                .where(m.visitor_id == visitor_id, m.seq > seq)
                .order_by(m.seq)
                .limit(limit)
            ).all()
        return [Posted(r.seq, r.message_id, r.direction) for r in rows]
