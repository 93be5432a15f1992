"""Reads across the views, for the agent console: the work queue (conversations with their
customer's name and unread count), a customer's page in one go, and a timeline's new items.

The console never reads the event store for lists; the views answer (a customer of 10,000
interactions opens with one page of its timeline). Rules the views do not hold (consent,
service windows) come from the domain, for one customer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, DateTime, Uuid, func, literal, select, tuple_

from hub.projections.base import as_utc
from hub.projections.conversations import ConversationRecord, activity, conversations
from hub.projections.directory import CustomerRecord, customers, merges
from hub.projections.timeline import TimelineItem, decode_cursor, encode_cursor, timeline_items
from hub.projections.views import Views

QUEUE_PAGE = 50
TIMELINE_PAGE = 50
RECENT_RESOLVED = 5
#: Open conversations shown with their reply forms; the rest are counted (and in the queue).
ACTIVE_SHOWN = 10


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A conversation of the queue, with the customer the console shows for it."""

    conversation: ConversationRecord
    customer_id: UUID  # whom the console shows: the root of a merged group
    customer_name: str | None
    unread: int


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which conversations the queue lists."""

    statuses: tuple[str, ...] = ("open", "pending")
    channel: str | None = None
    assignee: str | None = None  # a name, or "" for unassigned; None: anyone


def queue(
    conn: Connection, wanted: QueueFilter, before: str | None
) -> tuple[list[QueueRow], str | None]:
    """Conversations across every channel, newest activity first, a page at a time."""
    c, a, m = conversations.c, activity.c, merges.c
    member, root = customers.alias("member"), customers.alias("root")
    shown_id = func.coalesce(m.root_id, c.customer_id)
    query = (
        select(
            conversations,
            a.unread,
            shown_id.label("shown_id"),
            func.coalesce(root.c.display_name, member.c.display_name).label("display_name"),
        )
        .select_from(
            conversations.outerjoin(activity, a.conversation_id == c.conversation_id)
            .outerjoin(merges, m.customer_id == c.customer_id)
            .outerjoin(member, member.c.customer_id == c.customer_id)
            .outerjoin(root, root.c.customer_id == m.root_id)
        )
        .where(c.status.in_(list(wanted.statuses)))
        .order_by(c.last_activity_at.desc(), c.conversation_id.desc())
        .limit(QUEUE_PAGE + 1)
    )
    if wanted.channel:
        query = query.where(c.channel == wanted.channel)
    if wanted.assignee == "":
        query = query.where(c.assignee.is_(None))
    elif wanted.assignee is not None:
        query = query.where(c.assignee == wanted.assignee)
    if before:
        at, conversation_id = decode_cursor(before)
        query = query.where(
            tuple_(c.last_activity_at, c.conversation_id)
            < tuple_(literal(at, DateTime(timezone=True)), literal(conversation_id, Uuid))
        )
    rows = conn.execute(query).mappings().all()
    page = [_queue_row(r) for r in rows[:QUEUE_PAGE]]
    more = len(rows) > QUEUE_PAGE
    last = page[-1].conversation if page else None
    cursor = encode_cursor(last.last_activity_at, last.conversation_id) if more and last else None
    return page, cursor


def _queue_row(row: Any) -> QueueRow:
    values = {k: row[k] for k in ConversationRecord.__slots__}
    values["opened_at"] = as_utc(values["opened_at"])
    values["last_activity_at"] = as_utc(values["last_activity_at"])
    return QueueRow(
        ConversationRecord(**values), row["shown_id"], row["display_name"], row["unread"] or 0
    )


def assignees(conn: Connection) -> list[str]:
    """Everyone open or pending work is assigned to (the queue's filter)."""
    c = conversations.c
    return list(
        conn.scalars(
            select(c.assignee)
            .where(c.assignee.is_not(None), c.status.in_(["open", "pending"]))
            .distinct()
            .order_by(c.assignee)
        )
    )


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """What a customer's page shows, read in one connection."""

    profile: CustomerRecord
    group: list[UUID]
    active: list[ConversationRecord]  # open and pending, newest activity first (the first few)
    more_active: int  # open and pending ones not shown
    resolved: list[ConversationRecord]  # the latest few
    unread: dict[UUID, int]
    items: list[TimelineItem]
    older: str | None  # cursor of the next (older) page


def customer_page(conn: Connection, views: Views, customer_id: UUID) -> CustomerPage | None:
    """The customer's profile (of the whole group, when merged), their conversations and
    the newest page of their timeline; None for an unknown customer."""
    profile = views.directory.profile(conn, customer_id)
    if profile is None:
        return None
    group = [profile.customer_id, *profile.merged_customer_ids]
    active = views.conversations.for_customer(conn, group, limit=ACTIVE_SHOWN)
    more = views.conversations.count_for_customer(conn, group) - len(active)
    resolved = views.conversations.for_customer(
        conn, group, statuses=("resolved",), limit=RECENT_RESOLVED
    )
    items, older = views.timeline.page(conn, group, TIMELINE_PAGE, None)
    unread = views.conversations.unread(conn, [c.conversation_id for c in active])
    return CustomerPage(
        profile=profile,
        group=group,
        active=active,
        more_active=more,
        resolved=resolved,
        unread=unread,
        items=items,
        older=older,
    )


def timeline_after(conn: Connection, group: list[UUID], position: int) -> list[TimelineItem]:
    """Items of the group recorded after ``position``, oldest first (live updates)."""
    t = timeline_items
    rows = (
        conn.execute(
            select(t)
            .where(t.c.customer_id.in_(group), t.c.position > position)
            .order_by(t.c.position)
            .limit(200)
        )
        .mappings()
        .all()
    )
    return [TimelineItem.from_row(r) for r in rows]
