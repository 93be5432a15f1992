"""The scheduler: fires scheduled and automated messages at their due time, in both runtimes
(embedded: a task of ``hub serve``; distributed: in ``hub run dispatch``, one active at a time
by its own lease), and runs the planners that schedule ahead (date rules, campaigns).

It follows the store's log for scheduled occurrences (``hub.domain.automation``) and keeps
them in a heap by due time; every decision is the domain's, recorded in one transaction
with the message it queues, so a restart, a take-over or two schedulers racing fire each
occurrence once. Its position moves only past occurrences that are settled, so a restart
reads every pending one again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from hub.config import Settings
from hub.domain.automation import Occurrence
from hub.domain.consent import ConsentRules
from hub.domain.scheduling import Limits
from hub.metrics import Metrics
from hub.runtime.dispatcher import ConfiguredChannels
from hub.runtime.due_queue import Clock, DueQueue, sleep_until_stopped
from hub.store import Store

__all__ = ["Planner", "Scheduler"]

log = logging.getLogger(__name__)

#: Recorded once per occurrence: the scheduler reads nothing else.
_SCHEDULED_TOPIC = f"{Occurrence.__module__}:{Occurrence.__name__}.Scheduled"


class Planner(Protocol):
    """Schedules occurrences ahead of time (birthdays, campaigns due); called by the active
    scheduler every ``HUB_AUTOMATION__PLAN_INTERVAL_SECONDS``, in a worker thread. Planning
    again must be harmless: occurrences have deterministic keys."""

    name: str

    def plan(self, now: datetime) -> int:
        """Schedule what is due soon; returns how many occurrences were new. A planner
        that stopped early with more to do (a bounded round) says so with a ``behind``
        attribute that is true: the scheduler calls it again at once."""
        ...


class Scheduler(DueQueue):
    """Fires due occurrences; ``run`` until ``stopping`` is set. Time comes from ``clock``."""

    name = "scheduler"
    label = "scheduler"
    topics = (_SCHEDULED_TOPIC,)

    def __init__(
        self,
        store: Store,
        policy: ConfiguredChannels,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Clock | None = None,
        planners: Sequence[Planner] = (),
        watchers: Sequence[Planner] = (),
    ) -> None:
        super().__init__(store, clock)
        self._app = store.app
        self._policy = policy
        self._rules = ConsentRules.configured(settings.consent)
        a = settings.automation
        self._limits = Limits(
            frequency_cap=a.frequency_cap,
            frequency_period=timedelta(days=a.frequency_days),
            conversation_window=settings.conversation_window,
        )
        self._metrics = metrics
        self._planners = list(planners)
        #: Run every ``idle`` seconds rather than every planning interval (SLA breaches).
        self._watchers = list(watchers)
        self._plan_interval = a.plan_interval_seconds
        self._plan_at = 0.0  # monotonic time of the next planning round

    async def handle(self, oid: UUID, position: int, stopping: asyncio.Event) -> None:
        schedules = self._app.schedules
        occurrence = await asyncio.to_thread(schedules.find, oid)
        if occurrence is None or not occurrence.pending:
            self.settle(oid)
            return
        now = self._clock.now()
        if occurrence.due_at > now:
            self.schedule(oid, position, occurrence.due_at.timestamp())
            return
        outcome = await asyncio.to_thread(
            schedules.fire,
            oid,
            now=now,
            policy=self._policy,
            rules=self._rules,
            limits=self._limits,
        )
        self._metrics.scheduled.labels(outcome.decision, outcome.code or "-").inc()
        if outcome.decision == "skip":
            log.info("scheduled message %s skipped: %s", oid, outcome.code)
        self.settle(oid)

    async def run(self, stopping: asyncio.Event, idle: float = 0.5) -> None:
        """Fire due occurrences (``DueQueue.run``) and, beside it, run the planners while
        this process is the active scheduler: a long planning round (a first round of
        100,000 birthdays) never holds up what is due, nor the lease's renewals."""
        planning = asyncio.create_task(self._plan_loop(stopping, idle))
        try:
            await super().run(stopping, idle)
        finally:
            # A planner runs in a worker thread, which a cancellation does not stop: on a
            # stop, let the loop end by itself (it checks ``stopping`` between planners), so
            # the runtime never closes the store under a planner's query (SQLite crashes).
            if not stopping.is_set():
                planning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await planning

    async def _plan_loop(self, stopping: asyncio.Event, idle: float) -> None:
        while not stopping.is_set():
            if self.active:
                await self._plan_round(stopping, self._watchers)
            if self._planners and self.active and self._clock.monotonic() >= self._plan_at:
                self._plan_at = self._clock.monotonic() + self._plan_interval
                await self._plan_round(stopping, self._planners)
            await sleep_until_stopped(stopping, idle)

    async def _plan_round(self, stopping: asyncio.Event, planners: Sequence[Planner]) -> None:
        now = self._clock.now()
        for planner in planners:
            if stopping.is_set():
                return
            try:
                planned = await asyncio.to_thread(planner.plan, now)
            except Exception as exc:  # the store or the views: next round tries again
                log.warning("%s failed, retrying next round: %s", planner.name, exc)
                continue
            if planned:
                log.info("%s: %d new", planner.name, planned)
            if planners is self._planners and getattr(planner, "behind", False):
                self._plan_at = self._clock.monotonic()  # more to plan: again at once
