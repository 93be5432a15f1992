"""An open conversation carries its SLA due times in the API (``sla`` of
``GET /v1/conversations/{id}`` and of a customer's open conversations); a conversation no
policy covers carries a null policy and no due times."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from tests.support.api import Api, ago


def _sla(api: Api, conversation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        response = api.get(f"/v1/conversations/{conversation_id}")
        body = response.json() if response.status_code == 200 else {"sla": None}
        if body["sla"] is not None or time.monotonic() > deadline:
            assert body["sla"] is not None, body
            sla: dict[str, Any] = body["sla"]
            return sla
        time.sleep(0.05)


def test_an_open_conversation_carries_its_due_times(api: Api) -> None:
    policy = {"first_response_minutes": 30, "resolution_minutes": 480, "channels": ["sms"]}
    assert api.put("/v1/sla-policies/sms", json=policy).status_code == 201
    written = ago(5)
    recorded = api.record(address="phone:+15550108001", occurred_at=written)
    sla = _sla(api, recorded["conversation_id"])
    start = datetime.fromisoformat(written)
    assert sla["policy"] == "sms"
    assert datetime.fromisoformat(sla["waiting_since"]) == start
    assert datetime.fromisoformat(sla["response_due_at"]) == start + timedelta(minutes=30)
    assert datetime.fromisoformat(sla["resolution_due_at"]) == start + timedelta(hours=8)
    assert sla["next_due_at"] == sla["response_due_at"]

    customer = api.get(f"/v1/customers/{recorded['customer_id']}").json()
    (listed,) = customer["open_conversations"]
    assert listed["sla"] == sla


def test_a_conversation_no_policy_covers_has_no_due_times(api: Api) -> None:
    policy = {"first_response_minutes": 30, "channels": ["email"]}
    assert api.put("/v1/sla-policies/email-only", json=policy).status_code == 201
    recorded = api.record(address="phone:+15550108002")
    sla = _sla(api, recorded["conversation_id"])
    assert sla["policy"] is None
    assert sla["response_due_at"] is None
    assert sla["next_due_at"] is None


def _gauges(api: Api) -> dict[str, float]:
    text = api.get("/metrics").text
    found = {}
    for line in text.splitlines():
        if line.startswith(("hub_open_conversations", "hub_sla_", "hub_oldest_waiting")):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_metrics_gauge_open_conversations_breaches_and_the_longest_wait(api: Api) -> None:
    policy = {"first_response_minutes": 60}
    assert api.put("/v1/sla-policies/standard", json=policy).status_code == 201
    late = api.record(address="phone:+15550108003", occurred_at=ago(120))
    api.record(address="phone:+15550108004", occurred_at=ago(30))
    _sla(api, late["conversation_id"])
    deadline = time.monotonic() + 10
    while (found := _gauges(api)).get('hub_open_conversations{channel="sms"}') != 2:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    assert found["hub_sla_breached_open"] == 1
    assert found["hub_sla_breaching_soon"] == 1  # due in 30 min
    assert 7200 <= found["hub_oldest_waiting_seconds"] < 7300

    resolved = api.put(
        f"/v1/conversations/{late['conversation_id']}/status", json={"status": "resolved"}
    )
    assert resolved.status_code == 200
    while (found := _gauges(api)).get('hub_open_conversations{channel="sms"}') != 1:
        assert time.monotonic() < deadline + 10, found
        time.sleep(0.05)
    assert found["hub_sla_breached_open"] == 0
    assert 1800 <= found["hub_oldest_waiting_seconds"] < 1900
