"""The read models on SQLite and PostgreSQL: timeline, directory and conversations views,
their rebuild, resumption after a restart and idempotence, fed by LogFollower and the runtimes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import Settings
from hub.embedded.follower import LogFollower
from hub.embedded.runtime import EmbeddedRuntime
from hub.projections import Views
from hub.projections.timeline import TimelineItem, timeline_items
from hub.runtime import Runtime
from hub.store import Store
from tests.support.store import T0, all_view_rows, inbound, opened, view_row_counts

PROJECTIONS = ("timeline", "directory", "conversations")
PHONE = "phone:+4915112345678"


@pytest.fixture
def views(store: Store) -> Views:
    views = Views(store.views_engine)
    views.create()
    return views


def project(store: Store, views: Views, batch_size: int = 1000) -> int:
    return LogFollower(store, views, batch_size=batch_size).catch_up()


def published_top(store: Store) -> int:
    """The position of the last published event in the store."""
    envelopes, _ = store.read_envelopes(0, 1_000_000)
    return envelopes[-1].position if envelopes else 0


def timeline(views: Views, customer_id: Any, limit: int = 1000) -> list[TimelineItem]:
    with views.engine.connect() as conn:
        items, cursor = views.timeline.page(conn, customer_id, limit, None)
    assert cursor is None
    return items


@pytest.fixture
def embedded(settings: Settings) -> Iterator[EmbeddedRuntime]:
    runtime = EmbeddedRuntime(settings.model_copy(update={"projection_poll_interval": 0.05}))
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def wait_projected(runtime: EmbeddedRuntime) -> None:
    assert runtime.wait_visible(published_top(runtime.store), timeout=10)


# -- timeline --------------------------------------------------------------------------------


CHANNELS = ("sms", "whatsapp", "voice")


def _record_mixed_history(store: Store, count: int = 120) -> tuple[Any, dict[str, Any], list[str]]:
    """``count`` messages of one customer over three channels, and another customer's in
    between; returns the customer id, its conversation per channel and the message order."""
    order: list[str] = []
    conversations: dict[str, Any] = {}
    customer_id = None
    for start in range(0, count, 20):
        batch = []
        for n in range(start, min(start + 20, count)):
            channel = CHANNELS[n % 3]
            batch.append(
                inbound(
                    f"{channel}-{n}",
                    channel=channel,
                    occurred_at=T0 + timedelta(minutes=7 * n),
                    direction="outbound" if n % 5 == 4 else "inbound",
                )
            )
            order.append(f"{channel}-{n}")
            batch.append(
                inbound(
                    f"other-{n}",
                    address="phone:+4915199999999",
                    occurred_at=T0 + timedelta(minutes=7 * n, seconds=30),
                )
            )
        for item, result in zip(batch, store.app.record_interactions(batch), strict=True):
            if item.address == PHONE:
                customer_id = result.customer_id
                conversations[item.channel] = result.conversation_id
    return customer_id, conversations, order


def test_timeline_interleaves_channels_newest_first_and_pages_without_gaps(
    store: Store, views: Views
) -> None:
    customer_id, conversations, order = _record_mixed_history(store)
    app = store.app
    note_id = app.add_note(conversations["sms"], "called back, parcel found", "ann")
    app.change_status(conversations["whatsapp"], "resolved", "ann")
    app.assign(conversations["voice"], "bob", "ann")
    project(store, views)

    everything = timeline(views, customer_id)
    assert len(everything) == 120 + 1 + 3  # messages, first identity, note/status/assignment
    keys = [(i.occurred_at, i.item_id) for i in everything]
    assert keys == sorted(keys, reverse=True)
    assert {i.customer_id for i in everything} == {customer_id}

    messages = [i for i in everything if i.kind == "message"]
    assert [m.provider_message_id for m in messages] == order[::-1]
    assert [m.channel for m in messages[:6]] == [
        "voice",  # n=119
        "whatsapp",
        "sms",
        "voice",
        "whatsapp",
        "sms",
    ]
    assert [m.direction for m in messages[:6]] == ["outbound"] + ["inbound"] * 4 + ["outbound"]
    assert {m.conversation_id for m in messages} == set(conversations.values())

    # agent actions happened "now", long after the 2024 messages
    top = {i.kind: i for i in everything[:3]}
    assert set(top) == {"note", "status_changed", "assigned"}
    assert top["note"].item_id == note_id
    assert top["note"].text == "called back, parcel found"
    assert top["note"].data == {"author": "ann"}
    assert top["status_changed"].conversation_id == conversations["whatsapp"]
    assert top["status_changed"].data["status"] == "resolved"
    assert top["assigned"].data == {"assignee": "bob", "actor": "ann"}
    identity = everything[-2:]
    assert [i.kind for i in identity].count("identity_linked") == 1
    first = next(i for i in identity if i.kind == "identity_linked")
    assert first.data == {"address": PHONE, "first": True}
    assert first.occurred_at == T0

    pages: list[list[TimelineItem]] = []
    cursor = None
    with views.engine.connect() as conn:
        while True:
            page, cursor = views.timeline.page(conn, customer_id, 50, cursor)
            pages.append(page)
            if cursor is None:
                break
    assert [len(p) for p in pages] == [50, 50, 24]
    paged = [i.item_id for p in pages for i in p]
    assert paged == [i.item_id for i in everything]
    assert len(set(paged)) == len(paged)


@pytest.mark.parametrize("limit", [1, 3])
def test_timeline_pages_across_items_of_the_same_instant(
    store: Store, views: Views, limit: int
) -> None:
    # Ten messages at the same provider time: the cursor's tie-break must not skip any;
    # agent actions carry microsecond times, which the cursor must keep.
    results = store.app.record_interactions(
        [inbound(f"SM{n}", channel=CHANNELS[n % 3]) for n in range(10)]
    )
    for n in range(3):
        store.app.add_note(results[0].conversation_id, f"note {n}", "ann")
    project(store, views)
    customer_id = results[0].customer_id
    seen = []
    cursor = None
    with views.engine.connect() as conn:
        while True:
            page, cursor = views.timeline.page(conn, customer_id, limit, cursor)
            seen += [i.item_id for i in page]
            if cursor is None:
                break
    assert len(seen) == 14 == len(set(seen))
    assert seen == [i.item_id for i in timeline(views, customer_id)]


def test_message_item_carries_its_content(store: Store, views: Views) -> None:
    [r] = store.app.record_interactions(
        [
            inbound(
                "<m1@example.com>",
                channel="email",
                address="email:alice@example.com",
                subject="Order 1234",
                text="Where is my parcel?",
                contact_name="Alice",
                metadata={"spam": False},
            )
        ]
    )
    project(store, views)
    [message] = [i for i in timeline(views, r.customer_id) if i.kind == "message"]
    assert message.item_id == r.message_id
    assert message.conversation_id == r.conversation_id
    assert (message.channel, message.direction) == ("email", "inbound")
    assert (message.subject, message.text) == ("Order 1234", "Where is my parcel?")
    assert message.delivery_status == "received"
    assert message.data["contact_name"] == "Alice"
    assert message.data["address"] == "email:alice@example.com"
    assert message.data["metadata"] == {"spam": False}


def test_delivery_status_shows_on_the_message_item(embedded: EmbeddedRuntime) -> None:
    rt = embedded
    # the first two reach the view before their status reports, the third with its report
    first, second = rt.record_now(
        [
            inbound("SM1", direction="outbound"),
            inbound("SM2", direction="outbound", occurred_at=T0 + timedelta(minutes=1)),
        ]
    )
    wait_projected(rt)
    rt.commands.update_delivery(first.message_id, "delivered", T0 + timedelta(seconds=3))
    rt.commands.update_delivery(first.message_id, "read", T0 + timedelta(seconds=9))
    rt.commands.update_delivery(
        second.message_id, "failed", T0, error_code="30007", error_message="Carrier violation"
    )
    rt.follower.stop()  # so the next record and its report land in one batch
    [third] = rt.record_now([inbound("SM3", direction="outbound", occurred_at=T0 + timedelta(2))])
    rt.commands.update_delivery(third.message_id, "undelivered", T0, error_code="30003")
    assert LogFollower(rt.store, rt.views).catch_up() >= 2

    items = {i.item_id: i for i in timeline(rt.views, first.customer_id)}
    assert items[first.message_id].delivery_status == "read"
    assert "error_code" not in items[first.message_id].data
    assert items[second.message_id].delivery_status == "failed"
    assert items[second.message_id].data["error_code"] == "30007"
    assert items[second.message_id].data["error_message"] == "Carrier violation"
    assert items[second.message_id].data["address"] == PHONE  # other keys kept
    assert items[third.message_id].delivery_status == "undelivered"
    assert items[third.message_id].data["error_code"] == "30003"
    assert len([i for i in items.values() if i.kind == "message"]) == 3


# -- directory -------------------------------------------------------------------------------


def _record_directory(store: Store) -> dict[str, Any]:
    record = store.app.record_interactions
    ids: dict[str, Any] = {}
    [r] = record(
        [
            inbound(
                "<a1@example.com>",
                channel="email",
                address="email:alice@example.com",
                contact_name="Alice Example",
            )
        ]
    )
    ids["alice"] = r.customer_id
    [r] = record([inbound("SM-bob", address="phone:+14155550101", contact_name="Bob Builder")])
    ids["bob"] = r.customer_id
    [r] = record([inbound("chat-1", channel="chat", address="chat:visitor-77")])
    ids["visitor"] = r.customer_id
    [r] = record(
        [
            inbound(
                "chat-2",
                channel="chat",
                address="chat:visitor-77",
                contact_name="Dave Later",
                occurred_at=T0 + timedelta(hours=5),
            )
        ]
    )
    results = record(
        [
            inbound(
                f"tg-{n}",
                channel="telegram",
                address=f"telegram:{9000 + n}",
                contact_name=f"Test Person {n}",
            )
            for n in range(7)
        ]
    )
    ids["people"] = [r.customer_id for r in results]
    return ids


def _search(views: Views, q: str, limit: int = 100) -> list[Any]:
    with views.engine.connect() as conn:
        found, _ = views.directory.search(conn, q, limit, None)
    return [c.customer_id for c in found]


def test_directory_lookup_by_exact_address(store: Store, views: Views) -> None:
    ids = _record_directory(store)
    project(store, views)
    with views.engine.connect() as conn:
        alice = views.directory.by_address(conn, "email:alice@example.com")
        bob = views.directory.by_address(conn, "phone:+14155550101")
        visitor = views.directory.by_address(conn, "chat:visitor-77")
        assert views.directory.by_address(conn, "email:ALICE@example.com") is None
        assert views.directory.by_address(conn, "email:alice@example") is None
        assert views.directory.by_address(conn, "phone:+14155550102") is None
    assert alice is not None
    assert bob is not None
    assert visitor is not None
    assert alice.customer_id == ids["alice"]
    assert alice.display_name == "Alice Example"
    assert alice.created_at == T0
    assert alice.last_activity_at == T0
    assert [(i.address, i.kind, i.verified) for i in alice.identities] == [
        ("email:alice@example.com", "email", False)
    ]
    assert bob.customer_id == ids["bob"]
    assert visitor.display_name == "Dave Later"  # learnt from the second message
    assert visitor.last_activity_at == T0 + timedelta(hours=5)


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("alice", "alice"),
        ("ALI", "alice"),
        ("example.com", "alice"),
        ("alice@exa", "alice"),
        ("builder", "bob"),
        ("bob b", "bob"),
        ("0101", "bob"),
        ("555-0101", "bob"),
        ("(415) 555", "bob"),
        ("+1415555", "bob"),
        ("dave", "visitor"),
        ("visitor-77", "visitor"),
    ],
)
def test_directory_search_finds_name_and_address_fragments(
    store: Store, views: Views, query: str, who: str
) -> None:
    ids = _record_directory(store)
    project(store, views)
    assert _search(views, query) == [ids[who]]


def test_directory_search_escapes_wildcards_and_misses_cleanly(store: Store, views: Views) -> None:
    _record_directory(store)
    project(store, views)
    assert _search(views, "zzz") == []
    assert _search(views, "%") == []
    assert _search(views, "_") == []


def test_directory_search_paginates_with_a_cursor(store: Store, views: Views) -> None:
    ids = _record_directory(store)
    project(store, views)
    seen: list[Any] = []
    sizes = []
    after = None
    with views.engine.connect() as conn:
        while True:
            found, after = views.directory.search(conn, "test person", 3, after)
            sizes.append(len(found))
            seen += [c.customer_id for c in found]
            if after is None:
                break
    assert sizes == [3, 3, 1]
    assert len(set(seen)) == 7
    assert set(seen) == set(ids["people"])
    assert seen == sorted(seen)


# -- conversations ---------------------------------------------------------------------------


def test_conversations_view_follows_status_assignee_and_activity(
    embedded: EmbeddedRuntime,
) -> None:
    rt = embedded
    [a1, b1] = rt.record_now(
        [
            inbound("SM1", occurred_at=T0),
            inbound("wa1", channel="whatsapp", occurred_at=T0 + timedelta(minutes=1)),
        ]
    )
    wait_projected(rt)  # later changes update rows written by an earlier batch
    rt.record_now([inbound("SM2", occurred_at=T0 + timedelta(minutes=10))])
    rt.record_now([inbound("SM0", occurred_at=T0 - timedelta(minutes=10))])  # late arrival
    rt.commands.add_note(a1.conversation_id, "note", "ann")
    rt.commands.assign(a1.conversation_id, "bob", "ann")
    rt.commands.change_status(a1.conversation_id, "pending", "bob")
    rt.record_now([inbound("wa2", channel="whatsapp", occurred_at=T0 + timedelta(minutes=20))])
    rt.commands.change_status(b1.conversation_id, "resolved", "bob")
    rt.commands.assign(b1.conversation_id, "carol", "ann")
    rt.commands.assign(b1.conversation_id, None, "ann")
    wait_projected(rt)

    with rt.read() as conn:
        a = rt.views.conversations.get(conn, a1.conversation_id)
        b = rt.views.conversations.get(conn, b1.conversation_id)
        open_ones = rt.views.conversations.for_customer(conn, a1.customer_id)
        all_ones = rt.views.conversations.for_customer(
            conn, a1.customer_id, ("open", "pending", "resolved")
        )
    assert a is not None
    assert b is not None
    assert (a.channel, a.status, a.assignee, a.message_count) == ("sms", "pending", "bob", 3)
    assert a.opened_at == T0
    assert a.last_activity_at == T0 + timedelta(minutes=10)
    assert a.address == PHONE
    assert (b.channel, b.status, b.assignee, b.message_count) == ("whatsapp", "resolved", None, 2)
    assert b.last_activity_at == T0 + timedelta(minutes=20)
    assert [c.conversation_id for c in open_ones] == [a1.conversation_id]
    assert [c.conversation_id for c in all_ones] == [b1.conversation_id, a1.conversation_id]

    # the view agrees with the aggregates it is built from
    for row in (a, b):
        aggregate = rt.store.app.conversation(row.conversation_id)
        assert (aggregate.status, aggregate.assignee, aggregate.message_count) == (
            row.status,
            row.assignee,
            row.message_count,
        )
        assert aggregate.last_activity_at == row.last_activity_at


def test_conversations_view_in_one_batch_equals_many_batches(store: Store, views: Views) -> None:
    app = store.app
    [a] = app.record_interactions([inbound("SM1")])
    app.record_interactions(
        [inbound(f"SM{n}", occurred_at=T0 + timedelta(minutes=n)) for n in (2, 3)]
    )
    app.assign(a.conversation_id, "bob", None)
    app.change_status(a.conversation_id, "resolved", "bob")
    app.record_interactions([inbound("SM4", occurred_at=T0 + timedelta(minutes=4))])  # reopens
    project(store, views, batch_size=1)
    one_by_one = all_view_rows(views.engine)
    for name in PROJECTIONS:
        views.reset(name)
    project(store, views)
    assert all_view_rows(views.engine) == one_by_one
    with views.engine.connect() as conn:
        row = views.conversations.get(conn, a.conversation_id)
    assert row is not None
    assert (row.status, row.assignee, row.message_count) == ("open", "bob", 4)
    assert row.last_activity_at == T0 + timedelta(minutes=4)


# -- rebuild, resume, idempotence ------------------------------------------------------------


def _record_everything(store: Store) -> None:
    """A bit of every event type, over several customers and channels."""
    app = store.app
    _record_mixed_history(store, count=30)
    _record_directory(store)
    [m] = app.record_interactions(
        [inbound("OUT1", direction="outbound", occurred_at=T0 + timedelta(days=1))]
    )
    app.update_delivery(m.message_id, "delivered", T0 + timedelta(days=1, seconds=2))
    app.update_delivery(m.message_id, "read", T0 + timedelta(days=1, seconds=9))
    app.add_note(m.conversation_id, "a note", "ann")
    app.assign(m.conversation_id, "bob", "ann")
    app.change_status(m.conversation_id, "resolved", "bob")
    app.record_interactions([inbound("IN1", occurred_at=T0 + timedelta(days=1, minutes=5))])


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
    assert _search(views, "alice") == []


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
