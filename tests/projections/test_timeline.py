"""The timeline view: every channel of a customer interleaved newest first, paged by cursor
without gaps, each item carrying its content and its latest delivery status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.embedded.follower import LogFollower
from hub.embedded.runtime import EmbeddedRuntime
from hub.projections import Views
from hub.projections.timeline import TimelineItem
from hub.store import Store
from tests.projections.helpers import (
    CHANNELS,
    PHONE,
    project,
    record_mixed_history,
    timeline,
    wait_projected,
)
from tests.support.store import T0, inbound


def test_timeline_interleaves_channels_newest_first_and_pages_without_gaps(
    store: Store, views: Views
) -> None:
    customer_id, conversations, order = record_mixed_history(store)
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
