"""The conversations view: status, assignee, message count and activity, as the aggregates
have them, whether the events arrive in one batch or many."""

from __future__ import annotations

from datetime import timedelta

from hub.embedded.runtime import EmbeddedRuntime
from hub.projections import Views
from hub.store import Store
from tests.projections.helpers import PHONE, PROJECTIONS, project, wait_projected
from tests.support.store import T0, all_view_rows, inbound


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
