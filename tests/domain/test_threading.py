"""Threading (hub.domain.inbound) on SQLite and PostgreSQL: email by its references, other
channels by the conversation window; a customer's reply reopens a resolved conversation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.store import Store
from tests.domain.helpers import envelopes, types
from tests.support.store import T0, SettingsFactory, inbound, opened


def test_non_email_threading_follows_the_conversation_window(
    make_settings: SettingsFactory, backend: str
) -> None:
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        record = store.app.record_interactions
        [first] = record([inbound("SM1", occurred_at=T0)])
        [within] = record([inbound("SM2", occurred_at=T0 + timedelta(minutes=59))])
        # the window counts from the last activity, not from the first message
        [chained] = record([inbound("SM3", occurred_at=T0 + timedelta(minutes=118))])
        [after] = record([inbound("SM4", occurred_at=T0 + timedelta(hours=3, minutes=59))])
        [next_one] = record([inbound("SM5", occurred_at=T0 + timedelta(hours=4))])

        assert within.conversation_id == first.conversation_id
        assert chained.conversation_id == first.conversation_id
        assert after.conversation_id != first.conversation_id
        assert next_one.conversation_id == after.conversation_id
        assert store.app.conversation(first.conversation_id).message_count == 3
        assert store.app.conversation(after.conversation_id).message_count == 2
        assert types(store)["conversation.opened.v1"] == 2


def test_non_email_threading_in_one_batch(make_settings: SettingsFactory, backend: str) -> None:
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        results = store.app.record_interactions(
            [
                inbound("SM1", occurred_at=T0),
                inbound("SM2", occurred_at=T0 + timedelta(minutes=30)),
                inbound("SM3", occurred_at=T0 + timedelta(hours=2)),
            ]
        )
        assert results[1].conversation_id == results[0].conversation_id
        assert results[2].conversation_id != results[0].conversation_id
        assert len({r.customer_id for r in results}) == 1


def _email(pid: str, at_minutes: float, **extra: Any) -> Any:
    return inbound(
        pid,
        channel="email",
        address="email:alice@example.com",
        occurred_at=T0 + timedelta(minutes=at_minutes),
        subject="Order 1234",
        **extra,
    )


def test_email_replies_join_their_thread_even_after_the_window(
    make_settings: SettingsFactory, backend: str
) -> None:
    month = 60 * 24 * 30
    with opened(make_settings(backend, conversation_window=timedelta(hours=1))) as store:
        record = store.app.record_interactions
        [original] = record([_email("<m1@example.com>", 0)])
        [by_thread_ref] = record([_email("<m2@example.com>", month, thread_ref="<m1@example.com>")])
        [by_references] = record(
            [_email("<m3@example.com>", 2 * month, references=("<m1@example.com>",))]
        )
        [unrelated] = record([_email("<m4@example.com>", 2 * month + 1)])
        [newest_ref_wins] = record(
            [
                _email(
                    "<m5@example.com>",
                    2 * month + 2,
                    references=("<m1@example.com>", "<m4@example.com>"),
                )
            ]
        )
        [unknown_ref] = record([_email("<m6@example.com>", 1, thread_ref="<nope@example.com>")])

    assert by_thread_ref.conversation_id == original.conversation_id
    assert by_references.conversation_id == original.conversation_id
    assert unrelated.conversation_id != original.conversation_id
    assert newest_ref_wins.conversation_id == unrelated.conversation_id
    assert unknown_ref.conversation_id not in {
        original.conversation_id,
        unrelated.conversation_id,
    }


def test_email_without_references_opens_a_new_conversation_within_the_window(
    store: Store,
) -> None:
    [first] = store.app.record_interactions([_email("<m1@example.com>", 0)])
    [second] = store.app.record_interactions([_email("<m2@example.com>", 1)])
    assert second.conversation_id != first.conversation_id
    assert second.customer_id == first.customer_id


def test_email_reply_does_not_join_another_customers_thread(store: Store) -> None:
    [alice] = store.app.record_interactions([_email("<m1@example.com>", 0)])
    [bob] = store.app.record_interactions(
        [
            inbound(
                "<m2@example.com>",
                channel="email",
                address="email:bob@example.com",
                thread_ref="<m1@example.com>",
            )
        ]
    )
    assert bob.customer_id != alice.customer_id
    assert bob.conversation_id != alice.conversation_id


def test_inbound_reply_reopens_a_resolved_conversation(store: Store) -> None:
    app = store.app
    [original] = app.record_interactions([_email("<m1@example.com>", 0)])
    assert app.change_status(original.conversation_id, "resolved", "agent-ann") == "resolved"
    assert app.conversation(original.conversation_id).status == "resolved"

    [reply] = app.record_interactions(
        [_email("<m2@example.com>", 60 * 24 * 7, thread_ref="<m1@example.com>")]
    )

    assert reply.conversation_id == original.conversation_id
    conversation = app.conversation(original.conversation_id)
    assert conversation.status == "open"
    assert conversation.message_count == 2
    changes = [
        (e.data.previous_status, e.data.status, e.data.reason, e.data.actor)  # type: ignore[attr-defined]
        for e in envelopes(store)
        if e.type == "conversation.status_changed.v1"
    ]
    assert changes == [
        ("open", "resolved", "agent", "agent-ann"),
        ("resolved", "open", "customer_replied", None),
    ]


def test_outbound_reply_does_not_reopen_a_resolved_conversation(store: Store) -> None:
    app = store.app
    [original] = app.record_interactions([_email("<m1@example.com>", 0)])
    app.change_status(original.conversation_id, "resolved", "agent-ann")
    app.record_interactions(
        [_email("<m2@example.com>", 5, thread_ref="<m1@example.com>", direction="outbound")]
    )
    assert app.conversation(original.conversation_id).status == "resolved"
