"""The embedded webhook intake (hub.runtime.webhooks.intake.LogIntake) on each backend: with
no endpoint enabled, its cursor moves past what nobody wants once a second, not after every
commit; an endpoint enabled meanwhile gets its events at once."""

from __future__ import annotations

import os

import pytest

from hub.metrics import Metrics
from hub.runtime.webhooks import intake as intake_module
from hub.runtime.webhooks.intake import LogIntake
from hub.store import Store
from hub.store.webhook_queue import WebhookQueue
from hub.store.webhooks import WebhookStore
from tests.support.store import inbound

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2Vj"


class Monotonic:
    """``time.monotonic`` for the intake, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_without_endpoints_the_cursor_moves_once_a_second(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    monkeypatch.setattr(intake_module, "time", clock)
    WebhookStore.create_tables(store.state_engine)
    hooks = WebhookStore(store.state_engine, os.urandom(32))
    queue = WebhookQueue(store.state_engine)
    intake = LogIntake(store, queue, Metrics())
    head = store.app.recorder.max_notification_id

    def durable() -> int:
        return queue.intake_position(LogIntake.NAME, lambda: -1)

    def record(*refs: str) -> None:
        store.app.record_interactions([inbound(ref) for ref in refs])

    assert intake.catch_up() == 0  # an empty log
    record("SM-1")
    assert intake.catch_up() == head()
    assert durable() == head()
    moved = head()
    record("SM-2")
    assert intake.catch_up() == 0  # a moment later: nothing written
    assert durable() == moved
    clock.now += intake_module.SKIP_SECONDS
    assert intake.catch_up() == head() - moved
    assert durable() == head()

    # An endpoint enabled inside the second gets the events after its start at once.
    record("SM-3")
    assert intake.catch_up() == 0
    endpoint = hooks.add_endpoint("http://hook.test/", ["*"], "", SECRET, head)
    start = head()
    record("SM-4")
    assert intake.catch_up() > 0
    assert durable() == head()
    published, _ = store.read_envelopes(start, 100)
    assert published  # SM-4's events, and none from before the endpoint's start
    assert hooks.queue_counts() == {endpoint.id: {"pending": len(published)}}
