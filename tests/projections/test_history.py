"""The history index (``hub.projections.history``): ids, times and positions only; every
timeline item indexed with the event that created it; the positions a page, a conversation
or a group needs as of a position; replays and erasures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import BigInteger, DateTime, String, Table, Uuid, select

from hub.projections import Views
from hub.projections.history import (
    HistoryProjection,
    conversations,
    events,
    items,
    merges,
    positions,
)
from hub.projections.timeline import timeline_items
from hub.store import Store
from tests.projections.helpers import project
from tests.support.history import history_views, record_story
from tests.support.store import T0, inbound


@pytest.fixture
def views(store: Store) -> Views:
    return history_views(store.views_engine)


def _history(views: Views) -> HistoryProjection:
    found = views.by_name("history")
    assert isinstance(found, HistoryProjection)
    return found


def _rows(views: Views, table: Table) -> list[tuple[Any, ...]]:
    with views.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(table)))


def test_every_timeline_item_is_indexed_with_the_event_that_created_it(
    store: Store, views: Views
) -> None:
    record_story(store)
    project(store, views)
    t = timeline_items.c
    with views.engine.connect() as conn:
        shown = set(conn.execute(select(t.item_id, t.customer_id, t.occurred_at, t.position)))
        i = items.c
        indexed = set(conn.execute(select(i.item_id, i.customer_id, i.occurred_at, i.position)))
    assert len(shown) > 20
    assert indexed == shown


def test_it_holds_ids_times_and_positions_only(store: Store, views: Views) -> None:
    record_story(store)
    project(store, views)
    kinds = (Uuid, BigInteger, DateTime, String)
    for table in _history(views).tables:
        for column in table.columns:
            assert isinstance(column.type, kinds), column
            if isinstance(column.type, String):  # the item's kind: message, note or event
                assert column.name == "kind"
                assert column.type.length == 16
    with views.engine.connect() as conn:
        assert set(conn.scalars(select(items.c.kind).distinct())) == {"message", "note", "event"}


def test_a_replay_or_an_overlapping_batch_changes_nothing(store: Store, views: Views) -> None:
    record_story(store)
    project(store, views, batch_size=5)
    before = {t.name: _rows(views, t) for t in _history(views).tables}
    envelopes, _ = store.read_envelopes(0, 100_000)
    with views.engine.begin() as conn:
        _history(views).apply(conn, [e for e in envelopes if e.type in HistoryProjection.handles])
    assert {t.name: _rows(views, t) for t in _history(views).tables} == before


def test_the_position_of_a_moment_is_the_last_recorded_by_then(store: Store, views: Views) -> None:
    record_story(store)
    project(store, views)
    envelopes, _ = store.read_envelopes(0, 100_000)
    history = _history(views)
    with views.engine.connect() as conn:
        for envelope in envelopes:
            at = history.position_at(conn, envelope.recorded_at)
            assert at >= envelope.position
            assert history.recorded_at(conn, at) == envelope.recorded_at
        first = envelopes[0].recorded_at
        assert history.position_at(conn, first - timedelta(microseconds=1)) == 0
        assert history.position_at(conn, envelopes[-1].recorded_at + timedelta(days=9)) == max(
            e.position for e in envelopes
        )


def test_a_group_as_of_a_position_follows_every_merge_linked_to_it(
    store: Store, views: Views
) -> None:
    story = record_story(store)
    project(store, views)
    history = _history(views)
    merge_events = [
        e
        for e in store.read_envelopes(0, 100_000)[0]
        if e.type in ("customer.merged.v1", "customer.unmerged.v1")
    ]
    assert len(merge_events) == 3
    first, second, undone = (e.position for e in merge_events)
    with views.engine.connect() as conn:
        assert history.merge_positions(conn, story.customer, first - 1) == []
        assert history.merge_positions(conn, story.other_customer, first) == []
        assert history.merge_positions(conn, story.email_customer, first) == [first]
        assert history.merge_positions(conn, story.other_customer, second) == [first, second]
        # through the survivor: the email customer's merge is part of the other's group's story
        assert history.merge_positions(conn, story.other_customer, undone) == [
            first,
            second,
            undone,
        ]


def test_a_page_needs_its_own_items_events_only(store: Store, views: Views) -> None:
    batch = [
        inbound(f"many-{n}", direction="outbound", occurred_at=T0 + timedelta(minutes=n))
        for n in range(300)
    ]
    results = store.app.record_interactions(batch)
    for r in results:
        store.app.update_delivery(r.message_id, "delivered", T0 + timedelta(days=1))
    project(store, views)
    customer = results[0].customer_id
    history = _history(views)
    with views.engine.connect() as conn:
        top = history.position_at(conn, T0 + timedelta(days=36_500))
        needed = history.page_positions(conn, [customer], top, 50, None)
        # 51 messages (the page and the first of the next), each created and delivered
        assert len(needed) == 102
        newest = {r.message_id for r in results[-51:]}
        read = store.read_positions(needed)
    assert {e.data.message_id for e in read} == newest  # type: ignore[attr-defined]


def test_messages_are_counted_per_conversation_as_of_a_position(store: Store, views: Views) -> None:
    story = record_story(store)
    project(store, views)
    history = _history(views)
    with views.engine.connect() as conn:
        top = history.position_at(conn, T0 + timedelta(days=36_500))
        activity = history.message_activity(conn, [story.customer], top)
        third = next(
            e.position
            for e in store.read_envelopes(0, 100_000)[0]
            if getattr(e.data, "provider_message_id", None) == "story-2"
        )
        early = history.message_activity(conn, [story.customer], third)
    # sms: three inbound, the outbound and the late import; whatsapp: three inbound
    assert sorted(n for n, _ in activity.values()) == [3, 5]
    assert activity[story.sms_conversation][1] == T0 + timedelta(hours=2)
    assert sorted(n for n, _ in early.values()) == [1, 2]


def test_an_erasure_leaves_nothing_of_the_customer(store: Store, views: Views) -> None:
    story = record_story(store)
    project(store, views)
    group = [story.customer, story.other_customer]
    with views.engine.begin() as conn:
        _history(views).purge(conn, group)
    i, c, m = items.c, conversations.c, merges.c
    with views.engine.connect() as conn:
        assert not conn.execute(select(i.item_id).where(i.customer_id.in_(group))).all()
        assert not conn.execute(select(c.conversation_id).where(c.customer_id.in_(group))).all()
        assert not conn.execute(select(m.position)).all()  # every merge touched the group
        left = {r.item_id for r in conn.execute(select(i.item_id))}
        assert {r.subject_id for r in conn.execute(select(events.c.subject_id))} <= left | set(
            conn.scalars(select(c.conversation_id))
        )
        assert conn.execute(select(positions.c.position)).all()  # when, naming no one
    assert _rows(views, items)  # the email customer's own items stay
