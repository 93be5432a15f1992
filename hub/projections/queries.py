"""Reads across the views, for the agent console: the work queue (conversations with their
customer's name and unread count), a customer's page in one go, and a timeline's new items.

The console never reads the event store for lists; the views answer (a customer of 10,000
interactions opens with one page of its timeline). Rules the views do not hold (consent,
service windows) come from the domain, for one customer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, DateTime, Uuid, case, func, literal, select, tuple_

from hub.projections.base import as_utc, utc
from hub.projections.conversations import ConversationRecord, activity, conversations
from hub.projections.directory import CustomerRecord, customers, merges
from hub.projections.service import service_conversations
from hub.projections.service_queries import SlaState
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
    #: Its SLA (None: the service projection does not know it yet).
    sla: SlaState | None = None


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which conversations the queue lists."""

    statuses: tuple[str, ...] = ("open", "pending")
    channel: str | None = None
    assignee: str | None = None  # a name, or "" for unassigned; None: anyone
    #: ``activity`` (newest first) or ``due`` (the next SLA due time first; only those
    #: with one).
    sort: str = "activity"
    #: Only those whose next SLA due time is before ``now + due_within`` (breached included).
    due_within: timedelta | None = None


def queue(
    conn: Connection, wanted: QueueFilter, before: str | None, now: datetime | None = None
) -> tuple[list[QueueRow], str | None]:
    """Conversations across every channel, newest activity first (or the next SLA due time
    first), a page at a time."""
    c, a, m, s = conversations.c, activity.c, merges.c, service_conversations.c
    member, root = customers.alias("member"), customers.alias("root")
    shown_id = func.coalesce(m.root_id, c.customer_id)
    # The resolution clock runs only while the conversation is open or pending.
    resolution_due = case((c.status == "resolved", None), else_=s.resolution_due_at)
    due = case(
        (s.response_due_at.is_(None), resolution_due),
        (resolution_due.is_(None), s.response_due_at),
        (s.response_due_at < resolution_due, s.response_due_at),
        else_=resolution_due,
    ).label("next_due_at")
    query = (
        select(
            conversations,
            a.unread,
            shown_id.label("shown_id"),
            func.coalesce(root.c.display_name, member.c.display_name).label("display_name"),
            s.policy.label("sla_policy"),
            s.waiting_since.label("sla_waiting_since"),
            s.response_due_at.label("sla_response_due_at"),
            resolution_due.label("sla_resolution_due_at"),
            (s.conversation_id.is_not(None)).label("sla_known"),
            due,
        )
        .select_from(
            conversations.outerjoin(activity, a.conversation_id == c.conversation_id)
            .outerjoin(merges, m.customer_id == c.customer_id)
            .outerjoin(member, member.c.customer_id == c.customer_id)
            .outerjoin(root, root.c.customer_id == m.root_id)
            .outerjoin(service_conversations, s.conversation_id == c.conversation_id)
        )
        .where(c.status.in_(list(wanted.statuses)))
        .limit(QUEUE_PAGE + 1)
    )
    key: Any
    if wanted.sort == "due":
        query = query.where(due.is_not(None)).order_by(due, c.conversation_id)
        key = due
    else:
        query = query.order_by(c.last_activity_at.desc(), c.conversation_id.desc())
        key = c.last_activity_at
    if wanted.channel:
        query = query.where(c.channel == wanted.channel)
    if wanted.assignee == "":
        query = query.where(c.assignee.is_(None))
    elif wanted.assignee is not None:
        query = query.where(c.assignee == wanted.assignee)
    if wanted.due_within is not None:
        limit = utc((now or datetime.now(UTC)) + wanted.due_within)
        query = query.where(due.is_not(None), due <= literal(limit, DateTime(timezone=True)))
    if before:
        at, conversation_id = decode_cursor(before)
        position = tuple_(literal(at, DateTime(timezone=True)), literal(conversation_id, Uuid))
        if wanted.sort == "due":
            query = query.where(tuple_(key, c.conversation_id) > position)
        else:
            query = query.where(tuple_(key, c.conversation_id) < position)
    rows = conn.execute(query).mappings().all()
    page = [_queue_row(r) for r in rows[:QUEUE_PAGE]]
    more = len(rows) > QUEUE_PAGE
    cursor = None
    if more and page:
        last = page[-1]
        due_at = last.sla.next_due_at if wanted.sort == "due" and last.sla else None
        at = due_at or last.conversation.last_activity_at
        cursor = encode_cursor(at, last.conversation.conversation_id)
    return page, cursor


def _queue_row(row: Any) -> QueueRow:
    values = {k: row[k] for k in ConversationRecord.__slots__}
    values["opened_at"] = as_utc(values["opened_at"])
    values["last_activity_at"] = as_utc(values["last_activity_at"])
    sla = None
    if row["sla_known"]:
        sla = SlaState(
            conversation_id=row["conversation_id"],
            policy=row["sla_policy"],
            waiting_since=_aware(row["sla_waiting_since"]),
            response_due_at=_aware(row["sla_response_due_at"]),
            resolution_due_at=_aware(row["sla_resolution_due_at"]),
        )
    return QueueRow(
        ConversationRecord(**values),
        row["shown_id"],
        row["display_name"],
        row["unread"] or 0,
        sla,
    )


def _aware(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):  # SQLite returns a CASE's datetime as text
        value = datetime.fromisoformat(value)
    return None if value is None else as_utc(value)


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
