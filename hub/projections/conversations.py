"""Conversations: per thread its channel, status, assignee, activity and message count, and
how many of the customer's messages came since an agent last acted on it (unread)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    select,
)

from hub.events import (
    ConversationAssigned,
    ConversationOpened,
    ConversationStatusChanged,
    Envelope,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
    NoteAdded,
)
from hub.projections.base import MessageEvent, Projection, id_list, later, record_from_row, utc
from hub.sql import insert, insert_ignoring_duplicates

metadata = MetaData()
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("address", String(300)),
    Column("subject", Text),
    Column("status", String(16), nullable=False),
    Column("assignee", String(200)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_activity_at", DateTime(timezone=True), nullable=False),
    Column("message_count", Integer, nullable=False),
    Index("ix_conversations_customer", "customer_id", "status"),
    Index("ix_conversations_activity", "last_activity_at"),
)
#: Unread counts: the customer's messages since an agent last replied, wrote a note or changed
#: the status. Its own table, so a hub upgraded from before it starts counting at once
#: (``hub projections rebuild conversations`` counts the past too).
activity = Table(
    "conversation_activity",
    metadata,
    Column("conversation_id", Uuid, primary_key=True),
    Column("unread", Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    conversation_id: UUID
    customer_id: UUID
    channel: str
    address: str | None
    subject: str | None
    status: str
    assignee: str | None
    opened_at: datetime
    last_activity_at: datetime
    message_count: int

    @classmethod
    def from_row(cls, row: Any) -> ConversationRecord:
        """The record of a ``conversations`` row (a row with more columns will do)."""
        return record_from_row(cls, row, ("opened_at", "last_activity_at"))


class ConversationsProjection(Projection):
    name = "conversations"
    handles = frozenset(
        {
            "conversation.opened.v1",
            "conversation.status_changed.v1",
            "conversation.assigned.v1",
            "interaction.received.v1",
            "interaction.sent.v1",
            "interaction.queued.v1",
            "note.added.v1",
        }
    )
    tables = (conversations, activity)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Addresses and subjects live in the conversation rows: they go, with their unread
        counts."""
        c = conversations.c
        ids = select(c.conversation_id).where(c.customer_id.in_(customer_ids))
        conn.execute(activity.delete().where(activity.c.conversation_id.in_(ids)))
        conn.execute(conversations.delete().where(c.customer_id.in_(customer_ids)))

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        new: dict[UUID, dict[str, Any]] = {}
        changes: dict[UUID, dict[str, Any]] = {}  # for rows written by earlier batches
        unread: dict[UUID, tuple[bool, int]] = {}  # conversation -> (reset, inbound since)
        for event in events:
            _count_unread(unread, event)
            if isinstance(event, NoteAdded):
                continue
            if isinstance(event, ConversationOpened):
                d = event.data
                new.setdefault(
                    d.conversation_id,
                    {
                        "conversation_id": d.conversation_id,
                        "customer_id": event.customer_id,
                        "channel": d.channel,
                        "address": d.address,
                        "subject": d.subject,
                        "status": "open",
                        "assignee": None,
                        "opened_at": utc(event.occurred_at),
                        "last_activity_at": utc(event.occurred_at),
                        "message_count": 0,
                    },
                )
                continue
            conversation_id = event.data.conversation_id  # type: ignore[attr-defined]
            target = new.get(conversation_id)
            fresh = target is not None
            if target is None:
                target = changes.setdefault(conversation_id, {"b_id": conversation_id})
            count, at_key, status, assignee = (
                ("message_count", "last_activity_at", "status", "assignee")
                if fresh
                else ("b_count", "b_at", "b_status", "b_assignee")
            )
            if isinstance(event, MessageEvent):
                at = utc(event.occurred_at)
                target[count] = target.get(count, 0) + 1
                target[at_key] = max(at, target.get(at_key, at))
            elif isinstance(event, ConversationStatusChanged):
                target[status] = event.data.status
            elif isinstance(event, ConversationAssigned):
                target[assignee] = event.data.assignee
        insert_ignoring_duplicates(conn, conversations, list(new.values()))
        self._update(conn, list(changes.values()))
        self._update_unread(conn, unread)

    def _update_unread(self, conn: Connection, unread: dict[UUID, tuple[bool, int]]) -> None:
        for reset in (True, False):
            rows = [
                {"conversation_id": cid, "unread": n}
                for cid, (r, n) in unread.items()
                if r is reset
            ]
            if rows:
                statement = insert(conn, activity)
                value = statement.excluded.unread
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["conversation_id"],
                        set_={"unread": value if reset else activity.c.unread + value},
                    ),
                    rows,
                )

    def unread(self, conn: Connection, conversation_ids: Sequence[UUID]) -> dict[UUID, int]:
        if not conversation_ids:
            return {}
        rows = conn.execute(
            select(activity.c.conversation_id, activity.c.unread).where(
                activity.c.conversation_id.in_(list(conversation_ids))
            )
        )
        return {cid: n for cid, n in rows}

    def _update(self, conn: Connection, changes: list[dict[str, Any]]) -> None:
        """One executemany per shape of change (counters add, statuses overwrite)."""
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changes:
            by_shape.setdefault(tuple(sorted(change)), []).append(change)
        c = conversations.c
        for shape, rows in by_shape.items():
            values: dict[str, Any] = {}
            if "b_count" in shape:
                at = bindparam("b_at", type_=DateTime(timezone=True))
                values["message_count"] = c.message_count + bindparam("b_count")
                values["last_activity_at"] = later(c.last_activity_at, at)
            for column in ("status", "assignee"):
                if f"b_{column}" in shape:
                    values[column] = bindparam(f"b_{column}")
            conn.execute(
                conversations.update().where(c.conversation_id == bindparam("b_id")).values(values),
                rows,
            )

    def expire_bodies_before(self, conn: Connection, cutoff: datetime) -> int:
        """A conversation's subject is dated by its opening: blanked once that is past."""
        c = conversations.c
        blanked = conn.execute(
            conversations.update()
            .where(c.opened_at < utc(cutoff), c.subject.is_not(None))
            .values(subject=None)
        )
        return int(blanked.rowcount or 0)

    # -- queries ---------------------------------------------------------------------------

    def for_customer(
        self,
        conn: Connection,
        customer_id: UUID | Sequence[UUID],
        statuses: Sequence[str] = ("open", "pending"),
        limit: int | None = None,
    ) -> list[ConversationRecord]:
        """Conversations of a customer, or of every customer of a merged group, newest
        activity first (the first ``limit``)."""
        c = conversations.c
        ids = id_list(customer_id)
        rows = conn.execute(
            select(conversations)
            .where(c.customer_id.in_(ids), c.status.in_(list(statuses)))
            .order_by(c.last_activity_at.desc())
            .limit(limit)
        ).mappings()
        return [ConversationRecord.from_row(r) for r in rows]

    def count_for_customer(
        self,
        conn: Connection,
        customer_ids: Sequence[UUID],
        statuses: Sequence[str] = ("open", "pending"),
    ) -> int:
        c = conversations.c
        return int(
            conn.scalar(
                select(func.count())
                .select_from(conversations)
                .where(c.customer_id.in_(list(customer_ids)), c.status.in_(list(statuses)))
            )
            or 0
        )

    def get(self, conn: Connection, conversation_id: UUID) -> ConversationRecord | None:
        row = (
            conn.execute(
                select(conversations).where(conversations.c.conversation_id == conversation_id)
            )
            .mappings()
            .first()
        )
        return ConversationRecord.from_row(row) if row else None


def _count_unread(unread: dict[UUID, tuple[bool, int]], event: Envelope) -> None:
    """Fold one event into a batch's unread changes: the customer's messages add one; an
    agent's reply, note or status change starts again from zero."""
    if isinstance(event, InteractionReceived) and event.data.direction == "inbound":
        reset, n = unread.get(event.data.conversation_id, (False, 0))
        unread[event.data.conversation_id] = (reset, n + 1)
    elif isinstance(event, InteractionQueued | InteractionSent | NoteAdded) or (
        isinstance(event, ConversationStatusChanged) and event.data.actor is not None
    ):
        unread[event.data.conversation_id] = (True, 0)
