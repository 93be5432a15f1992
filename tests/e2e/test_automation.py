"""Scheduled messages through a real hub process: on both runtimes (``hub serve``, and ``hub
run all`` on Kafka and PostgreSQL, where the dispatch role runs the scheduler), a template in
the customer's language goes out through Twilio's API on loopback once when due, and the
lawfulness answer names what planned it; a marketing campaign reaches the segment's member
who opted in and counts the other as skipped; and a ``hub serve`` killed with SIGKILL again and
again while messages come due queues each once and never sends one twice."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.peers.twilio_peer import TwilioPeer, twilio_env
from tests.support.api import wait_for
from tests.support.hub_process import HubProcess, interaction

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_templates_scheduled_messages_and_campaigns_on_both_runtimes(
    hub_server: Callable[..., HubProcess], twilio: TwilioPeer
) -> None:
    hub = hub_server()
    hub.env.update(twilio_env(twilio.url) | {"HUB_AUTOMATION__PLAN_INTERVAL_SECONDS": "0.5"})
    hub.start()
    template = {
        "default_language": "en",
        "defaults": {"first_name": "there"},
        "variants": [
            {"language": "en", "text": "Hi {{ first_name }}, see you on {{ attributes.day }}"},
            {"language": "lt", "text": "Labas, {{ first_name }}! Iki {{ attributes.day }}"},
        ],
    }
    attribute = hub.http.put("/v1/attributes/day", json={"type": "string", "label": "Day"})
    assert attribute.is_success, attribute.text
    saved = hub.http.put("/v1/templates/visit", json=template)
    assert saved.status_code in (200, 201), saved.text
    customer = hub.record(interaction(address="phone:+14155552671"))["customer_id"]
    profile = {
        "display_name": "Žydrūnė Ąžuolaitė",
        "language": "lt",
        "attributes": {"day": "pirmadienio"},
    }
    assert hub.http.patch(f"/v1/customers/{customer}", json=profile).is_success
    due = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = hub.http.post(
        f"/v1/customers/{customer}/scheduled-messages",
        json={"template": "visit", "channels": ["sms"], "send_at": due.isoformat()},
    )
    assert scheduled.status_code == 201, scheduled.text
    occurrence = scheduled.json()["id"]
    (sent,) = wait_for(lambda: twilio.messages, timeout=30)
    assert sent["body"] == "Labas, Žydrūnė! Iki pirmadienio"
    path = f"/v1/customers/{customer}/scheduled-messages/{occurrence}"
    found = wait_for(lambda: (b := hub.http.get(path).json())["status"] == "queued" and b)
    lawful = hub.http.get(f"/v1/messages/{found['message_id']}/lawfulness")
    assert lawful.status_code == 200, lawful.text
    automation = lawful.json()["automation"]
    assert (automation["template"], automation["template_version"]) == ("visit", 1)
    assert automation["occurrence_id"] == occurrence
    time.sleep(1.0)
    assert len(twilio.messages) == 1

    # A marketing campaign to a segment: the member who opted in gets it; the other is
    # skipped for want of consent, and the campaign's counts say so.
    other = hub.record(interaction(address="phone:+14155552672"))["customer_id"]
    for member in (customer, other):
        tagged = hub.http.put(f"/v1/customers/{member}/tags", json={"tags": ["vip"]})
        assert tagged.is_success, tagged.text
    consent = {"channel": "sms", "granted": True, "purposes": ["marketing"]}
    assert hub.http.put(f"/v1/customers/{customer}/consent", json=consent).is_success
    hub.wait_caught_up()
    segment = hub.http.post("/v1/segments", json={"name": "VIP", "filter": {"tag": "vip"}})
    assert segment.status_code == 201, segment.text
    campaign = hub.http.post(
        "/v1/automations",
        json={
            "kind": "campaign",
            "name": "Winter sale",
            "template": "visit",
            "channels": ["sms"],
            "purpose": "marketing",
            "segment_id": segment.json()["segment_id"],
            "at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        },
    )
    assert campaign.status_code == 201, campaign.text
    path = f"/v1/automations/{campaign.json()['automation_id']}"

    def counted() -> dict[str, Any] | None:
        counts: dict[str, Any] = hub.http.get(path).json()["counts"]
        return counts if counts["sent"] + sum(counts["skipped"].values()) == 2 else None

    counts = wait_for(counted, timeout=60)
    assert (counts["sent"], counts["skipped"]) == (1, {"consent_missing": 1})
    # "sent" counts the message the campaign queued; the provider gets it a moment later.
    delivered = wait_for(lambda: len(twilio.messages) == 2 and twilio.messages, timeout=30)
    assert [m["to"] for m in delivered] == ["+14155552671", "+14155552671"]


#: Sends under way at once in the test below (the hub's default is 16, more than it sends).
IN_FLIGHT = 2


@pytest.mark.parametrize("hub_runtime", ["embedded"])
def test_a_hub_killed_while_messages_come_due_queues_each_once_and_sends_none_twice(
    tmp_path: Path, twilio: TwilioPeer, hub_runtime: str
) -> None:
    hub = HubProcess(
        tmp_path / "data",
        tmp_path / "hub.log",
        env=twilio_env(twilio.url)
        | {"HUB_DISPATCH__IN_DOUBT_SECONDS": "1", "HUB_DISPATCH__MAX_IN_FLIGHT": str(IN_FLIGHT)},
    )
    count = 16
    rng = random.Random(18)
    try:
        hub.start()
        start = datetime.now(UTC) + timedelta(seconds=2)
        wanted: dict[str, str] = {}
        for n in range(count):
            customer = hub.record(interaction(address=f"phone:+1415555{n:04d}"))["customer_id"]
            body = {
                "text": f"Reminder {n}",
                "channels": ["sms"],
                "send_at": (start + timedelta(milliseconds=150 * n)).isoformat(),
            }
            response = hub.http.post(f"/v1/customers/{customer}/scheduled-messages", json=body)
            assert response.status_code == 201, response.text
            wanted[response.json()["id"]] = customer
        kills = 0
        while True:  # kill it at random moments while they come due, until none is pending
            time.sleep(rng.uniform(0.1, 0.9))
            hub.kill()
            kills += 1
            hub.start()
            if kills >= 4 and all(_status(hub, o, c) != "scheduled" for o, c in wanted.items()):
                break
            assert kills < 60, "scheduled messages still pending after 60 restarts"
        statuses = {o: _status(hub, o, c) for o, c in wanted.items()}
        assert set(statuses.values()) == {"queued"}
        queued = Counter(
            e["data"]["occurrence_id"]
            for e in hub.events()
            if e["type"] == "scheduled_message.queued.v1"
        )
        assert queued == Counter(dict.fromkeys(wanted, 1))
        # Every message settles: sent, or (killed between the call and its answer, on a
        # provider without idempotency keys) left unsent as "outcome unknown".
        settled = wait_for(lambda: _all_settled(hub, wanted), timeout=30)
        bodies = Counter(m["body"] for m in twilio.messages)
        assert all(n == 1 for n in bodies.values()), bodies
        sent = {s for s, status in settled.items() if status != "failed"}
        assert sent <= set(bodies)
        # A kill leaves at most the sends under way in doubt.
        assert len(bodies) >= count - IN_FLIGHT * kills
    finally:
        hub.cleanup()


def _status(hub: HubProcess, occurrence: str, customer: str) -> str:
    response = hub.http.get(f"/v1/customers/{customer}/scheduled-messages/{occurrence}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def _all_settled(hub: HubProcess, wanted: dict[str, str]) -> dict[str, str] | None:
    found: dict[str, str] = {}
    for occurrence, customer in wanted.items():
        path = f"/v1/customers/{customer}/scheduled-messages/{occurrence}"
        scheduled: dict[str, Any] = hub.http.get(path).json()
        message = hub.http.get(f"/v1/messages/{scheduled['message_id']}/lawfulness").json()
        if message["outcome"] in ("queued", "sending", "held"):
            return None
        found[scheduled["text"]] = message["outcome"]
    return found
