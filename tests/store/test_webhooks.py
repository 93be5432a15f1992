"""The webhook tables on each backend: endpoints with sealed secrets, fan-out by pattern and
start position (duplicates ignored, the cursor moved with the rows), claims of the heads of
each customer's line with leases (racing claimers never share a row), outcomes, the attempt
log's pages, given-up events redelivered, replays, purges and erasure of excerpts."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from hub.domain.errors import NotFound
from hub.store import Store
from hub.store.webhook_queue import EventRef, QueuedEvent, WebhookQueue
from hub.store.webhooks import WebhookStore, clear_excerpts, endpoints, intake

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2Vj"
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tables(store: Store, clock: Clock) -> tuple[WebhookStore, WebhookQueue]:
    WebhookStore.create_tables(store.state_engine)
    key = os.urandom(32)
    return WebhookStore(store.state_engine, key, clock), WebhookQueue(store.state_engine, clock)


def event(position: int, customer: uuid.UUID = ALICE, kind: str = "interaction.received.v1"):
    return EventRef(uuid.uuid4(), position, customer, kind)


def attempt(clock: Clock, **extra: Any) -> dict[str, Any]:
    return {"at": clock(), "status_code": 500, "latency_ms": 3.5, "error": "HTTP 500"} | extra


def positions(claimed: list[QueuedEvent]) -> list[int]:
    return [c.position for c in claimed]


def test_an_endpoint_keeps_its_secret_sealed(store: Store, tables: Any, clock: Clock) -> None:
    hooks, _ = tables
    row = hooks.add_endpoint("http://a.test/h", ["interaction.*"], "billing", SECRET, lambda: 7)
    assert (row.url, row.event_types, row.description, row.start_position) == (
        "http://a.test/h",
        ("interaction.*",),
        "billing",
        7,
    )
    assert (row.enabled, row.created_at, row.secret, row.secrets(clock())) == (
        True,
        T0,
        SECRET,
        [SECRET],
    )
    with store.state_engine.connect() as conn:
        raw = conn.execute(select(endpoints)).mappings().one()
    assert SECRET.encode() not in raw["sealed_secret"]
    with pytest.raises(InvalidTag):  # another hub's master key opens nothing
        WebhookStore(store.state_engine, os.urandom(32)).endpoint(row.id)

    # A rotation: both secrets during the grace, then only the new one.
    assert hooks.rotate_secret(
        row.id, "whsec_bmV3LW5ldy1uZXctbmV3LW5ldy1uZXc=", T0 + timedelta(hours=1)
    )
    rotated = hooks.endpoint(row.id)
    assert rotated.secrets(T0) == ["whsec_bmV3LW5ldy1uZXctbmV3LW5ldy1uZXc=", SECRET]
    assert rotated.secrets(T0 + timedelta(hours=2)) == ["whsec_bmV3LW5ldy1uZXctbmV3LW5ldy1uZXc="]
    assert not hooks.rotate_secret(uuid.uuid4(), SECRET, T0)

    assert hooks.change_endpoint(row.id, url="http://b.test/", description="")
    assert hooks.endpoint(row.id).url == "http://b.test/"
    assert hooks.delete_endpoint(row.id)
    assert hooks.endpoint(row.id) is None
    assert not hooks.delete_endpoint(row.id)


def test_fan_out_by_pattern_and_start_position(tables: Any) -> None:
    hooks, queue = tables
    everything = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    chats = hooks.add_endpoint("http://b.test/", ["interaction.*"], "", SECRET, lambda: 2)
    off = hooks.add_endpoint("http://c.test/", ["*"], "", SECRET, lambda: 0)
    hooks.set_enabled(off.id, False)
    queue.intake_position("embedded", lambda: 0)
    batch = [event(1), event(2, kind="customer.created.v1"), event(3), event(4, BOB)]

    assert queue.fan_out(batch, cursor=("embedded", 4)) == 4 + 2
    assert queue.fan_out(batch, cursor=("embedded", 4)) == 6  # offered again, kept once
    counts = hooks.queue_counts()
    assert counts == {everything.id: {"pending": 4}, chats.id: {"pending": 2}}
    assert queue.intake_position("embedded", lambda: 99) == 4
    queue.fan_out([], cursor=("embedded", 3))  # a cursor never moves back
    assert queue.intake_position("embedded", lambda: 99) == 4
    # With an endpoint enabled the intake may not skip; without one it may.
    assert not queue.skip_to("embedded", 10)
    for endpoint in (everything, chats):
        hooks.set_enabled(endpoint.id, False)
    assert queue.skip_to("embedded", 10)
    assert queue.intake_position("embedded", lambda: 0) == 10


def test_a_new_intake_starts_no_later_than_the_oldest_endpoint(store: Store, tables: Any) -> None:
    hooks, queue = tables
    hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 5)
    assert queue.intake_position("embedded", lambda: 9) == 5
    with store.state_engine.connect() as conn:
        assert conn.execute(select(intake.c.position)).scalar_one() == 5


def test_only_the_head_of_each_customer_is_claimed(tables: Any, clock: Clock) -> None:
    hooks, queue = tables
    hook = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    queue.fan_out([event(1), event(2), event(3, BOB), event(4), event(5, BOB)])
    lease = clock() + timedelta(seconds=30)

    first = queue.claim(hook.id, "one", 10, lease)
    assert positions(first) == [1, 3]  # Alice's first, Bob's first
    assert queue.claim(hook.id, "two", 10, lease) == []  # both leased: nothing for another
    alice, bob = first
    queue.delivered(alice, "one", attempt(clock, status_code=204, error=None))
    assert positions(queue.claim(hook.id, "two", 10, lease)) == [2]

    # Bob's head failed: retried later; until then Bob's next one waits too.
    retry_at = clock() + timedelta(seconds=5)
    assert queue.failed(bob, "one", attempt(clock), next_attempt_at=retry_at) == "retrying"
    assert queue.claim(hook.id, "two", 10, lease) == []
    clock.advance(5)
    (again,) = queue.claim(hook.id, "two", 10, lease)
    assert (again.position, again.attempts, again.first_attempt_at) == (3, 1, T0)

    # Given up: the row is kept (failed) and no longer holds Bob's line.
    assert queue.failed(again, "two", attempt(clock), next_attempt_at=None) == "failed"
    assert positions(queue.claim(hook.id, "two", 10, lease)) == [5]
    assert hooks.queue_counts()[hook.id] == {"pending": 3, "failed": 1}

    # An expired lease is claimable by another (the holder died).
    clock.advance(31)
    assert positions(queue.claim(hook.id, "three", 1, clock() + timedelta(seconds=30))) == [2]


def test_racing_claimers_never_share_a_row(tables: Any, clock: Clock) -> None:
    hooks, queue = tables
    hook = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    customers = [uuid.uuid4() for _ in range(40)]
    queue.fan_out([event(i + 1, customer) for i, customer in enumerate(customers)])
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(owner: str) -> None:
        start.wait()
        got: list[int] = []
        for _ in range(20):
            got += positions(queue.claim(hook.id, owner, 3, clock() + timedelta(seconds=30)))
        claimed[owner] = got

    threads = [threading.Thread(target=claimer, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [p for got in claimed.values() for p in got]
    assert sorted(every) == list(range(1, 41))  # each row once, none twice


def test_failing_for_the_whole_period_disables_and_410_too(tables: Any, clock: Clock) -> None:
    hooks, queue = tables
    hook = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    queue.fan_out([event(1), event(2, BOB)])
    lease = clock() + timedelta(seconds=30)
    alice, bob = queue.claim(hook.id, "me", 10, lease)
    period = timedelta(hours=1)
    queue.failed(
        alice, "me", attempt(clock), next_attempt_at=clock(), disable_after=clock() - period
    )
    assert hooks.endpoint(hook.id).failing_since == T0
    clock.advance(3600)
    outcome = queue.failed(
        bob, "me", attempt(clock), next_attempt_at=None, disable_after=clock() - period
    )
    assert outcome == "disabled"
    row = hooks.endpoint(hook.id)
    assert (row.enabled, row.disabled_reason, row.disabled_at) == (False, "failing", clock())

    # Enabled again: pending rows due now with a new retry period, the failure forgotten.
    hooks.set_enabled(hook.id, True)
    row = hooks.endpoint(hook.id)
    assert (row.enabled, row.disabled_reason, row.failing_since) == (True, None, None)
    (alice,) = queue.claim(hook.id, "me", 10, clock() + timedelta(seconds=30))
    assert (alice.attempts, alice.first_attempt_at) == (0, None)

    # 410 Gone: disabled at once; the row stays pending for when it is enabled again.
    gone = queue.failed(
        alice, "me", attempt(clock, status_code=410), next_attempt_at=clock(), gone=True
    )
    assert gone == "disabled"
    assert hooks.endpoint(hook.id).disabled_reason == "gone"
    assert hooks.queue_counts()[hook.id] == {"pending": 1, "failed": 1}


def test_attempt_log_pages_and_filters(tables: Any, clock: Clock) -> None:
    hooks, queue = tables
    hook = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    queue.fan_out([event(p) for p in range(1, 6)])
    for _ in range(5):
        (head,) = queue.claim(hook.id, "me", 1, clock() + timedelta(seconds=30))
        queue.failed(head, "me", attempt(clock), next_attempt_at=clock())
        (head,) = queue.claim(hook.id, "me", 1, clock() + timedelta(seconds=30))
        queue.delivered(
            head, "me", attempt(clock, status_code=200, error=None, response_excerpt="ok")
        )
        clock.advance(1)
    ping = queue.log_ping(
        {"endpoint_id": hook.id, "event_id": uuid.uuid4(), "at": clock(), "status_code": 200}
        | {"latency_ms": 1.0, "error": None, "response_excerpt": "pong"}
    )
    assert (ping.outcome, ping.position, ping.event_type) == ("ping", None, "webhook.ping")

    newest = hooks.attempts(hook.id, before=None, limit=4, outcome=None)
    assert [a.outcome for a in newest] == ["ping", "delivered", "retrying", "delivered"]
    assert newest[1].position == 5
    assert newest[1].attempt == 2
    assert newest[2].attempt == 1
    following = hooks.attempts(hook.id, before=newest[-1].id, limit=100, outcome=None)
    assert len(following) == 7
    assert all(a.id < newest[-1].id for a in following)
    delivered = hooks.attempts(hook.id, before=None, limit=100, outcome="delivered")
    assert [a.position for a in delivered] == [5, 4, 3, 2, 1]
    assert delivered[0].response_excerpt == "ok"
    assert delivered[0].latency_ms == 3.5

    # Age purge, and erasure of the excerpts of a customer's attempts.
    assert clear_excerpts(hooks.engine, [ALICE]) == 5
    assert {
        a.response_excerpt
        for a in hooks.attempts(hook.id, before=None, limit=100, outcome="delivered")
    } == {None}
    assert hooks.purge_attempts(T0 + timedelta(seconds=2)) == 4
    assert len(hooks.attempts(hook.id, before=None, limit=100, outcome=None)) == 7
    # Deleting the endpoint takes its queue and log along.
    hooks.delete_endpoint(hook.id)
    assert hooks.attempts(hook.id, before=None, limit=100, outcome=None) == []
    assert hooks.queue_counts() == {}


def test_given_up_events_are_redelivered_and_replays_reset(tables: Any, clock: Clock) -> None:
    hooks, queue = tables
    hook = hooks.add_endpoint("http://a.test/", ["*"], "", SECRET, lambda: 0)
    batch = [event(1), event(2, BOB), event(3)]
    queue.fan_out(batch)
    lease = clock() + timedelta(seconds=30)
    for head in queue.claim(hook.id, "me", 10, lease):
        queue.failed(head, "me", attempt(clock), next_attempt_at=None)
    parked = queue.parked(hook.id, after_position=0, limit=10)
    assert [(p.position, p.attempts, p.last_error) for p in parked] == [
        (1, 1, "HTTP 500"),
        (2, 1, "HTTP 500"),
    ]
    assert [p.position for p in queue.parked(hook.id, after_position=1, limit=10)] == [2]

    assert queue.redeliver(hook.id, parked[0].event_id) == 1
    with pytest.raises(NotFound):
        queue.redeliver(hook.id, parked[0].event_id)  # not given up any more
    with pytest.raises(NotFound):
        queue.redeliver(hook.id, uuid.uuid4())
    assert positions(queue.claim(hook.id, "me", 10, lease)) == [1]
    assert queue.redeliver(hook.id) == 1  # all: Bob's
    assert positions(queue.claim(hook.id, "me", 10, lease)) == [2]

    # A replay: a delivered event queued anew, a pending one reset, one being sent released
    # (it goes again, whatever the send in flight comes to).
    assert queue.claim(hook.id, "x", 10, lease) == []  # both heads are leased by "me"
    assert queue.requeue(hook.id, [*batch, event(4)]) == 4
    assert hooks.queue_counts()[hook.id] == {"pending": 4}
    again = queue.claim(hook.id, "x", 10, lease)
    assert positions(again) == [1, 2]
    stale = QueuedEvent(hook.id, again[0].event_id, 1, ALICE, "interaction.received.v1", 0, None)
    queue.delivered(stale, "me", attempt(clock, status_code=200, error=None))
    assert hooks.queue_counts()[hook.id] == {"pending": 4}  # "me" lost the claim: kept
    queue.delivered(again[0], "x", attempt(clock, status_code=200, error=None))
    assert hooks.queue_counts()[hook.id] == {"pending": 3}
