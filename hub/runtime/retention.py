"""Retention by age of message bodies (``HUB_RETENTION__MESSAGE_DAYS``, docs/retention.md).

A run, for a cutoff of now minus the retention period:

1. destroys the secrets of the days wholly before the cutoff's day (``hub_period_secrets``):
   every dated body of those days, in every stored event and every replay, is unreadable for
   good (the store itself is never rewritten);
2. blanks the views' copies of bodies of messages that happened before the cutoff, to the
   second (timeline text, subjects, attachments, metadata; conversations' subjects);
3. drops the dead letters received before the cutoff (they are whole payloads, bodies
   included).

Published envelopes need no run: ``hub.domain.publishing`` leaves out the body of any message
older than the retention as it builds them. ``hub retention run`` applies a run now; the
runtimes apply one at start and then daily (:class:`RetentionKeeper`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.projections import Views
from hub.store import Store

log = logging.getLogger(__name__)

#: How often a running hub applies the retention (also once at start).
RUN_EVERY_SECONDS = 24 * 3600.0
#: How long a failed run waits before it tries again (the store may be away for a while).
RETRY_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run did."""

    cutoff: datetime
    periods_destroyed: tuple[str, ...]
    views_blanked: dict[str, int] = field(default_factory=dict)
    dead_letters_purged: int = 0

    def summary(self) -> str:
        """One line for people (counts and days, nothing personal)."""
        days = self.periods_destroyed
        destroyed = (
            f"{len(days)} day secret(s) destroyed ({days[0]}..{days[-1]})"
            if days
            else "no day secret to destroy"
        )
        blanked = ", ".join(f"{n} {name} row(s)" for name, n in self.views_blanked.items())
        return (
            f"bodies before {self.cutoff.isoformat(timespec='seconds')} expired: {destroyed}; "
            f"views blanked: {blanked or 'nothing left to blank'}; "
            f"{self.dead_letters_purged} dead letter(s) dropped"
        )


def apply_retention(
    store: Store, views: Views, days: int, now: datetime | None = None
) -> RetentionRun:
    """Expire the message bodies older than ``days`` days (before ``now``) everywhere the hub
    keeps them (see the module docstring); idempotent."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    destroyed = store.cipher.destroy_periods_before(cutoff)
    blanked = views.expire_bodies_before(cutoff)
    purged = store.dead_letters.purge(cutoff)
    run = RetentionRun(cutoff, tuple(destroyed), blanked, purged)
    log.info("retention: %s", run.summary())
    return run


class RetentionKeeper:
    """Applies the retention in the background of a running hub: once at start, then every
    ``every`` seconds (a failed run is tried again after ``retry`` seconds)."""

    def __init__(
        self,
        run: Callable[[], RetentionRun | None],
        every: float = RUN_EVERY_SECONDS,
        retry: float = RETRY_SECONDS,
    ) -> None:
        self._run = run
        self._every = every
        self._retry = retry
        self._task: asyncio.Task[None] | None = None
        self.last: RetentionRun | None = None

    def start(self) -> None:
        """Start the background task (on the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="message-retention")

    async def stop(self) -> None:
        """Stop the background task (a run in progress finishes in its thread)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self) -> None:
        while True:
            try:
                self.last = await asyncio.to_thread(self._run)
            except Exception as exc:  # the store may be away for a while: try again soon
                log.warning("retention not applied: %s", type(exc).__name__)
                await asyncio.sleep(self._retry)
                continue
            if self.last is None:
                return  # no retention configured
            await asyncio.sleep(self._every)
