"""`hub serve --demo`: the demo dataset on an empty hub, loaded once only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.hub_process import HubProcess

pytestmark = pytest.mark.e2e

MARIA = "phone:+15550101001"


def _settled_events(hub: HubProcess, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The event feed once the SLA watcher (a pass every half second) has recorded the
    breaches of the demo's conversations answered late or not at all: two reads a second
    apart agree."""
    deadline = time.monotonic() + timeout
    events = hub.events()
    while True:
        time.sleep(1)
        again = hub.events()
        if again == events:
            return events
        assert time.monotonic() < deadline, "the event feed kept growing"
        events = again


def test_demo_loads_once_with_marias_sms_and_whatsapp_in_one_timeline(
    hub_server: Callable[..., HubProcess],
) -> None:
    hub = hub_server("--demo").start()
    assert "demo: loaded 11 interactions for 4 customers" in hub.log()
    hub.wait_caught_up()
    found = hub.http.get("/v1/customers", params={"address": MARIA}).json()["items"]
    assert [c["display_name"] for c in found] == ["Maria Garcia (demo)"]
    maria = found[0]["customer_id"]
    timeline = hub.timeline(maria)
    messages = [i for i in timeline if i["kind"] == "message"]
    assert [(m["channel"], m["direction"]) for m in messages] == [
        ("email", "inbound"),
        ("whatsapp", "outbound"),
        ("whatsapp", "inbound"),
        ("sms", "outbound"),
        ("sms", "inbound"),
    ]
    assert [m["delivery_status"] for m in messages] == [
        "received",
        "read",
        "received",
        "delivered",
        "received",
    ]
    assert found[0]["merged_customer_ids"] == [messages[0]["customer_id"]]
    assert found[0]["tags"] == ["replacement-sent", "vip"]
    assert found[0]["language"] == "es"
    assert any(i["kind"] == "merged" for i in timeline)
    assert [i["text"] for i in timeline if i["kind"] == "note"] == [
        "Replacement order DEMO-R-77 created; courier pick-up Friday."
    ]
    assert f"/v1/customers/{maria}/timeline" in hub.log()
    # `make run` (hub serve --demo) turns the sandbox on: replies leave nothing but loopback.
    ready = hub.http.get("/readyz").json()
    assert ready["sandbox"] is True
    assert ready["channels"]["sandbox"] == "on"
    assert "demo: the sandbox is on" in hub.log()
    events = _settled_events(hub)
    # The script's five, and the 52 of the history behind the reports (48 answered, 4 waiting).
    assert sum(e["type"] == "customer.created.v1" for e in events) == 5 + 52
    assert sum(e["type"] == "customer.merged.v1" for e in events) == 1
    chen = hub.http.get("/v1/customers", params={"address": "email:chen.wei@example.com"})
    assert [i["address"] for i in chen.json()["items"][0]["identities"]] == [
        "chat:visitor-7f3a9c",
        "email:chen.wei@example.com",
    ]
    code, _ = hub.terminate()
    assert code == 0

    hub.start()
    assert "demo: the hub already holds data; demo dataset not loaded again" in hub.log()
    hub.wait_caught_up()
    again = hub.events()
    assert again[: len(events)] == events
    # After them, at most the sandbox's reports of a send the first run made (it reports
    # 0.5, 1.5 and 3 s after a send, so "settled" above may come between two of them):
    # never the dataset again.
    assert {e["type"] for e in again[len(events) :]} <= {"interaction.delivery_updated.v1"}
    assert hub.timeline(maria) == timeline
