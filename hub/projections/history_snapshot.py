"""A throwaway, in-memory copy of the timeline, conversation and merge views, folded from the
few events one read of an old timeline needs (docs/history.md).

The fold is the views' own code (``TimelineProjection.apply``, ``apply_merge``,
``ConversationsProjection.apply``) on a private SQLite database in memory: what it shows of a
moment is what the live views showed then, delivery states, conversation states and groups
included. Nothing of it reaches a file, and it is rolled back when the read ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from queue import Empty, SimpleQueue
from uuid import UUID

from sqlalchemy import Connection, Engine, bindparam, create_engine, select
from sqlalchemy.pool import StaticPool

from hub.events import CustomerMerged, CustomerUnmerged, Envelope
from hub.projections.base import as_utc
from hub.projections.conversations import (
    ConversationRecord,
    ConversationsProjection,
    activity,
    conversations,
)
from hub.projections.merges import apply_merge, group_of, merges
from hub.projections.timeline import TimelineItem, TimelineProjection, timeline_items

_TABLES = (timeline_items, merges, conversations, activity)
_STATUSES = ("open", "pending", "resolved")
_CONVERSATION_TYPES = frozenset(
    {"conversation.opened.v1", "conversation.status_changed.v1", "conversation.assigned.v1"}
)


class Snapshot:
    """The views of one moment, folded in memory (use :func:`snapshot`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.timeline = TimelineProjection()
        self.conversations = ConversationsProjection()

    def fold_merges(self, envelopes: Sequence[Envelope]) -> None:
        """Merges and unmerges, in store order (others are ignored)."""
        for event in envelopes:
            if isinstance(event, CustomerMerged | CustomerUnmerged):
                apply_merge(self.conn, event)

    def group(self, customer_id: UUID) -> list[UUID]:
        """The customers shown as one with ``customer_id`` (its root first)."""
        return group_of(self.conn, customer_id)

    def fold_timeline(self, envelopes: Sequence[Envelope]) -> None:
        mine = [e for e in envelopes if e.type in self.timeline.handles]
        if mine:
            self.timeline.apply(self.conn, mine)

    def page(
        self, group: Sequence[UUID], limit: int, before: str | None
    ) -> tuple[list[TimelineItem], str | None]:
        return self.timeline.page(self.conn, group, limit, before)

    def fold_conversations(
        self, envelopes: Sequence[Envelope], messages: Mapping[UUID, tuple[int, datetime]]
    ) -> None:
        """Openings, status changes and assignments; ``messages`` gives each conversation's
        message count and latest message time (counted in the index, not folded: a
        conversation may hold thousands)."""
        mine = [e for e in envelopes if e.type in _CONVERSATION_TYPES]
        if not mine:
            return
        self.conversations.apply(self.conn, mine)
        c = conversations.c
        opened = {
            row.conversation_id: as_utc(row.opened_at)
            for row in self.conn.execute(select(c.conversation_id, c.opened_at))
        }
        counts = [
            {"b_id": cid, "message_count": n, "last_activity_at": max(at, opened[cid])}
            for cid, (n, at) in messages.items()
            if cid in opened
        ]
        if counts:
            self.conn.execute(
                conversations.update().where(c.conversation_id == bindparam("b_id")), counts
            )

    def conversations_of(self, group: Sequence[UUID]) -> list[ConversationRecord]:
        """The group's conversations, newest activity first."""
        return self.conversations.for_customer(self.conn, group, statuses=_STATUSES)


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    """An empty :class:`Snapshot`; whatever is folded into it is rolled back when the block
    ends. Its in-memory database is kept for the next read (one per concurrent read, each
    with its tables made once and its statements compiled once)."""
    try:
        engine = _idle.get_nowait()
    except Empty:
        engine = _memory_engine()
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            yield Snapshot(conn)
            transaction.rollback()
    finally:
        _idle.put(engine)


#: In-memory databases not in use by a read (as many as reads ever ran at once).
_idle: SimpleQueue[Engine] = SimpleQueue()


def _memory_engine() -> Engine:
    # StaticPool: one connection, so every statement sees the same in-memory database; it is
    # used by one read at a time, whichever thread that read runs in.
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    for table in _TABLES:
        table.create(engine)
    return engine
