"""The scheduler (hub.runtime.scheduler) with the dispatcher, as ``Runtime.start_channels``
runs them, on a clock the test moves: a scheduled message goes out once when due, not before;
held for the customer's quiet hours and refused at send time when consent was withdrawn
meanwhile; a restarted or standby scheduler fires what was pending, once; planners run on
their interval under the lease."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select as select_rows

from hub.config import Settings
from hub.domain.automation import OccurrenceSpec, Plan, Source
from hub.domain.model import Message
from hub.metrics import Metrics
from hub.runtime import due_queue
from hub.runtime.dispatcher import ConfiguredChannels, Dispatcher
from hub.runtime.scheduler import Scheduler
from hub.store import Store
from hub.store.lease import relays
from tests.support.fakes import FakeClock, FakeConnector, FakeSettings, eventually
from tests.support.store import inbound, opened

PHONE = "phone:+4915112345678"  # Europe/Berlin
IDLE = 0.05
QUIET = 0.2
#: 10:00 in Berlin on a winter day.
MORNING = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)


@dataclass
class Side:
    """One process's scheduler and dispatcher on a store, with its connector."""

    store: Store
    clock: FakeClock
    connector: FakeConnector
    metrics: Metrics
    scheduler: Scheduler
    stopping: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def crash(self) -> None:
        for task in self.tasks:
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)


@dataclass
class Planned:
    """A planner that counts its rounds."""

    name: str = "counting"
    rounds: list[datetime] = field(default_factory=list)

    def plan(self, now: datetime) -> int:
        self.rounds.append(now)
        return 0


class Hub:
    def __init__(self, settings: Settings, store: Store, clock: FakeClock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.policy = ConfiguredChannels([(FakeConnector, FakeSettings())])
        [first] = store.app.record_interactions([inbound("SM-1", address=PHONE)])
        self.customer = first.customer_id
        self.sides: list[Side] = []

    async def start(self, store: Store | None = None, planners: Any = ()) -> Side:
        store = store or self.store
        connector = FakeConnector(FakeSettings(), clock=self.clock)
        await connector.start()
        metrics = Metrics()
        scheduler = Scheduler(
            store, self.policy, self.settings, metrics, clock=self.clock, planners=planners
        )
        dispatcher = Dispatcher(
            store, {"sms": connector}, self.policy, self.settings, metrics, clock=self.clock
        )
        side = Side(store, self.clock, connector, metrics, scheduler, asyncio.Event())
        for queue in (scheduler, dispatcher):
            store.app.add_listener(queue.wake, queue.topics)
            self.clock.on_advance(queue.wake)
            side.tasks.append(asyncio.create_task(queue.run(side.stopping, idle=IDLE)))
        self.sides.append(side)
        return side

    def schedule(self, key: str, due_at: datetime, **plan: Any) -> UUID:
        options: dict[str, Any] = {"channels": ("sms",), "text": f"message {key}"} | plan
        spec = OccurrenceSpec(key, self.customer, due_at, Plan(**options), Source("api", "api"))
        [(oid, _)] = self.store.app.schedules.schedule([spec], "ana")
        return oid

    def leases_expire(self) -> None:
        with self.store.state_engine.begin() as conn:
            conn.execute(relays.update().values(lease_until=datetime(2000, 1, 1, tzinfo=UTC)))

    async def close(self) -> None:
        for side in self.sides:
            await side.crash()
        await asyncio.get_running_loop().shutdown_default_executor()


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    with opened(settings) as store:
        running = Hub(settings, store, FakeClock(MORNING))
        try:
            yield running
        finally:
            await running.close()


def texts(side: Side) -> list[str]:
    return [m.text for m in side.connector.sent]


async def test_a_scheduled_message_goes_out_once_when_due_and_not_before(hub: Hub) -> None:
    side = await hub.start()
    oid = hub.schedule("k1", MORNING + timedelta(hours=1))
    hub.clock.advance(3599)
    await asyncio.sleep(QUIET)
    assert side.connector.sent == []
    hub.clock.advance(1)
    await eventually(lambda: texts(side) == ["message k1"])
    hub.clock.advance(3600)
    await asyncio.sleep(QUIET)
    assert texts(side) == ["message k1"]
    assert hub.store.app.schedules.get(oid).state == "queued"
    sample = side.metrics.registry.get_sample_value
    assert sample("hub_scheduled_messages_total", {"outcome": "send", "code": "-"}) == 1


async def test_a_skipped_message_is_counted_with_its_reason(hub: Hub) -> None:
    side = await hub.start()
    oid = hub.schedule("k1", MORNING, channels=("email",))
    await eventually(lambda: hub.store.app.schedules.get(oid).state == "skipped")
    sample = side.metrics.registry.get_sample_value
    await eventually(
        lambda: sample("hub_scheduled_messages_total", {"outcome": "skip", "code": "no_channel"})
    )
    assert side.connector.attempts == []


async def test_quiet_hours_hold_it_until_morning_and_a_withdrawal_meanwhile_stops_it(
    hub: Hub,
) -> None:
    side = await hub.start()
    hub.store.app.outbound.change_consent(hub.customer, "sms", True, purposes=("marketing",))
    night = MORNING + timedelta(hours=13)  # 23:00 in Berlin
    hub.clock.advance(13 * 3600)
    kept = hub.schedule("kept", night, purpose="marketing")
    stopped = hub.schedule("stopped", night, purpose="marketing")
    schedules = hub.store.app.schedules
    await eventually(lambda: schedules.get(kept).state == schedules.get(stopped).state == "queued")
    await asyncio.sleep(QUIET)
    assert side.connector.attempts == []  # held for the night
    # The customer withdraws marketing consent on SMS before the morning.
    hub.store.app.outbound.change_consent(hub.customer, "sms", False, purposes=("marketing",))
    hub.clock.advance(9 * 3600)  # 08:00 in Berlin
    await asyncio.sleep(QUIET)
    assert side.connector.attempts == []
    for oid in (kept, stopped):
        mid = schedules.get(oid).message_id
        assert mid is not None
        message = hub.store.app.read(lambda uow, mid=mid: uow.require(Message, mid, "message"))
        assert (message.delivery_status, message.error_code) == ("failed", "consent_revoked")


async def test_a_restarted_scheduler_fires_what_was_pending_once(hub: Hub) -> None:
    first = await hub.start()
    due = MORNING + timedelta(hours=2)
    ids = [hub.schedule(f"k{n}", due) for n in range(3)]
    await asyncio.sleep(QUIET)
    await first.crash()
    await asyncio.sleep(QUIET)  # a store call the crashed side had in a thread finishes
    hub.leases_expire()
    second = await hub.start()
    hub.clock.advance(2 * 3600)
    await eventually(lambda: len(second.connector.sent) == 3, timeout=5)
    await asyncio.sleep(QUIET)
    assert sorted(texts(second)) == ["message k0", "message k1", "message k2"]
    assert first.connector.attempts == []
    assert {hub.store.app.schedules.get(oid).state for oid in ids} == {"queued"}


async def test_a_standby_in_another_process_takes_over_and_sends_each_once(
    hub: Hub, settings: Settings
) -> None:
    with opened(settings) as other_store:
        active = await hub.start()
        standby = await hub.start(store=other_store)
        hub.schedule("before", MORNING)
        await eventually(lambda: texts(active) + texts(standby) == ["message before"])
        later = MORNING + timedelta(minutes=30)
        hub.schedule("after", later)
        holder = active if texts(active) else standby
        await holder.crash()
        await asyncio.sleep(QUIET)  # a store call the crashed side had in a thread finishes
        hub.leases_expire()
        hub.clock.advance(1800)
        await eventually(lambda: len(texts(active) + texts(standby)) == 2, timeout=5)
        await asyncio.sleep(QUIET)
        assert sorted(texts(active) + texts(standby)) == ["message after", "message before"]


async def test_it_reads_each_log_row_once_and_in_pages(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of other topics move the scheduler's position to the head, so a busy log is not
    read again from its last occurrence on every commit (the durable position follows every
    few seconds); occurrences past a page of the log (two rows here) are all read
    and fired."""
    monkeypatch.setattr(due_queue, "_READ_BATCH", 2)
    selected: list[int] = []
    recorder = hub.store.app.recorder
    select = recorder.select_notifications

    def counting(*args: Any, **kwargs: Any) -> Any:
        batch = select(*args, **kwargs)
        if kwargs.get("topics") == list(Scheduler.topics):
            selected.extend(n.id for n in batch)
        return batch

    monkeypatch.setattr(recorder, "select_notifications", counting)
    side = await hub.start()
    hub.store.app.record_interactions([inbound(f"SM-{n}", address=PHONE) for n in range(2, 6)])
    head = recorder.max_notification_id()

    def position() -> int:
        with hub.store.state_engine.connect() as conn:
            query = select_rows(relays.c.position).where(relays.c.name == "scheduler")
            return int(conn.scalar(query) or 0)

    hub.clock.advance(due_queue.LEASE_SECONDS / 3)  # written every few seconds
    await eventually(lambda: position() == head)
    ids = [hub.schedule(f"k{n}", MORNING) for n in range(5)]
    await eventually(lambda: len(side.connector.sent) == 5, timeout=5)
    await asyncio.sleep(QUIET)
    assert sorted(texts(side)) == [f"message k{n}" for n in range(5)]
    assert {hub.store.app.schedules.get(oid).state for oid in ids} == {"queued"}
    assert len(selected) == len(set(selected)) == 5  # each occurrence read once


async def test_planners_run_on_their_interval_under_the_lease(hub: Hub, settings: Settings) -> None:
    planner = Planned()
    await hub.start(planners=[planner])
    await eventually(lambda: planner.rounds)
    hub.clock.advance(30)
    await asyncio.sleep(QUIET)
    assert len(planner.rounds) == 1
    hub.clock.advance(settings.automation.plan_interval_seconds)
    await eventually(lambda: len(planner.rounds) == 2)
    assert planner.rounds[1] - planner.rounds[0] >= timedelta(
        seconds=settings.automation.plan_interval_seconds
    )


@dataclass
class Slow:
    """A planner whose round lasts until the test lets it end."""

    name: str = "slow"
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    behind: bool = False

    def plan(self, now: datetime) -> int:
        self.started.set()
        self.release.wait(10)
        return 0


async def test_a_long_planning_round_holds_up_nothing_that_is_due(hub: Hub) -> None:
    planner = Slow()
    side = await hub.start(planners=[planner])
    await eventually(planner.started.is_set)
    hub.schedule("k1", MORNING)
    try:
        await eventually(lambda: texts(side) == ["message k1"])
    finally:
        planner.release.set()


async def test_a_stop_waits_for_the_planner_in_its_thread(hub: Hub) -> None:
    """A planner's thread cannot be cancelled: the scheduler returns from a stop only once
    the round has ended, so the runtime never closes the store under its queries."""
    planner = Slow()
    side = await hub.start(planners=[planner])
    await eventually(planner.started.is_set)
    side.stopping.set()
    scheduler_task = side.tasks[0]
    await asyncio.sleep(QUIET)
    assert not scheduler_task.done()  # still waiting for the round
    planner.release.set()
    await asyncio.wait_for(scheduler_task, 5)


async def test_a_planner_behind_runs_again_at_once(hub: Hub) -> None:
    planner = Planned()
    planner_behind = Behind(planner)
    await hub.start(planners=[planner_behind])
    await eventually(lambda: len(planner.rounds) >= 3)  # no interval between rounds
    planner_behind.behind = False
    count = len(planner.rounds)
    await asyncio.sleep(QUIET)
    assert len(planner.rounds) <= count + 1


@dataclass
class Behind:
    """A planner that has more to do than a round does."""

    inner: Planned
    name: str = "behind"
    behind: bool = True

    def plan(self, now: datetime) -> int:
        return self.inner.plan(now)
