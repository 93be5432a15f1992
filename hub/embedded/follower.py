"""Follows the store's notification log and feeds the projections, in a thread of its own.

Woken at once by writes in this process, and every ``poll_interval`` for writes by others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from hub.projections import Views
from hub.store import Store

log = logging.getLogger(__name__)

#: Consecutive failures of one batch before it is applied event by event.
_ISOLATE_AFTER = 3


class LogFollower:
    """Applies new events to the views until stopped; errors are retried with backoff."""

    def __init__(
        self,
        store: Store,
        views: Views,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        coalesce: float = 0.0,
        only: Iterable[str] | None = None,
    ) -> None:
        self._store = store
        self._views = views
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._coalesce = coalesce
        self._only = list(only) if only is not None else None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = views.low_water_mark(self._only)
        self.error: str | None = None
        self.applied_events = 0
        self.set_aside = 0
        self._failures = 0

    def wake(self, _position: int = 0) -> None:
        self._wakeup.set()

    def run_once(self) -> int:
        """Apply one batch; returns how many notifications it covered (0: caught up)."""
        start = self._views.low_water_mark(self._only)
        envelopes, last = self._store.read_envelopes(start, self._batch_size)
        if last == start:
            self.position = start
            return 0
        try:
            self.applied_events += self._views.apply(
                envelopes, up_to=last, only=self._only, after=start
            )
            self._failures = 0
        except Exception:
            # Retry the batch a few times (outages pass); then look for the event at fault.
            self._failures += 1
            if self._failures < _ISOLATE_AFTER:
                raise
            log.warning("batch after position %d keeps failing; applying it event by event", start)
            applied, set_aside = self._views.apply_isolating(
                envelopes, up_to=last, only=self._only, after=start
            )
            self.applied_events += applied
            self.set_aside += set_aside
            self._failures = 0
        self.position = last
        return len(envelopes) or 1

    def catch_up(self) -> int:
        """Apply until nothing is left; returns the number of events applied."""
        before = self.applied_events
        while self.run_once():
            pass
        return self.applied_events - before

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="log-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                while self.run_once() and not self._stopping.is_set():
                    pass
                self.error = None
                backoff = 0.1
            except Exception as exc:  # the loop must survive a database outage
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("projection follower failed; retrying in %.1fs", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._wakeup.wait(self._poll_interval) and self._coalesce:
                # Let a few more writes land: one cycle per few ms under load costs far less
                # than one per write, and freshness stays within milliseconds.
                self._stopping.wait(self._coalesce)
        log.info("projection follower stopped at position %d", self.position)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
