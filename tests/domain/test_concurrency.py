"""Two processes writing one store (SQLite and PostgreSQL): the store's uniqueness decides
races, a lost race re-runs on fresh state (hub.domain.unit_of_work), and each process sees the
other's writes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from hub.config import Settings
from hub.domain.application import Recorded
from hub.store import Store
from tests.domain.helpers import envelopes, types
from tests.support.store import T0, inbound, opened


def _concurrently(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together; their results in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = actions[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def _race(stores: list[Store], batches: list[list[Any]]) -> list[list[Recorded]]:
    return _concurrently(
        *(partial(s.app.record_interactions, b) for s, b in zip(stores, batches, strict=True))
    )


ROUNDS = 8


def test_two_processes_recording_the_same_new_message(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            item = inbound(f"SM{n}", address=f"phone:+49151000000{n:02d}")
            a, b = (r[0] for r in _race([one, two], [[item], [item]]))
            assert (a.message_id, a.customer_id, a.conversation_id) == (
                b.message_id,
                b.customer_id,
                b.conversation_id,
            )
            assert sorted([a.duplicate, b.duplicate]) == [False, True]
        counts = types(one)
    assert counts["customer.created.v1"] == ROUNDS
    assert counts["conversation.opened.v1"] == ROUNDS
    assert counts["interaction.received.v1"] == ROUNDS


def test_two_processes_first_contact_from_the_same_new_address(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            address = f"phone:+49151000000{n:02d}"
            a, b = (
                r[0]
                for r in _race(
                    [one, two],
                    [[inbound(f"A{n}", address=address)], [inbound(f"B{n}", address=address)]],
                )
            )
            assert a.customer_id == b.customer_id
            assert a.conversation_id == b.conversation_id
            assert a.message_id != b.message_id
            assert not a.duplicate
            assert not b.duplicate
        found = envelopes(one)
    counts = Counter(e.type for e in found)
    assert counts["customer.created.v1"] == ROUNDS
    assert counts["conversation.opened.v1"] == ROUNDS
    assert counts["interaction.received.v1"] == 2 * ROUNDS
    owners = Counter(e.customer_id for e in found if e.type == "interaction.received.v1")
    assert sorted(owners.values()) == [2] * ROUNDS


def test_two_processes_changing_one_conversation_both_take_effect(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(ROUNDS):
            [r] = one.app.record_interactions([inbound(f"SM{n}", address=f"phone:+4915100{n:05d}")])
            two.app.assign(r.conversation_id, None, "ann")  # caches it there, changes nothing
            _concurrently(
                partial(one.app.assign, r.conversation_id, "bob", "ann"),
                partial(two.app.change_status, r.conversation_id, "pending", "ann"),
            )
            for store in (one, two):
                conversation = store.app.conversation(r.conversation_id)
                assert (conversation.assignee, conversation.status) == ("bob", "pending")
        counts = types(one)
    assert counts["conversation.assigned.v1"] == ROUNDS
    assert counts["conversation.status_changed.v1"] == ROUNDS


def test_a_second_process_sees_the_first_ones_writes(settings: Settings, store: Store) -> None:
    [first] = store.app.record_interactions([inbound("SM1")])
    with opened(settings) as other:
        [second] = other.app.record_interactions(
            [inbound("SM2", occurred_at=T0 + timedelta(minutes=1))]
        )
        other.app.change_status(first.conversation_id, "resolved", "ann")
    # the first process has the conversation cached; it must still see the newer events
    assert store.app.conversation(first.conversation_id).status == "resolved"
    assert store.app.conversation(first.conversation_id).message_count == 2
    [third] = store.app.record_interactions([inbound("SM3", occurred_at=T0 + timedelta(minutes=2))])
    assert second.conversation_id == third.conversation_id == first.conversation_id
    assert store.app.conversation(first.conversation_id).message_count == 3
    assert store.app.conversation(first.conversation_id).status == "open"
