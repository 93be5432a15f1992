"""The access log's writer and readers on both backends: entries wait in memory until a
batch is written (by time, by count, at stop), a failed write keeps them (with their ids) for
the next, purges go by age, and a merge group's entries are found by any member, once each."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hub.domain.ids import uuid7
from hub.events.common import scrub_text
from hub.store import Store
from hub.store.access_log import AccessLog, access_log
from hub.store.tokens import Principal
from tests.support.api import wait_for

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Principal(token_id=uuid7(), name="alice's console", role="agent")
BILLING = Principal(token_id=uuid7(), name="billing", role="service")
ADMIN = Principal(token_id=None, name="admin (HUB_ADMIN_TOKEN)", role="admin")
#: ``make_log(**options)``: an :class:`AccessLog` on the test's store.
MakeLog = Callable[..., AccessLog]
TIMELINE = "GET /v1/customers/{customer_id}/timeline"


class Clock:
    """A clock the test moves; each reading a microsecond later, so entries keep an order."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(microseconds=1)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_log(store: Store, clock: Clock) -> Iterator[MakeLog]:
    """``make_log(**options)``: an access log on the store's state database (stopped after)."""
    AccessLog.create_table(store.state_engine)
    made: list[AccessLog] = []

    def make(**options: Any) -> AccessLog:
        options.setdefault("clock", clock)
        made_log = AccessLog(store.state_engine, **options)
        made.append(made_log)
        return made_log

    yield make
    for each in made:
        each.stop(timeout=5)


def rows(store: Store) -> int:
    with store.state_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(access_log)) or 0)


def test_record_is_kept_in_memory_until_a_flush_writes_it(make_log: MakeLog, store: Store) -> None:
    log = make_log()
    customer = uuid7()
    log.record(ALICE, [customer], TIMELINE, 17)
    assert log.pending == 1
    assert rows(store) == 0  # no thread started, nothing written yet
    assert log.flush() == 1
    assert log.pending == 0
    assert log.flush() == 0
    (entry,), cursor = log.entries([customer])
    assert cursor is None
    assert entry.customer_id == customer
    assert entry.principal_id == ALICE.token_id
    assert entry.principal_name == "alice's console"
    assert entry.role == "agent"
    assert entry.action == TIMELINE
    assert entry.items == 17
    assert entry.at.tzinfo is not None
    assert abs(entry.at - NOW) < timedelta(seconds=1)
    assert log.count() == 1


def test_the_background_thread_writes_every_interval(make_log: MakeLog, store: Store) -> None:
    log = make_log(flush_seconds=0.05)
    log.start()
    for _ in range(3):
        log.record(BILLING, [uuid7()], "GET /v1/customers/{customer_id}")
    wait_for(lambda: rows(store) == 3, timeout=5)
    assert log.pending == 0


def test_a_full_batch_is_written_without_waiting_for_the_interval(
    make_log: MakeLog, store: Store
) -> None:
    log = make_log(flush_seconds=60, batch_size=5)
    log.start()
    time.sleep(0.2)  # past the purge at start: the thread now waits out its 60 s
    for _ in range(4):
        log.record(ALICE, [uuid7()], TIMELINE)
    time.sleep(0.3)
    assert rows(store) == 0, "fewer than a batch: they wait for the interval"
    log.record(ALICE, [uuid7()], TIMELINE)
    wait_for(lambda: rows(store) == 5, timeout=5)


def test_a_clean_stop_writes_what_is_pending(make_log: MakeLog, store: Store) -> None:
    log = make_log(flush_seconds=60)
    log.start()
    customers = [uuid7() for _ in range(10)]
    for customer in customers:
        log.record(ALICE, [customer], TIMELINE)
    log.stop()
    assert rows(store) == 10
    assert log.pending == 0
    fresh = AccessLog(store.state_engine)
    assert {e.customer_id for e in fresh.iter_entries(customers)} == set(customers)


def test_a_failed_write_keeps_the_entries_and_retries_with_the_same_ids(
    make_log: MakeLog, store: Store
) -> None:
    log = make_log()
    customer = uuid7()
    log.record(ALICE, [customer], TIMELINE)
    log.flush()
    access_log.drop(store.state_engine)  # the database refuses every write now
    for _ in range(3):
        log.record(ALICE, [customer], TIMELINE)  # reading goes on: record never fails
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        log.flush()
    log.record(ALICE, [customer], TIMELINE)
    with pytest.raises(Exception):  # noqa: B017
        log.flush()
    assert log.pending == 4
    AccessLog.create_table(store.state_engine)
    assert log.flush() == 4
    assert log.pending == 0
    assert rows(store) == 4


def test_beyond_max_pending_the_oldest_are_dropped_and_counted(
    make_log: MakeLog, store: Store
) -> None:
    log = make_log(max_pending=2)
    access_log.drop(store.state_engine)
    first, second, third = uuid7(), uuid7(), uuid7()
    for customer in (first, second, third):
        log.record(ALICE, [customer], TIMELINE)
    with pytest.raises(Exception):  # noqa: B017
        log.flush()
    assert log.dropped == 1
    assert log.pending == 2
    AccessLog.create_table(store.state_engine)
    log.flush()
    assert [e.customer_id for e in log.iter_entries([first, second, third])] == [second, third]


def test_purge_by_age(make_log: MakeLog, store: Store, clock: Clock) -> None:
    log = make_log(retention=timedelta(days=730))
    customer = uuid7()
    for days in (800, 731, 729, 1):
        clock.at = NOW - timedelta(days=days)
        log.record(ALICE, [customer], TIMELINE, days)
    log.flush()
    clock.at = NOW
    assert log.purge_expired() == 2
    assert [e.items for e in log.iter_entries([customer])] == [729, 1]
    assert log.purge_older_than(NOW - timedelta(days=2)) == 1
    assert [e.items for e in log.iter_entries([customer])] == [1]


def test_the_writer_purges_at_start(make_log: MakeLog, store: Store, clock: Clock) -> None:
    customer = uuid7()
    clock.at = NOW - timedelta(days=10)
    old = make_log()
    old.record(ALICE, [customer], TIMELINE)
    old.flush()
    clock.at = NOW
    log = make_log(retention=timedelta(days=5))
    log.start()
    wait_for(lambda: rows(store) == 0, timeout=5)


def test_a_group_entry_is_found_by_any_member_and_listed_once(make_log: MakeLog) -> None:
    log = make_log()
    root, member, other = uuid7(), uuid7(), uuid7()
    log.record(ALICE, [root, member], TIMELINE, 9)  # the merged group read as one
    log.record(ALICE, [member], "GET /v1/messages/{message_id}")  # a member's message
    log.record(ALICE, [other], TIMELINE)
    log.flush()
    group, _ = log.entries([root, member])
    assert [(e.customer_id, e.action) for e in group] == [
        (member, "GET /v1/messages/{message_id}"),
        (root, TIMELINE),
    ]
    alone, _ = log.entries([member])  # e.g. after an unmerge: what was read while merged
    assert len(alone) == 2
    assert [e.items for e in log.entries([root])[0]] == [9]
    assert len(list(log.iter_entries([root, member]))) == 2


def test_entries_page_newest_first(make_log: MakeLog) -> None:
    log = make_log()
    customer = uuid7()
    for n in range(7):
        log.record(ADMIN, [customer], TIMELINE, n)
    log.flush()
    seen: list[int] = []
    cursor: UUID | None = None
    while True:
        page, cursor = log.entries([customer], limit=3, before=cursor)
        seen += [e.items for e in page]
        if cursor is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]
    assert [e.items for e in log.iter_entries([customer], page_size=2)] == list(range(7))
    with pytest.raises(ValueError, match="no access log entry"):
        log.entries([customer], before=uuid4())


def test_entries_write_what_this_process_has_pending_first(make_log: MakeLog) -> None:
    log = make_log(flush_seconds=60)
    customer = uuid7()
    log.record(ALICE, [customer], TIMELINE)
    assert len(log.entries([customer])[0]) == 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(name=st.text(max_size=250))
def test_any_principal_name_is_written_and_readable(make_log: MakeLog, name: str) -> None:
    log = make_log()
    customer = uuid7()
    log.record(Principal(token_id=uuid7(), name=name, role="agent"), [customer], TIMELINE)
    log.flush()
    (entry,), _ = log.entries([customer])
    assert entry.principal_name == scrub_text(name[:200])
