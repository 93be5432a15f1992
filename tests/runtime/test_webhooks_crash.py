"""A ``hub serve`` process killed with SIGKILL while webhooks are in flight, then started
again: every event still reaches the endpoint, in order per customer; the only duplicates
are sends the hub could not record, repeated with the same ``webhook-id`` and body."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.config import Settings
from hub.runtime.webhooks import WebhookService
from hub.store import open_store
from hub.store.webhook_queue import WebhookQueue
from hub.store.webhooks import WebhookStore
from tests.peers.webhook_receiver import WebhookReceiver
from tests.runtime.test_webhooks import assert_in_order
from tests.support.hub_process import HubProcess, interaction

pytestmark = pytest.mark.e2e

WEBHOOKS = {
    "HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
    "HUB_WEBHOOKS__BACKOFF_BASE_SECONDS": "0.05",
    "HUB_WEBHOOKS__BACKOFF_MAX_SECONDS": "0.2",
    "HUB_WEBHOOKS__TOTAL_TIMEOUT_SECONDS": "1.5",
}


@contextmanager
def webhooks_of(data_dir: Path) -> Iterator[WebhookService]:
    """The webhook service of the hub in ``data_dir``, from another process (as the CLI or
    an API process would manage endpoints)."""
    settings = Settings(data_dir=data_dir, webhooks={"allow_private_networks": True})
    store = open_store(settings)
    try:
        engine = store.state_engine
        yield WebhookService(
            store,
            WebhookStore(engine, store.webhooks_key),
            WebhookQueue(engine),
            settings.webhooks,
        )
    finally:
        store.close()


def test_a_hub_killed_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    hub = HubProcess(data_dir, tmp_path / "hub.log", env=WEBHOOKS)
    with WebhookReceiver() as receiver:
        try:
            hub.start()
            with webhooks_of(data_dir) as webhooks:
                endpoint = webhooks.create(receiver.url, ["*"]).endpoint
            receiver.answer(delay=0.5)  # every answer takes a while: sends are in flight
            for number in range(12):
                hub.record(interaction(address=f"phone:+1555012{number % 4:04d}"))
            receiver.wait(lambda seen: len(seen) >= 3, arrived=True)
            hub.kill()  # SIGKILL: no outcome of the sends in flight is recorded
            receiver.clear()
            hub.start()
            events = [e for e in hub.events() if e["position"] > endpoint.start_position]
            wanted = {e["id"] for e in events}
            receiver.wait(
                lambda seen: wanted <= {r.id for r in seen if r.status == 200}, timeout=60
            )
        except BaseException:
            print(hub.log()[-5000:])
            raise
        finally:
            hub.cleanup()

    requests = receiver.requests
    bodies = {e["id"]: e for e in events}
    for request in requests:  # a repeat is the same event: same id, same body
        assert request.id in bodies
        assert request.json == bodies[request.id]
    repeated = len(requests) - len({r.id for r in requests})
    assert repeated >= 1, "the kill should have caught sends in flight"
    assert repeated <= 8  # at most what was in flight (max_in_flight)
    assert_in_order(requests)
