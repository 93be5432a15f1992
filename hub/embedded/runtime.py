"""The embedded runtime: the store, the views and a log follower, which applies the
projections in a process of its own (``hub.embedded.process``, the default) or in a thread
of the server (``HUB_PROJECTION_PROCESS=false``)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from hub.embedded.follower import LogFollower
from hub.embedded.process import FollowerProcess
from hub.runtime import Runtime
from hub.runtime.retention import RetentionKeeper

log = logging.getLogger(__name__)


class EmbeddedRuntime(Runtime):
    """``hub serve``: SQLite by default; projections follow the notification log, in a
    child process or a thread."""

    kind = "embedded"

    def start(self) -> None:
        super().start()
        self.follower: LogFollower | FollowerProcess
        if self.settings.projection_process:
            self.follower = FollowerProcess(self.settings)
            self.store.app.add_listener(self.follower.wake)
            self.follower.start()  # once the child has caught up
        else:
            self.follower = LogFollower(
                self.store,
                self.views,
                batch_size=self.settings.projection_batch_size,
                poll_interval=self.settings.projection_poll_interval,
                coalesce=self.settings.projection_coalesce_ms / 1000,
            )
            self.store.app.add_listener(self.follower.wake)
            caught_up = self.follower.catch_up()
            if caught_up:
                log.info("projections caught up %d events from the store", caught_up)
            self.follower.start()
        # Message retention (docs/retention.md): once at start_async, then daily.
        self.retention = RetentionKeeper(self.apply_retention)

    async def start_async(self) -> None:
        await self.start_channels(listen=True, dispatch=True)
        await self.start_webhooks(intake=True)  # from the log, like the projections
        self.retention.start()

    async def stop_async(self) -> None:
        await self.retention.stop()
        await self.stop_webhooks()
        await self.stop_channels()

    def kafka_copies_expire_by(self, erased_at: datetime) -> datetime | None:
        return None  # no Kafka here, whatever the store

    def stop(self) -> None:
        if self.started:
            self.follower.stop()
        super().stop()

    def wait_visible(self, position: int, timeout: float = 5.0) -> bool:
        """Block until every projection has applied ``position`` (for tests and tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.views.low_water_mark() >= position:
                return True
            time.sleep(0.002)
        return False

    def problems(self) -> list[str]:
        found = super().problems()
        if not self.follower.alive:
            found.append("projection follower is not running")
        if self.follower.error:
            found.append(f"projection follower failing: {self.follower.error}")
        return found + self.channel_problems()
