"""The timeline as the hub knew it at any moment ("time travel", docs/history.md).

Built from the log, not from today's rows: the history index (``hub.projections.history``,
ids and positions only) says which store positions a page needs as of the moment's position P
(the last one recorded at or before it); those events are read from the store and folded with
the views' own code in memory (``hub.projections.history_snapshot``). So an item recorded
later is absent (whenever it happened), a message shows the delivery state it had then, a
conversation its status and assignee then, and a customer the group it was in then.

A page costs the same whatever the customer's size: only its own items' events are read (a
customer of 10,000 messages is not folded for a page of 50).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from hub.projections import Views
from hub.projections.conversations import ConversationRecord
from hub.projections.history import HistoryProjection
from hub.projections.history_snapshot import snapshot
from hub.projections.timeline import TimelineItem
from hub.store import Store


@dataclass(frozen=True, slots=True)
class TimelineAsOf:
    """One page of a customer's timeline as the hub knew it at ``as_of``."""

    customer_id: UUID  # the group's root then (the customer itself when not merged then)
    group: list[UUID]  # every customer shown as one then, root first
    as_of: datetime
    position: int  # the store position the answer stops at (the last recorded by as_of)
    items: list[TimelineItem]
    next_cursor: str | None
    conversations: list[ConversationRecord]  # the group's conversations then, newest first


class NotKnownThen(LookupError):
    """The customer had not appeared by that moment (or is not known at all)."""


def history_of(views: Views) -> HistoryProjection:
    """The history index of these views."""
    found = views.by_name(HistoryProjection.name)
    assert isinstance(found, HistoryProjection)
    return found


def timeline_as_of(
    store: Store,
    views: Views,
    customer_id: UUID,
    as_of: datetime,
    limit: int,
    before: str | None = None,
) -> TimelineAsOf:
    """A page of ``customer_id``'s timeline (its group's, as grouped then) as of ``as_of``,
    newest first; ``before`` is a cursor of an earlier page of the same moment.

    Raises :class:`NotKnownThen` when the customer had not appeared by then, ValueError for
    a cursor that is not one. An erased customer's items are gone from the index: the caller
    asks the views whether it was erased first."""
    history = history_of(views)
    with views.engine.connect() as conn:
        position = history.position_at(conn, as_of)
        if not history.known(conn, customer_id, position):
            raise NotKnownThen(customer_id)
        merge_positions = history.merge_positions(conn, customer_id, position)
    with snapshot() as then:
        then.fold_merges(store.read_positions(merge_positions))
        group = then.group(customer_id)
        with views.engine.connect() as conn:
            page_positions = history.page_positions(conn, group, position, limit, before)
            conversation_positions = history.conversation_positions(conn, group, position)
            messages = history.message_activity(conn, group, position)
        envelopes = store.read_positions([*page_positions, *conversation_positions])
        then.fold_timeline(envelopes)
        then.fold_conversations(envelopes, messages)
        items, cursor = then.page(group, limit, before)
        return TimelineAsOf(
            customer_id=group[0],
            group=group,
            as_of=as_of,
            position=position,
            items=items,
            next_cursor=cursor,
            conversations=then.conversations_of(group),
        )


def moment_of(views: Views, position: int) -> datetime | None:
    """When the event at ``position`` was recorded (None: not an event of a timeline)."""
    with views.engine.connect() as conn:
        return history_of(views).recorded_at(conn, position)
