"""Follows the store's notification log and feeds the projections: in a thread of its own,
or in the main thread of the projection process (``hub.embedded.process``).

Woken at once by writes in this process (or, in the projection process, by the server's),
and every ``poll_interval`` for writes by others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from hub.projections import Views
from hub.store import Store

log = logging.getLogger(__name__)

#: Consecutive failures of one batch before it is applied event by event.
_ISOLATE_AFTER = 3


class LogFollower:
    """Applies new events to the views until stopped; errors are retried with backoff.

    ``wakeup`` and ``stopping`` may be given (the projection process sets them when its
    server says so); ``on_error`` is told each time the error changes (a message, or None
    once a round succeeds again)."""

    def __init__(
        self,
        store: Store,
        views: Views,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        coalesce: float = 0.0,
        only: Iterable[str] | None = None,
        wakeup: threading.Event | None = None,
        stopping: threading.Event | None = None,
        on_error: Callable[[str | None], None] | None = None,
    ) -> None:
        self._store = store
        self._views = views
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._coalesce = coalesce
        self._only = list(only) if only is not None else None
        self._wakeup = wakeup or threading.Event()
        self._stopping = stopping or threading.Event()
        self._on_error = on_error
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
        self._thread = threading.Thread(target=self.follow, name="log-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def follow(self) -> None:
        """Apply what is recorded, as it is recorded, until stopped (the thread's loop)."""
        backoff = 0.1
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                while self.run_once() and not self._stopping.is_set():
                    pass
                self._set_error(None)
                backoff = 0.1
            except Exception as exc:  # the loop must survive a database outage
                self._set_error(f"{type(exc).__name__}: {exc}")
                log.exception("projection follower failed; retrying in %.1fs", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._wakeup.wait(self._poll_interval) and self._coalesce:
                # Let a few more writes land: one cycle per few ms under load costs far less
                # than one per write, and freshness stays within milliseconds.
                self._stopping.wait(self._coalesce)
        log.info("projection follower stopped at position %d", self.position)

    def _set_error(self, error: str | None) -> None:
        if error != self.error and self._on_error is not None:
            self._on_error(error)
        self.error = error

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
