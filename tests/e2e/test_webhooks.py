"""Outbound webhooks from a real hub process, on both runtimes: ``hub serve`` (delivered from
its log follower) and ``hub run all`` on Kafka (the ``webhooks`` role queues ``hub.events``).

What a downstream service relies on: every event arrives, signed so that the Standard Webhooks
reference library accepts it, with the body ``/v1/events`` shows, in order per customer, through
a receiver's errors and through a ``kill -9`` of the hub mid-delivery (duplicates only with the
same ``webhook-id``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tests.peers.webhook_receiver import Received, WebhookReceiver
from tests.support.hub_process import HubProcess, interaction

pytestmark = pytest.mark.e2e

Server = Callable[..., HubProcess]

#: Loopback receivers, retries within a second.
WEBHOOK_ENV = {
    "HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
    "HUB_WEBHOOKS__BACKOFF_BASE_SECONDS": "0.1",
    "HUB_WEBHOOKS__BACKOFF_MAX_SECONDS": "0.5",
}


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def receiver() -> Any:
    with WebhookReceiver() as running:
        yield running


def _hub(hub_server: Server) -> HubProcess:
    hub = hub_server()
    hub.env.update(WEBHOOK_ENV)
    return hub.start()


def _subscribe(hub: HubProcess, url: str) -> dict[str, Any]:
    response = hub.http.post(
        "/v1/webhooks",
        json={"url": url, "event_types": ["interaction.*"], "description": "e2e"},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _messages(count: int, customers: int, prefix: str) -> list[dict[str, Any]]:
    return [
        interaction(
            address=f"phone:+3706{n % customers:07d}",
            provider_message_id=f"{prefix}-{n}",
            text=f"žinutė {n}",
        )
        for n in range(count)
    ]


def _first_successes(received: list[Received]) -> list[Received]:
    """Each event once, in the order its first 2xx was answered."""
    seen: set[str] = set()
    ordered = []
    for request in received:
        if 200 <= request.status < 300 and request.id not in seen:
            seen.add(request.id)
            ordered.append(request)
    return ordered


def _assert_in_order_per_customer(delivered: list[Received]) -> None:
    positions: dict[str, list[int]] = defaultdict(list)
    for request in delivered:
        positions[request.json["customer_id"]].append(request.json["position"])
    for customer, seen in positions.items():
        assert seen == sorted(seen), f"customer {customer} out of order: {seen}"


def test_events_arrive_signed_in_order_per_customer_through_receiver_errors(
    hub_server: Server, receiver: WebhookReceiver
) -> None:
    hub = _hub(hub_server)
    created = _subscribe(hub, receiver.url)
    secret = created["secret"]
    receiver.answer(500, times=4)  # the receiver fails a while, then recovers
    hub.record_batch(_messages(12, 3, "e2e-order"))
    hub.wait_caught_up()
    expected = {
        e["id"]: e for e in hub.events() if e["type"].startswith("interaction.")
    }  # what /v1/events shows
    assert len(expected) == 12

    receiver.wait(lambda got: len(_first_successes(got)) >= 12, timeout=60)
    delivered = _first_successes(receiver.requests)
    assert {r.id for r in delivered} == set(expected)
    assert all(r.verifies(secret) for r in receiver.requests)
    assert all(r.json == expected[r.id] for r in delivered)  # the envelope, as published
    _assert_in_order_per_customer(delivered)

    # every attempt is logged (the last outcomes a moment after the receiver answered)
    deadline = time.monotonic() + 15
    while True:
        attempts = hub.http.get(f"/v1/webhooks/{created['id']}/deliveries").json()
        outcomes = Counter(a["outcome"] for a in attempts["items"])
        if outcomes["delivered"] >= 12 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert outcomes["delivered"] == 12
    assert outcomes["retrying"] >= 1


def test_a_hub_killed_mid_delivery_loses_nothing(
    hub_server: Server, receiver: WebhookReceiver
) -> None:
    hub = _hub(hub_server)
    created = _subscribe(hub, receiver.url)
    receiver.answer(None, delay=0.2)  # slow: deliveries are in flight when the hub dies
    hub.record_batch(_messages(30, 10, "e2e-kill"))
    receiver.wait(lambda got: len(got) >= 5, arrived=True, timeout=60)
    hub.kill()
    receiver.clear()

    hub.start()
    hub.wait_caught_up()
    wanted = {e["id"] for e in hub.events() if e["type"].startswith("interaction.")}
    assert len(wanted) == 30
    receiver.wait(lambda got: {r.id for r in _first_successes(got)} >= wanted, timeout=90)
    # at least once: a request cut off by the kill comes again, with the same webhook-id
    ids = Counter(r.id for r in receiver.arrivals)
    assert set(ids) == wanted
    assert all(r.verifies(created["secret"]) for r in receiver.requests)
    _assert_in_order_per_customer(_first_successes(receiver.requests))
