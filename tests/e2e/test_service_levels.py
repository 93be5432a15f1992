"""SLA breaches and reports through a real hub process on both runtimes (``hub serve``, and
``hub run all`` on Kafka and PostgreSQL, where the dispatch role's scheduler watches the due
times the project role measured): a customer left waiting past a 1-minute target gets one
``conversation.sla_breached.v1`` within seconds of the moment, with nobody reading anything;
a conversation answered in time gets none; the reports count both."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.api import wait_for
from tests.support.hub_process import HubProcess, interaction

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _breaches(hub: HubProcess) -> list[dict[str, Any]]:
    return [e for e in hub.events() if e["type"] == "conversation.sla_breached.v1"]


def test_a_breach_is_recorded_when_it_happens_and_reports_count_it(
    hub_server: Callable[..., HubProcess], hub_runtime: str
) -> None:
    hub = hub_server()
    hub.start()
    calendar = {
        "time_zone": "Europe/Vilnius",
        "hours": {
            d: [{"start": "00:00", "end": "24:00"}]
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        },
    }
    assert hub.http.put("/v1/calendars/always-open", json=calendar).status_code == 201
    policy = {"calendar": "always-open", "first_response_minutes": 1, "channels": ["sms"]}
    assert hub.http.put("/v1/sla-policies/fast", json=policy).status_code == 201

    # Answered within the minute, in one batch: no breach.
    asked = datetime.now(UTC) - timedelta(seconds=50)
    answered = hub.record_batch(
        [
            interaction(address="phone:+15550109001", occurred_at=asked.isoformat()),
            interaction(
                address="phone:+15550109001",
                direction="outbound",
                occurred_at=(asked + timedelta(seconds=20)).isoformat(),
            ),
        ]
    )
    assert answered["new"] == 2
    # Left waiting: its minute runs out about 3 s from now.
    waiting_since = datetime.now(UTC) - timedelta(seconds=57)
    left = hub.record(
        interaction(address="phone:+15550109002", occurred_at=waiting_since.isoformat())
    )

    (breach,) = wait_for(lambda: _breaches(hub), timeout=40)
    data = breach["data"]
    due = waiting_since + timedelta(minutes=1)
    assert data["conversation_id"] == left["conversation_id"]
    assert (data["policy"], data["target"], data["channel"]) == ("fast", "first_response", "sms")
    assert datetime.fromisoformat(data["due_at"]) == due
    assert datetime.fromisoformat(breach["occurred_at"]) == due
    late = datetime.fromisoformat(breach["recorded_at"]) - due
    assert timedelta(0) <= late < timedelta(seconds=15 if hub_runtime == "kafka" else 5)
    time.sleep(1.5)
    assert len(_breaches(hub)) == 1  # recorded once, however often the watcher looks

    def reported() -> dict[str, Any] | None:
        body: dict[str, Any] = hub.http.get(
            "/v1/reports/response-times", params={"group": "channel"}
        ).json()
        return body if body["total"]["responses"] == 1 else None

    report = wait_for(reported, timeout=30)
    (sms,) = report["rows"]
    assert sms["group"] == "sms"
    assert sms["first_response_median"] == 20.0
    assert (sms["with_target"], sms["breached"], sms["breach_rate"]) == (1, 0, 0.0)
    opened = hub.http.get("/v1/reports/conversations", params={"group": "channel"}).json()
    assert opened["total"]["opened"] == 2
    assert opened["total"]["answered"] == 1
