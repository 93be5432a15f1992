"""A dispatcher under test: a store with a conversation to reply on, and dispatchers started
on it the way ``Runtime.start_channels`` starts one, each with a fake connector and a clock the
test moves (tests/runtime/test_dispatcher.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from hub.config import Settings
from hub.domain.model import Message
from hub.domain.policy import Decision
from hub.metrics import Metrics
from hub.runtime.dispatcher import ConfiguredChannels, Dispatcher
from hub.store import Store, open_store
from hub.store.lease import LogLease, relays
from tests.support.fakes import FakeClock, FakeConnector, FakeSettings, eventually
from tests.support.store import inbound

ADDRESS = "phone:+4915112345678"  # one time zone: Europe/Berlin
#: How often an idle dispatcher looks at the log (the hub's default is 0.5 s; the tests wake
#: it whenever they record something or move the clock, so this only bounds a lease wait).
IDLE = 0.05
#: Long enough for a woken dispatcher to have done anything it was going to do.
QUIET = 0.15


@dataclass
class Running:
    """One dispatcher as ``Runtime.start_channels`` runs it, with its own connector."""

    dispatcher: Dispatcher
    connector: FakeConnector
    clock: FakeClock
    metrics: Metrics
    stopping: asyncio.Event
    task: asyncio.Task[None]

    def count(self, outcome: str, channel: str = "sms") -> float:
        labels = {"channel": channel, "outcome": outcome}
        return self.metrics.registry.get_sample_value("hub_dispatch_total", labels) or 0.0

    async def stop(self) -> None:
        """A graceful stop (``Runtime.stop_channels``)."""
        self.stopping.set()
        await asyncio.wait_for(self.task, 5)

    async def crash(self) -> None:
        """The process dies where it is: nothing more is recorded, the lease is kept."""
        while not self.task.done():  # asyncio.wait_for of Python 3.11 may swallow a cancel
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=0.1)


class Hub:
    """A store with one SMS conversation to reply on, and the dispatchers started on it.
    ``decisions`` keeps what the domain decided for each message, in order."""

    def __init__(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch, connector: type[FakeConnector]
    ) -> None:
        self.settings = settings
        self.store: Store = open_store(settings)
        self.clock = FakeClock()
        self.connector_class = connector
        self.policy = ConfiguredChannels([(connector, FakeSettings())])
        (first,) = self.store.app.record_interactions([inbound("SM-hello", address=ADDRESS)])
        self.conversation = first.conversation_id
        self.running: list[Running] = []
        self.decisions: list[tuple[UUID, Decision]] = []
        dispatch = self.store.app.dispatch
        prepare = dispatch.prepare_dispatches

        def spy(mids: list[UUID], *args: Any) -> list[Decision | Exception]:
            decisions = prepare(mids, *args)
            self.decisions += [
                (mid, d)
                for mid, d in zip(mids, decisions, strict=True)
                if not isinstance(d, Exception)
            ]
            return decisions

        monkeypatch.setattr(dispatch, "prepare_dispatches", spy)

    async def start(
        self, *, rate: float | None = None, clock: FakeClock | None = None, idle: float = IDLE
    ) -> Running:
        clock = clock or self.clock
        connector = self.connector_class(FakeSettings(rate_per_second=rate), clock=clock)
        await connector.start()
        metrics = Metrics()
        dispatcher = Dispatcher(
            self.store, {"sms": connector}, self.policy, self.settings, metrics, clock=clock
        )
        self.store.app.add_listener(dispatcher.wake, dispatcher.topics)
        clock.on_advance(dispatcher.wake)
        stopping = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stopping, idle=idle))
        running = Running(dispatcher, connector, clock, metrics, stopping, task)
        self.running.append(running)
        return running

    def reply(self, text: str, conversation: UUID | None = None, **options: Any) -> UUID:
        recorded = self.store.app.outbound.reply(
            conversation or self.conversation,
            text,
            author="agent-7",
            policy=self.policy,
            **options,
        )
        return recorded.message_id

    def conversation_with(self, address: str) -> UUID:
        """A conversation with another recipient, to reply on."""
        (first,) = self.store.app.record_interactions([inbound(f"SM-{address}", address=address)])
        return first.conversation_id

    def message(self, mid: UUID) -> Message:
        found: Message = self.store.app.repository.get(mid)
        return found

    async def settled(self, mid: UUID) -> Message:
        """The message once the dispatcher has nothing left to do with it."""
        await eventually(lambda: self.message(mid).settled)
        return self.message(mid)

    def deferrals(self, mid: UUID) -> list[Any]:
        events = self.store.app.repository.event_store.get(mid)
        return [e for e in events if type(e).__name__ == "DispatchDeferred"]

    def decided(self, mid: UUID) -> list[Decision]:
        return [d for m, d in self.decisions if m == mid]

    def lease(self) -> dict[str, Any]:
        return LogLease.read(self.store.state_engine, "dispatch")

    def lease_expires(self) -> None:
        """The holder stopped renewing a lease's worth of time ago (it crashed, stopped, or
        stalled): its row is free for a standby."""
        with self.store.state_engine.begin() as conn:
            conn.execute(
                relays.update()
                .where(relays.c.name == "dispatch")
                .values(lease_until=datetime(2000, 1, 1, tzinfo=UTC))
            )

    async def close(self) -> None:
        for running in self.running:
            await running.crash()
        # A cancelled dispatcher's store command may still run in a worker thread: the
        # store closes after it.
        await asyncio.get_running_loop().shutdown_default_executor()
        self.store.close()


HubFactory = Callable[..., Hub]
