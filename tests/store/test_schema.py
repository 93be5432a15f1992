"""Processes starting together on one new PostgreSQL database all come up: table creation is
serialised (``CREATE TABLE IF NOT EXISTS`` alone races there)."""

from __future__ import annotations

import threading

import pytest

from hub.stream.runtime import DistributedRuntime
from tests.support.store import SettingsFactory

pytestmark = pytest.mark.postgres


def test_runtimes_starting_at_once_on_a_new_database_all_start(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings("postgres")
    runtimes = [DistributedRuntime(settings, roles=()) for _ in range(6)]
    barrier = threading.Barrier(len(runtimes))
    failures: list[BaseException] = []

    def start(runtime: DistributedRuntime) -> None:
        barrier.wait()
        try:
            runtime.start()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(r,)) for r in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert failures == []
        assert all(r.started for r in runtimes)
    finally:
        for runtime in runtimes:
            runtime.stop()
