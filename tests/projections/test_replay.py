"""Every projection together: a rebuild gives identical rows, a follower resumes after a
restart where it stopped, a batch applied twice or overlapping changes nothing, a replay after
an erasure stays erased, and a live follower misses nothing of concurrent writers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import Connection, select

from hub.config import Settings
from hub.embedded.follower import LogFollower
from hub.embedded.runtime import EmbeddedRuntime
from hub.events import Envelope
from hub.projections import Views, default_projections
from hub.projections.base import Projection
from hub.projections.timeline import timeline_items
from hub.runtime import Runtime
from hub.store import Store
from tests.projections.helpers import (
    PHONE,
    PROJECTIONS,
    project,
    published_top,
    record_directory,
    record_mixed_history,
    search_ids,
    timeline,
)
from tests.support.store import T0, all_view_rows, inbound, opened, view_row_counts
from tests.support.surveys import survey_answered


def _record_everything(store: Store) -> None:
    """A bit of every event type, over several customers and channels."""
    app = store.app
    record_mixed_history(store, count=30)
    record_directory(store)
    [m] = app.record_interactions(
        [inbound("OUT1", direction="outbound", occurred_at=T0 + timedelta(days=1))]
    )
    app.update_delivery(m.message_id, "delivered", T0 + timedelta(days=1, seconds=2))
    app.update_delivery(m.message_id, "read", T0 + timedelta(days=1, seconds=9))
    app.add_note(m.conversation_id, "a note", "ann")
    app.assign(m.conversation_id, "bob", "ann")
    app.change_status(m.conversation_id, "resolved", "bob")
    app.set_tags(m.customer_id, ["vip"], "ann")
    app.record_interactions([inbound("IN1", occurred_at=T0 + timedelta(days=1, minutes=5))])
    survey_answered(store, "5 - thanks", "SURVEY1")  # the feedback events


def test_rebuild_gives_identical_rows(store: Store, views: Views) -> None:
    _record_everything(store)
    project(store, views, batch_size=7)  # built incrementally, in small batches
    before = all_view_rows(views.engine)
    assert all(before[name] for name in ("timeline_items", "conversations", "directory_customers"))

    for name in PROJECTIONS:
        views.reset(name)
    assert view_row_counts(views.engine)["timeline_items"] == 0
    assert set(views.positions().values()) == {0}
    for name in PROJECTIONS:
        assert LogFollower(store, views, only=[name]).catch_up() > 0

    assert all_view_rows(views.engine) == before


def test_rebuild_of_one_projection_leaves_the_others_alone(store: Store, views: Views) -> None:
    _record_everything(store)
    project(store, views)
    before = all_view_rows(views.engine)
    views.reset("directory")
    assert views.positions()["directory"] == 0
    assert views.positions()["timeline"] == published_top(store)
    applied = LogFollower(store, views, only=["directory"]).catch_up()
    assert applied > 0
    assert all_view_rows(views.engine) == before


def test_resume_after_restart_equals_a_single_pass(settings: Settings) -> None:
    first = Runtime(settings)
    first.start()
    try:
        _record_everything(first.store)
        follower = LogFollower(first.store, first.views, batch_size=5)
        for _ in range(4):
            assert follower.run_once() > 0
        partial = first.views.positions()
    finally:
        first.stop()
    del first, follower
    assert len(set(partial.values())) == 1
    assert next(iter(partial.values())) > 0

    second = EmbeddedRuntime(settings)
    second.start()  # catches up before it returns
    try:
        second.follower.stop()
        top = published_top(second.store)
        assert next(iter(partial.values())) < top
        assert second.views.positions() == dict.fromkeys(PROJECTIONS, top)
        resumed = all_view_rows(second.views.engine)

        for name in PROJECTIONS:
            second.views.reset(name)
        LogFollower(second.store, second.views).catch_up()
        assert all_view_rows(second.views.engine) == resumed
        assert second.views.positions() == dict.fromkeys(PROJECTIONS, top)
        assert second.status()["lag"] == 0
    finally:
        second.stop()


def test_positions_equal_the_last_published_event(store: Store, views: Views) -> None:
    _record_everything(store)
    project(store, views, batch_size=3)
    top = published_top(store)
    assert views.positions() == dict.fromkeys(PROJECTIONS, top)
    assert views.low_water_mark() == top
    assert top <= (store.app.recorder.max_notification_id() or 0)
    assert project(store, views) == 0  # nothing left to do


def test_applying_the_same_batch_twice_changes_nothing(store: Store, views: Views) -> None:
    _record_everything(store)
    envelopes, last = store.read_envelopes(0, 100_000)
    assert views.apply(envelopes, up_to=last) > 0
    once = all_view_rows(views.engine)
    counts = view_row_counts(views.engine)

    assert views.apply(envelopes, up_to=last) == 0
    assert view_row_counts(views.engine) == counts
    assert all_view_rows(views.engine) == once


def test_overlapping_batches_apply_each_event_once(store: Store, views: Views) -> None:
    _record_everything(store)
    envelopes, last = store.read_envelopes(0, 100_000)
    views.apply(envelopes, up_to=last)
    single_pass = all_view_rows(views.engine)
    for name in PROJECTIONS:
        views.reset(name)

    middle = len(envelopes) // 2
    views.apply(envelopes[:middle], up_to=envelopes[middle - 1].position)
    views.apply(envelopes[: middle + 10], up_to=envelopes[middle + 9].position)  # overlaps
    views.apply(envelopes, up_to=last)
    views.apply(envelopes[middle:], up_to=last)  # a late duplicate delivery
    assert all_view_rows(views.engine) == single_pass


def test_a_projection_reset_after_a_batch_was_read_is_caught_up_from_its_start(
    store: Store, views: Views
) -> None:
    """A rebuild while the hub runs: the follower has read a batch, then the projection is
    reset. Applying that batch must not move the projection to its end, past the events
    before it (which it no longer holds): the next batch starts from its own position."""
    _record_everything(store)
    project(store, views)
    start = views.low_water_mark()
    store.app.record_interactions([inbound("LATE", occurred_at=T0 + timedelta(days=2))])
    envelopes, last = store.read_envelopes(start, 1000)  # the follower's read...
    views.reset("timeline")  # ...a rebuild meanwhile...
    views.apply(envelopes, up_to=last, after=start)  # ...and the follower's apply
    assert views.positions()["timeline"] == 0
    project(store, views)
    caught_up = all_view_rows(views.engine)

    for name in PROJECTIONS:
        views.reset(name)
    project(store, views)
    assert caught_up == all_view_rows(views.engine)


class _FailsOnce(Projection):
    """Refuses one batch when told to, as a projection whose database write fails would."""

    name = "fails_once"
    handles = frozenset({"interaction.sent.v1", "interaction.received.v1"})
    tables = ()
    fail_next = False

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("this batch fails")

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        pass


def test_a_batch_that_failed_and_was_applied_again_equals_a_single_pass(store: Store) -> None:
    """What a projection kept in memory from a batch (the service projection's rows) is not
    trusted when the batch's transaction rolls back: the batch applied again gives the rows
    one pass gives."""
    _record_everything(store)
    envelopes, last = store.read_envelopes(0, 100_000)
    failing = _FailsOnce()
    views = Views(store.views_engine, [*default_projections(), failing])
    views.create()
    middle = len(envelopes) // 2
    views.apply(envelopes[:middle], up_to=envelopes[middle - 1].position)
    failing.fail_next = True
    with pytest.raises(RuntimeError):
        views.apply(envelopes[middle:], up_to=last, after=envelopes[middle - 1].position)
    views.apply(envelopes[middle:], up_to=last, after=envelopes[middle - 1].position)
    twice = all_view_rows(views.engine)

    for name in PROJECTIONS:
        views.reset(name)
    views.apply(envelopes, up_to=last)
    assert all_view_rows(views.engine) == twice


def test_a_replay_after_erasure_stays_erased(store: Store, views: Views) -> None:
    [alice] = store.app.record_interactions([inbound("SM1", contact_name="Alice")])
    [bob] = store.app.record_interactions(
        [inbound("SM2", address="phone:+4915199999999", contact_name="Bob")]
    )
    store.cipher._keys.destroy(alice.customer_id)  # type: ignore[attr-defined]
    store.cipher.forget(alice.customer_id)
    project(store, views)
    [message] = [i for i in timeline(views, alice.customer_id) if i.kind == "message"]
    assert message.text is None
    assert message.data["address"] is None
    with views.engine.connect() as conn:
        erased = views.directory.get(conn, alice.customer_id)
        kept = views.directory.get(conn, bob.customer_id)
        assert views.directory.by_address(conn, PHONE) is None
    assert erased is not None
    assert erased.display_name is None
    assert erased.identities == ()
    assert kept is not None
    assert kept.display_name == "Bob"
    assert search_ids(views, "alice") == []


def test_embedded_runtime_follows_writes_live(embedded: EmbeddedRuntime) -> None:
    rt = embedded
    [r] = rt.record_now([inbound("SM1", contact_name="Alice")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rt.read() as conn:
            if rt.views.directory.get(conn, r.customer_id) is not None:
                break
        time.sleep(0.01)
    with rt.read() as conn:
        found = rt.views.directory.get(conn, r.customer_id)
    assert found is not None
    assert found.display_name == "Alice"
    assert rt.problems() == []
    status = rt.status()
    assert status["projections"] == dict.fromkeys(PROJECTIONS, published_top(rt.store))


def test_follower_running_during_concurrent_writes_misses_nothing(
    settings: Settings, store: Store, views: Views
) -> None:
    """Two writing processes and a live follower: the views end as a single pass makes them."""
    follower = LogFollower(store, views, batch_size=5, poll_interval=0.01)
    follower.start()
    try:
        with opened(settings) as other:
            writers = [store, other]
            errors: list[BaseException] = []

            def write(index: int) -> None:
                try:
                    for n in range(15):
                        writers[index].app.record_interactions(
                            [
                                inbound(
                                    f"P{index}-{n}",
                                    address=f"phone:+4915100000{index}{n:02d}",
                                    occurred_at=T0 + timedelta(minutes=n),
                                ),
                                inbound(
                                    f"Q{index}-{n}",
                                    address=f"phone:+4915100000{index}{n % 3:02d}",
                                ),
                            ]
                        )
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not errors, errors
        top = published_top(store)
        deadline = time.monotonic() + 10
        while views.low_water_mark() < top and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        follower.stop()
    assert follower.error is None
    live = all_view_rows(views.engine)
    assert views.positions() == dict.fromkeys(PROJECTIONS, top)

    for name in PROJECTIONS:
        views.reset(name)
    project(store, views)
    assert all_view_rows(views.engine) == live
    assert len(live["directory_customers"]) == 30
    with views.engine.connect() as conn:
        kinds = Counter(conn.scalars(select(timeline_items.c.kind)))
    assert kinds["message"] == 60
