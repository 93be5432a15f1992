"""What the hub knew when: an index of ids, times and store positions from which the timeline
as it was at any moment is rebuilt from the log (docs/history.md).

It holds no personal data (no text, no address, no name): only which store position created
or changed which timeline item or conversation of which customer, when each position was
recorded, and every merge and unmerge. ``hub.runtime.history`` asks it which positions a page
of an old timeline needs, reads those events from the store and folds them with the
timeline's own code (``hub.projections.history_snapshot``).

- ``history_positions``: when each position was recorded (the position of a moment);
- ``history_items``: each timeline item, whose it is, when it happened, the position that
  created it (a page as of a position is chosen here, ordered like the timeline);
- ``history_events``: which positions changed which subject after its creation (a message:
  its delivery reports; a conversation: its status changes and assignments);
- ``history_conversations``: each conversation, whose it is, the position that opened it;
- ``history_merges``: each merge and unmerge (groups as of a position).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from hub.events import (
    ConversationAssigned,
    ConversationOpened,
    ConversationStatusChanged,
    CustomerMerged,
    CustomerUnmerged,
    Envelope,
    InteractionDeliveryUpdated,
    NoteAdded,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
)
from hub.projections.base import MessageEvent, Projection, as_utc, utc
from hub.projections.timeline import TimelineProjection, decode_cursor, makes_item
from hub.sql import insert_ignoring_duplicates

metadata = MetaData()
#: When each store position (of an event this index handles) was recorded.
positions = Table(
    "history_positions",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_history_positions_recorded", "recorded_at", "position"),
)
#: Every timeline item: whose, when it happened, the position that created it, its kind
#: (message, note or event) and conversation (message counts as of a position).
items = Table(
    "history_items",
    metadata,
    Column("item_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("conversation_id", Uuid),
    # Covering the page query (a group's items up to a position, newest first) and the
    # message counts (its messages up to a position, by conversation).
    Index(
        "ix_history_items_customer",
        "customer_id",
        "occurred_at",
        "item_id",
        "position",
        "kind",
        "conversation_id",
    ),
)
#: Which store positions changed which subject after creating it: a message (its delivery
#: reports) or a conversation (its status changes and assignments).
events = Table(
    "history_events",
    metadata,
    Column("subject_id", Uuid, primary_key=True),
    Column("position", BigInteger, primary_key=True),
)
conversations = Table(
    "history_conversations",
    metadata,
    Column("conversation_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_history_conversations_customer", "customer_id"),
)
#: Each merge (``other_id``: the customer merged into) and unmerge (``other_id``: the one left).
merges = Table(
    "history_merges",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("other_id", Uuid, nullable=False),
    Index("ix_history_merges_customer", "customer_id"),
    Index("ix_history_merges_other", "other_id"),
)
#: What changes a conversation after its opening.
_CONVERSATION_CHANGES = (ConversationStatusChanged, ConversationAssigned)
_SCHEDULE_CHANGES = (ScheduledMessageCancelled, ScheduledMessageSkipped, ScheduledMessageQueued)


class HistoryProjection(Projection):
    name = "history"
    #: Whatever makes the timeline (so items the timeline learns to show are indexed too),
    #: and the openings of conversations.
    handles = TimelineProjection.handles | {"conversation.opened.v1"}
    tables = (positions, items, events, conversations, merges)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Ids and times only, but nothing is left to show of an erased customer: its items,
        conversations and merges go (so a group as of any moment no longer holds it). When
        positions were recorded stays: it names no one."""
        ids = list(customer_ids)
        i, c, m = items.c, conversations.c, merges.c
        their_items = select(i.item_id).where(i.customer_id.in_(ids))
        their_conversations = select(c.conversation_id).where(c.customer_id.in_(ids))
        conn.execute(events.delete().where(events.c.subject_id.in_(their_items)))
        conn.execute(events.delete().where(events.c.subject_id.in_(their_conversations)))
        conn.execute(items.delete().where(i.customer_id.in_(ids)))
        conn.execute(conversations.delete().where(c.customer_id.in_(ids)))
        conn.execute(merges.delete().where(or_(m.customer_id.in_(ids), m.other_id.in_(ids))))

    def apply(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        recorded: list[dict[str, Any]] = []
        new_items: dict[UUID, dict[str, Any]] = {}
        subjects: list[dict[str, Any]] = []
        opened: list[dict[str, Any]] = []
        merged: list[dict[str, Any]] = []
        for event in envelopes:
            recorded.append({"position": event.position, "recorded_at": utc(event.recorded_at)})
            for row in _items_of(event):
                new_items.setdefault(row["item_id"], row)  # the first creation counts
            subject = _subject_of(event)
            if subject is not None:
                subjects.append({"subject_id": subject, "position": event.position})
            if isinstance(event, ConversationOpened):
                opened.append(
                    {
                        "conversation_id": event.data.conversation_id,
                        "customer_id": event.customer_id,
                        "position": event.position,
                    }
                )
            elif isinstance(event, CustomerMerged | CustomerUnmerged):
                other = (
                    event.data.into_customer_id
                    if isinstance(event, CustomerMerged)
                    else event.data.from_customer_id
                )
                merged.append(
                    {
                        "position": event.position,
                        "customer_id": event.customer_id,
                        "other_id": other,
                    }
                )
        insert_ignoring_duplicates(conn, positions, recorded)
        insert_ignoring_duplicates(conn, items, list(new_items.values()))
        insert_ignoring_duplicates(conn, events, subjects)
        insert_ignoring_duplicates(conn, conversations, opened)
        insert_ignoring_duplicates(conn, merges, merged)

    # -- queries ---------------------------------------------------------------------------

    def position_at(self, conn: Connection, moment: datetime) -> int:
        """The last position recorded at or before ``moment`` (0: nothing was)."""
        p = positions.c
        found = conn.scalar(
            select(p.position)
            .where(p.recorded_at <= utc(moment))
            .order_by(p.recorded_at.desc(), p.position.desc())
            .limit(1)
        )
        return int(found or 0)

    def recorded_at(self, conn: Connection, position: int) -> datetime | None:
        """When the event at ``position`` was recorded (None: not one this index holds)."""
        found = conn.scalar(select(positions.c.recorded_at).where(positions.c.position == position))
        return as_utc(found) if found is not None else None

    def known(self, conn: Connection, customer_id: UUID, position: int) -> bool:
        """Whether the customer had appeared (its first item was recorded) by ``position``."""
        i = items.c
        first = conn.scalar(
            select(i.item_id).where(i.customer_id == customer_id, i.position <= position).limit(1)
        )
        return first is not None

    def merge_positions(self, conn: Connection, customer_id: UUID, position: int) -> list[int]:
        """The positions of every merge and unmerge up to ``position`` that links, directly or
        through others, to ``customer_id``: folded in order, they give its group then."""
        m = merges.c
        seen, frontier, found = {customer_id}, {customer_id}, set()
        while frontier:
            rows = conn.execute(
                select(m.position, m.customer_id, m.other_id).where(
                    m.position <= position,
                    or_(m.customer_id.in_(list(frontier)), m.other_id.in_(list(frontier))),
                )
            ).all()
            frontier = set()
            for at, one, other in rows:
                found.add(int(at))
                frontier |= {one, other} - seen
                seen |= {one, other}
        return sorted(found)

    def page_positions(
        self,
        conn: Connection,
        group: Sequence[UUID],
        position: int,
        limit: int,
        before: str | None,
    ) -> list[int]:
        """The positions that make the page of ``limit`` items of ``group``'s timeline as of
        ``position`` (and the first item of the next page, to know there is one): those items'
        creations and updates up to then. ``before``: a timeline cursor (ValueError if not)."""
        i = items.c
        query = (
            select(i.item_id, i.position)
            .where(i.customer_id.in_(list(group)), i.position <= position)
            .order_by(i.occurred_at.desc(), i.item_id.desc())
            .limit(limit + 1)
        )
        if before:
            at, item_id = decode_cursor(before)
            query = query.where(
                tuple_(i.occurred_at, i.item_id)
                < tuple_(literal(at, DateTime(timezone=True)), literal(item_id, Uuid))
            )
        created = {row.item_id: row.position for row in conn.execute(query)}
        return self._with_changes(conn, created, position)

    def conversation_positions(
        self, conn: Connection, group: Sequence[UUID], position: int
    ) -> list[int]:
        """The openings, status changes and assignments up to ``position`` of the
        conversations ``group`` had then."""
        c = conversations.c
        opened = {
            row.conversation_id: row.position
            for row in conn.execute(
                select(c.conversation_id, c.position).where(
                    c.customer_id.in_(list(group)), c.position <= position
                )
            )
        }
        return self._with_changes(conn, opened, position)

    def message_activity(
        self, conn: Connection, group: Sequence[UUID], position: int
    ) -> dict[UUID, tuple[int, datetime]]:
        """Per conversation of ``group``: how many messages it had as of ``position``, and
        when the latest of them happened."""
        i = items.c
        rows = conn.execute(
            select(i.conversation_id, func.count(), func.max(i.occurred_at))
            .where(i.customer_id.in_(list(group)), i.kind == "message", i.position <= position)
            .group_by(i.conversation_id)
        )
        return {cid: (int(n), as_utc(at)) for cid, n, at in rows if cid is not None}

    def _with_changes(self, conn: Connection, created: dict[UUID, int], position: int) -> list[int]:
        """The positions that created these subjects (``created``: subject -> position) and
        those that changed them up to ``position``, in store order."""
        if not created:
            return []
        e = events.c
        changed = conn.scalars(
            select(e.position).where(e.subject_id.in_(list(created)), e.position <= position)
        )
        return sorted({*created.values(), *changed})


def _items_of(event: Envelope) -> list[dict[str, Any]]:
    """The timeline items ``event`` creates (as ``hub.projections.timeline`` names them)."""
    if not makes_item(event):
        return []
    kind, item_id, conversation_id = "event", event.id, None
    at = event.occurred_at
    if isinstance(event, MessageEvent):
        kind, item_id = "message", event.data.message_id
        conversation_id = event.data.conversation_id
    elif isinstance(event, NoteAdded):
        kind, item_id = "note", event.data.note_id
        conversation_id = event.data.conversation_id
    elif isinstance(event, ConversationStatusChanged | ConversationAssigned):
        conversation_id = event.data.conversation_id
    elif isinstance(event, ScheduledMessageScheduled):
        kind, item_id = "scheduled", event.data.occurrence_id
        conversation_id = event.data.conversation_id
        at = event.data.due_at  # as the timeline shows it
    found = [_item(item_id, event.customer_id, event, kind, conversation_id, at)]
    if isinstance(event, CustomerUnmerged):  # the customer it left sees it too
        found.append(_item(uuid5(event.id, "from"), event.data.from_customer_id, event))
    return found


def _item(
    item_id: UUID,
    customer_id: UUID,
    event: Envelope,
    kind: str = "event",
    conversation_id: UUID | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "customer_id": customer_id,
        "occurred_at": utc(at or event.occurred_at),
        "position": event.position,
        "kind": kind,
        "conversation_id": conversation_id,
    }


def _subject_of(event: Envelope) -> UUID | None:
    """What else ``event`` changes besides the items it creates: a message's delivery, a
    conversation's state."""
    if isinstance(event, InteractionDeliveryUpdated):
        return event.data.message_id
    if isinstance(event, _SCHEDULE_CHANGES):
        return event.data.occurrence_id
    if isinstance(event, _CONVERSATION_CHANGES):
        return event.data.conversation_id
    return None
