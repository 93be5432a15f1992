"""``hub.runtime.history``: the timeline as of any moment is exactly what the views showed at
that moment. A second views database is fed the store's events one at a time, as the live
views were; after each, the timeline, the conversations and the group rebuilt from the log
for that moment must equal what it shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from hub.projections import Views
from hub.runtime.history import NotKnownThen, history_of, moment_of, timeline_as_of
from hub.store import Store
from tests.projections.helpers import project
from tests.support.history import history_views, record_story

ALL_STATUSES = ("open", "pending", "resolved")


@pytest.fixture
def views(store: Store) -> Views:
    return history_views(store.views_engine)


@pytest.fixture
def replayed() -> Iterator[Views]:
    """Empty views in memory, to be fed one event at a time."""
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    yield history_views(engine)
    engine.dispose()


def test_as_of_every_moment_is_what_the_views_showed_then(
    store: Store, views: Views, replayed: Views
) -> None:
    story = record_story(store)
    project(store, views)
    envelopes, _ = store.read_envelopes(0, 100_000)
    people = (story.customer, story.email_customer, story.other_customer)
    history = history_of(views)
    compared = 0
    for envelope in envelopes:
        replayed.apply([envelope], up_to=envelope.position)
        with views.engine.connect() as conn:
            if history.position_at(conn, envelope.recorded_at) != envelope.position:
                continue  # not the last event of its moment (or not one the index holds)
        for customer in people:
            with replayed.engine.connect() as conn:
                known = replayed.directory.get(conn, customer) is not None
                group = replayed.directory.group(conn, customer)
                items, _ = replayed.timeline.page(conn, group, 1000, None)
                conversations = replayed.conversations.for_customer(conn, group, ALL_STATUSES)
            if not known:
                with pytest.raises(NotKnownThen):
                    timeline_as_of(store, views, customer, envelope.recorded_at, 1000)
                continue
            found = timeline_as_of(store, views, customer, envelope.recorded_at, 1000)
            assert found.position == envelope.position
            assert found.group == group
            assert found.customer_id == group[0]
            assert found.items == items
            assert found.conversations == conversations
            assert found.next_cursor is None
            compared += 1
    assert compared > 40


def test_a_moment_between_two_events_is_the_earlier_ones(store: Store, views: Views) -> None:
    story = record_story(store)
    project(store, views)
    envelopes, _ = store.read_envelopes(0, 100_000)
    read = next(e for e in envelopes if getattr(e.data, "status", None) == "read")
    just_before = read.recorded_at - timedelta(microseconds=1)

    found = timeline_as_of(store, views, story.customer, just_before, 1000)
    (message,) = [i for i in found.items if i.item_id == story.outbound_message]
    assert message.delivery_status == "delivered"
    assert found.position < read.position
    assert moment_of(views, read.position) == read.recorded_at
    later = timeline_as_of(store, views, story.customer, read.recorded_at, 1000)
    (message,) = [i for i in later.items if i.item_id == story.outbound_message]
    assert message.delivery_status == "read"


def test_pages_of_a_moment_cover_its_timeline_once(store: Store, views: Views) -> None:
    story = record_story(store)
    project(store, views)
    envelopes, _ = store.read_envelopes(0, 100_000)
    at = envelopes[-1].recorded_at
    whole = timeline_as_of(store, views, story.customer, at, 1000).items
    paged = []
    cursor = None
    while True:
        page = timeline_as_of(store, views, story.customer, at, 4, cursor)
        assert len(page.items) <= 4
        paged += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert paged == whole
    assert len(whole) > 12
    with pytest.raises(ValueError):
        timeline_as_of(store, views, story.customer, at, 4, "not a cursor")
