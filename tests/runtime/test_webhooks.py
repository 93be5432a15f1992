"""Outbound webhooks end to end on an embedded hub: interactions recorded through the API reach
a real receiver on loopback, whose signatures the reference library (``standardwebhooks``)
checks; event-type patterns; order per customer through failures and an outage; a slow
customer or endpoint holding up no other; 410 and a whole failing period disabling; the
given-up events redelivered; Retry-After; replays and pings; a secret rotation during
traffic; a loopback endpoint refused; erasure of what endpoints answered."""

from __future__ import annotations

import asyncio
import fnmatch
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import InvalidCommand
from hub.runtime.webhooks import Endpoint, WebhookService
from hub.store.webhooks import WebhookStore
from tests.peers.webhook_receiver import Received, WebhookReceiver
from tests.support.api import ADMIN_TOKEN, Api, running_app, wait_for
from tests.support.store import SettingsFactory

#: Tiny backoffs and periods; loopback endpoints allowed.
FAST = {
    "allow_private_networks": True,
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "connect_timeout_seconds": 1,
    "total_timeout_seconds": 5,
    "retry_period": timedelta(seconds=60),
}


@contextmanager
def hub(make_settings: SettingsFactory, backend: str = "sqlite", **webhooks: Any) -> Iterator[Api]:
    settings = make_settings(backend, admin_token=ADMIN_TOKEN, webhooks=FAST | webhooks)
    with running_app(settings) as api:
        yield api


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as peer:
        yield peer


def service(api: Api) -> WebhookService:
    assert api.runtime is not None
    return api.runtime.webhooks


def subscribe(
    api: Api, receiver: WebhookReceiver, *patterns: str, path: str = ""
) -> tuple[Endpoint, str]:
    """A new endpoint at the receiver, and its secret."""
    created = service(api).create(receiver.url + path, patterns or ["*"], "tests")
    return created.endpoint, created.secret


def sms(api: Api, phone: int, text: str = "hello") -> str:
    """An inbound SMS from +1555010<phone>; returns the customer's id."""
    return str(api.record(address=f"phone:+1555010{phone:04d}", text=text)["customer_id"])


def expected(api: Api, endpoint: Endpoint) -> list[dict[str, Any]]:
    """The published events the endpoint should get, in store order."""
    return [
        e
        for e in api.all_events()
        if e["position"] > endpoint.start_position
        and any(fnmatch.fnmatchcase(e["type"], p) for p in endpoint.event_types)
    ]


def delivered_ids(requests: list[Received], path: str = "/hook") -> set[str]:
    return {r.id for r in requests if r.path == path and 200 <= r.status < 300}


def wait_delivered(
    receiver: WebhookReceiver, events: list[dict[str, Any]], path: str = "/hook", timeout=15.0
) -> None:
    wanted = {e["id"] for e in events}
    receiver.wait(lambda seen: wanted <= delivered_ids(seen, path), timeout)


def assert_in_order(requests: list[Received]) -> None:
    """Per customer, each event was delivered after every earlier one (repeats aside)."""
    last: dict[str, int] = {}
    done: set[str] = set()
    for request in requests:
        if not 200 <= request.status < 300 or request.id in done:
            continue
        done.add(request.id)
        event = request.json
        assert event["position"] > last.get(event["customer_id"], 0), "out of order"
        last[event["customer_id"]] = event["position"]


def test_interactions_are_delivered_signed_and_filtered(
    make_settings: SettingsFactory, receiver: WebhookReceiver, backend: str
) -> None:
    with hub(make_settings, backend) as api:
        before = sms(api, 1, "before any endpoint")
        everything, all_secret = subscribe(api, receiver, "*", path="/all")
        chats, chats_secret = subscribe(api, receiver, "interaction.*", path="/chats")
        customers, customers_secret = subscribe(api, receiver, "customer.*.v1", path="/customers")
        for phone in (1, 2, 3, 2):
            sms(api, phone)

        events = expected(api, everything)
        of_chats, of_customers = expected(api, chats), expected(api, customers)
        wait_delivered(receiver, events, "/hook/all")
        wait_delivered(receiver, of_chats, "/hook/chats")
        wait_delivered(receiver, of_customers, "/hook/customers")
        metrics = api.get("/metrics").text

    assert {e["type"] for e in of_chats} == {"interaction.received.v1"}
    assert {"customer.created.v1", "conversation.opened.v1"} <= {e["type"] for e in events}
    assert before not in {e["customer_id"] for e in events if e["type"] == "customer.created.v1"}
    by_path: dict[str, list[Received]] = {}
    for request in receiver.requests:
        by_path.setdefault(request.path.removeprefix("/hook/"), []).append(request)
    secrets = {"all": all_secret, "chats": chats_secret, "customers": customers_secret}
    for path, requests in by_path.items():
        for request in requests:
            # The reference library verifies it with this endpoint's secret only.
            assert {p: request.verifies(s) for p, s in secrets.items()} == {
                p: p == path for p in secrets
            }
            assert request.id == request.json["id"]
            assert request.headers["content-type"] == "application/json"
            assert request.headers["user-agent"] == "interaction-hub-webhooks/1"
        assert_in_order(requests)
    # Exactly the matching events, once each, with the body /v1/events has.
    assert sorted((r.json for r in by_path["all"]), key=lambda e: e["position"]) == events
    assert sorted(r.id for r in by_path["chats"]) == sorted(e["id"] for e in of_chats)
    assert sorted(r.id for r in by_path["customers"]) == sorted(e["id"] for e in of_customers)
    assert all(r.json["type"].startswith("customer.") for r in by_path["customers"])
    assert 'hub_webhook_deliveries_total{outcome="delivered"}' in metrics
    for name in (
        "hub_webhook_response_seconds",
        "hub_webhook_delivery_delay_seconds",
        "hub_webhook_queue_events",
        "hub_webhook_intake_lag_positions",
    ):
        assert f"# TYPE {name} " in metrics


def test_an_endpoint_down_for_a_while_gets_everything_in_order(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings) as api:
        endpoint, _ = subscribe(api, receiver)
        receiver.down()
        for phone in (1, 2, 3, 1, 2, 1):
            sms(api, phone)
        wait_for(lambda: service(api).attempts(endpoint.id, outcome="retrying", limit=10))
        assert service(api).get(endpoint.id).failing_since is not None
        receiver.start()
        # A customer's first event fails once more after the outage: order still holds.
        events = expected(api, endpoint)
        receiver.answer(500, times=2, customer=events[0]["customer_id"])
        wait_delivered(receiver, events)
        assert wait_for(lambda: service(api).get(endpoint.id).pending == 0)
        shown = service(api).get(endpoint.id)

    assert (shown.enabled, shown.failing_since, shown.failed) == (True, None, 0)
    assert shown.last_success_at is not None
    assert_in_order(receiver.requests)
    delivered = [r.id for r in receiver.delivered()]
    assert sorted(delivered) == sorted(e["id"] for e in events)  # each once


def test_a_slow_customer_or_endpoint_holds_up_no_other(make_settings: SettingsFactory) -> None:
    with WebhookReceiver() as fast, WebhookReceiver() as slow, hub(make_settings) as api:
        subscribe(api, fast)
        slow_endpoint, _ = subscribe(api, slow)
        slow.answer(delay=1.0)  # every request to this endpoint takes a second
        sloth = sms(api, 1)  # a customer whose requests take a second at the fast endpoint
        fast.answer(delay=1.0, customer=sloth)
        sms(api, 1, "again")
        others = [sms(api, phone) for phone in (2, 3, 4)]
        events = expected(api, slow_endpoint)
        of_others = [e for e in events if e["customer_id"] in others]
        of_sloth = [e for e in events if e["customer_id"] == sloth]
        wait_delivered(fast, of_others)
        # The others went while the slow customer's line, and the slow endpoint, crawl.
        assert len(delivered_ids(fast.requests) & {e["id"] for e in of_sloth}) < len(of_sloth)
        assert len(slow.requests) < len(events)
        wait_delivered(fast, of_sloth)
        wait_delivered(slow, events, timeout=30)
    assert_in_order(fast.requests)
    assert_in_order(slow.requests)


def test_410_disables_and_enabling_again_sends_what_is_pending(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings) as api:
        endpoint, _ = subscribe(api, receiver)
        receiver.answer(410)
        sms(api, 1)
        shown = wait_for(lambda: _disabled(service(api), endpoint.id))
        assert shown.disabled_reason == "gone"
        assert len(receiver.arrivals) == 1  # nothing more once disabled
        (attempt,) = service(api).attempts(endpoint.id)
        assert (attempt.outcome, attempt.status_code) == ("disabled", 410)
        assert shown.pending == len(expected(api, endpoint))  # kept for later
        ping = asyncio.run(service(api).ping(endpoint.id))  # a disabled endpoint is pinged
        assert (ping.outcome, ping.status_code) == ("ping", 410)
        assert receiver.arrivals[-1].json["type"] == "webhook.ping"
        assert not service(api).get(endpoint.id).enabled

        receiver.clear()
        service(api).update(endpoint.id, enabled=True)
        wait_delivered(receiver, expected(api, endpoint))
    assert_in_order(receiver.requests)


def test_failing_for_the_whole_period_parks_disables_and_redelivers(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings, retry_period=timedelta(seconds=1.5)) as api:
        endpoint, _ = subscribe(api, receiver)
        receiver.answer(500)
        sms(api, 1)
        shown = wait_for(lambda: _disabled(service(api), endpoint.id))
        events = expected(api, endpoint)
        assert (shown.disabled_reason, shown.failed, shown.pending) == (
            "failing",
            1,
            len(events) - 1,
        )
        (parked,) = service(api).parked(endpoint.id)
        assert (parked.event_id, parked.position) == (UUID(events[0]["id"]), events[0]["position"])
        assert parked.last_error == "HTTP 500"
        assert parked.attempts == len(receiver.arrivals) > 2  # retried, then given up
        outcomes = [a.outcome for a in service(api).attempts(endpoint.id)]
        assert outcomes[0] == "disabled"
        assert set(outcomes[1:]) == {"retrying"}

        receiver.clear()
        assert service(api).redeliver(endpoint.id) == 1
        service(api).update(endpoint.id, enabled=True)
        wait_delivered(receiver, events)
    assert_in_order(receiver.requests)


def test_retry_after_is_honoured(make_settings: SettingsFactory, receiver: WebhookReceiver) -> None:
    with hub(make_settings) as api:
        endpoint, _ = subscribe(api, receiver, "interaction.received.v1")
        receiver.answer(503, times=1, headers={"retry-after": "1"})
        receiver.answer(429, times=1)  # then a plain failure: the backoff alone (< 0.1 s)
        sms(api, 1)
        wait_delivered(receiver, expected(api, endpoint))
    limited, failed, delivered = receiver.arrivals
    assert (limited.status, failed.status, delivered.status) == (503, 429, 200)
    assert failed.at - limited.at >= 1.0
    assert delivered.at - failed.at < 1.0
    assert limited.id == failed.id == delivered.id


def test_replay_from_a_position_and_ping(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings) as api:
        sms(api, 1, "before the endpoint")
        endpoint, secret = subscribe(api, receiver, "interaction.received.v1")
        sms(api, 2)
        sms(api, 3)
        wait_delivered(receiver, expected(api, endpoint))
        assert len(receiver.requests) == 2

        replay = service(api).replay(endpoint.id, from_position=0)
        received = [e for e in api.all_events() if e["type"] == "interaction.received.v1"]
        assert (replay.queued, replay.to_position) == (3, api.store_position())
        receiver.wait(lambda seen: len(seen) == 5)
        attempt = asyncio.run(service(api).ping(endpoint.id))

    assert sorted(r.id for r in receiver.requests[2:5]) == sorted(e["id"] for e in received)
    ping = receiver.requests[5]
    assert ping.verifies(secret)
    assert ping.json == {
        "id": ping.id,
        "type": "webhook.ping",
        "occurred_at": ping.json["occurred_at"],
        "endpoint_id": str(endpoint.id),
    }
    assert (attempt.outcome, attempt.status_code, attempt.event_id) == ("ping", 200, UUID(ping.id))
    assert attempt.response_excerpt == "answered 200   ok"


def test_a_secret_rotation_during_traffic(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings, secret_grace=timedelta(seconds=2)) as api:
        endpoint, old = subscribe(api, receiver, "interaction.received.v1")
        stop = threading.Event()

        def traffic() -> None:
            phone = 0
            while not stop.is_set():
                phone += 1
                sms(api, phone % 5)

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            receiver.wait(lambda seen: len(seen) >= 3)
            new, until = service(api).rotate_secret(endpoint.id)
            assert service(api).get(endpoint.id).previous_secret_expires_at == until

            def signed(*, with_old: bool) -> Callable[[list[Received]], bool]:
                def enough(seen: list[Received]) -> bool:
                    found = [r for r in seen if r.signatures_with(new)]
                    return sum(bool(r.signatures_with(old)) == with_old for r in found) >= 3

                return enough

            receiver.wait(signed(with_old=True))  # during the grace: both
            receiver.wait(signed(with_old=False))  # after it: the new one only
        finally:
            stop.set()
            sender.join()
        wait_delivered(receiver, expected(api, endpoint))
        assert service(api).get(endpoint.id).previous_secret_expires_at is None

    counts = [(r.signatures_with(old), r.signatures_with(new)) for r in receiver.requests]
    before, during, after = (counts.count(pair) for pair in ((1, 0), (1, 1), (0, 1)))
    assert before >= 3
    assert during >= 3  # both signatures, each verifying on its own
    assert after >= 3  # the grace is over: the new secret only
    assert before + during + after == len(receiver.requests)
    # Signed with the old secret, then with both, then with the new one: never back.
    assert counts == sorted(counts, key=lambda pair: (pair[1], -pair[0]))


def test_a_loopback_endpoint_is_refused_unless_private_networks_are_allowed(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings, allow_private_networks=False) as api:
        with pytest.raises(InvalidCommand, match="loopback"):
            service(api).create(receiver.url, ["*"])
        for url, patterns, problem in [
            ("ftp://example.com/", ["*"], "http"),
            ("https://user:pw@example.com/", ["*"], "credentials"),
            ("https://example.com/", ["interactions.*"], "matches no published event type"),
            ("https://example.com/", [], "1 to 50"),
        ]:
            with pytest.raises(InvalidCommand, match=problem):
                service(api).create(url, patterns)
        assert service(api).list() == []
        # One stored while allowed (here: written past the courtesy check) is refused at
        # every attempt: nothing connects to it.
        assert api.runtime is not None
        store = WebhookStore(api.runtime.store.state_engine, api.runtime.store.webhooks_key)
        row = store.add_endpoint(receiver.url, ["*"], "", "whsec_c2VjcmV0", lambda: 0)
        sms(api, 1)
        attempts = wait_for(lambda: service(api).attempts(row.id, outcome="retrying"))
    assert "AddressRefused" in (attempts[0].error or "")
    assert "127.0.0.1 is a loopback address" in (attempts[0].error or "")
    assert receiver.arrivals == []


def test_erasure_clears_what_endpoints_answered(
    make_settings: SettingsFactory, receiver: WebhookReceiver
) -> None:
    with hub(make_settings) as api:
        endpoint, _ = subscribe(api, receiver, "interaction.received.v1")
        customer = sms(api, 1, "my secret plans")
        other = sms(api, 2)
        wait_delivered(receiver, expected(api, endpoint))
        assert api.runtime is not None
        report = api.runtime.erase(UUID(customer), actor=None, reason="data_subject_request")
        attempts = service(api).attempts(endpoint.id)
    assert report.removed["webhook_excerpts"] == 1
    excerpts = {str(a.event_id): a.response_excerpt for a in attempts}
    by_customer = {r.json["customer_id"]: r.id for r in receiver.requests}
    assert excerpts[by_customer[customer]] is None
    assert excerpts[by_customer[other]] == "answered 200   ok"


def _disabled(webhooks: WebhookService, endpoint_id: UUID) -> Endpoint | None:
    shown = webhooks.get(endpoint_id)
    return None if shown.enabled else shown
