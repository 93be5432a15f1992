"""The demo dataset (``hub.demo``) gives the Reports page and the queue something to show: its
calendar and SLA policies, six weeks of first responses with some breaches, and
conversations still waiting with a due time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.demo import CALENDAR, EARLIER_DAYS, HISTORY_DAYS, POLICIES, load_demo
from tests.support.api import ADMIN_TOKEN, Api, running_app
from tests.support.store import SettingsFactory


@pytest.fixture
def demo(make_settings: SettingsFactory) -> Iterator[tuple[Api, list[str]]]:
    # As `make run` starts it: the sandbox carries every channel (the surveys go out on them).
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, sandbox=True)
    with running_app(settings) as api:
        assert api.runtime is not None
        lines = load_demo(api.runtime)
        api.wait_caught_up(timeout=30)
        yield api, lines


def _ok(api: Api, url: str, **params: Any) -> Any:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_demo_saves_its_calendar_and_sla_policies(demo: tuple[Api, list[str]]) -> None:
    api, lines = demo
    calendar = _ok(api, "/v1/calendars/default")
    assert calendar["definition"]["time_zone"] == CALENDAR["time_zone"] == "Europe/Vilnius"
    assert calendar["definition"]["holidays"]["country"] == "LT"
    assert calendar["definition"]["hours"]["monday"] == [{"start": "09:00", "end": "17:00"}]
    assert calendar["definition"]["hours"]["saturday"] == []
    standard = _ok(api, "/v1/sla-policies/standard")["definition"]
    vip = _ok(api, "/v1/sla-policies/vip")["definition"]
    assert (standard["first_response_minutes"], standard["next_response_minutes"]) == (60, 240)
    assert (standard["resolution_minutes"], standard["priority"]) == (2880, 100)
    assert (vip["first_response_minutes"], vip["next_response_minutes"]) == (30, 120)
    assert (vip["tags"], vip["priority"]) == (["vip"], 10)
    assert set(POLICIES) == {"standard", "vip"}
    assert "demo: response times and SLA breaches per week on the Reports page: /reports" in lines


def test_the_demo_reports_first_responses_per_week_with_some_breached(
    demo: tuple[Api, list[str]],
) -> None:
    api, _ = demo
    today = datetime.now(UTC).date()
    period = {
        "group": "week",
        "from": (today - timedelta(days=HISTORY_DAYS)).isoformat(),
        "to": today.isoformat(),
        "tz": "Europe/Vilnius",
    }
    report = _ok(api, "/v1/reports/response-times", **period)
    weeks_answered = [r["group"] for r in report["rows"] if r["first_responses"] > 0]
    assert len(weeks_answered) >= 4, report["rows"]
    total = report["total"]
    assert total["first_responses"] >= 40, total
    assert total["next_responses"] > 0, total
    assert 0 < total["breach_rate"] < 1, total


def _sla_of_waiting(api: Api, address: str) -> dict[str, Any]:
    """The SLA of the customer's open conversation on the address's channel, polled until
    the service projection has measured it."""
    channel = address.partition(":")[0]
    deadline = time.monotonic() + 10
    while True:
        (customer,) = _ok(api, "/v1/customers", address=address)["items"]
        open_conversations = _ok(api, f"/v1/customers/{customer['customer_id']}")[
            "open_conversations"
        ]
        (conversation,) = [c for c in open_conversations if c["channel"] == channel]
        sla = _ok(api, f"/v1/conversations/{conversation['conversation_id']}")["sla"]
        if sla is not None and sla["next_due_at"] is not None:
            assert conversation["sla"] == sla
            return dict(sla)
        assert time.monotonic() < deadline, f"no due time for {address}: {conversation}"
        time.sleep(0.05)


def test_the_demo_leaves_conversations_waiting_with_a_due_time(
    demo: tuple[Api, list[str]],
) -> None:
    api, _ = demo
    waiting_by_email = _sla_of_waiting(api, "email:vojtech.hajek@example.com")
    assert waiting_by_email["policy"] == "standard"
    assert waiting_by_email["response_due_at"] == waiting_by_email["next_due_at"]
    # Tagged vip once recorded: the open conversation moved to the vip policy, whose
    # next-response target (120 min) now counts from the customer's second message.
    vip = _sla_of_waiting(api, "chat:visitor-demo0051")  # Dáša Hrušovská (demo)
    assert vip["policy"] == "vip"
    assert vip["response_due_at"] == vip["next_due_at"]


def test_the_demo_has_retention_cohorts_sources_and_orders(
    demo: tuple[Api, list[str]],
) -> None:
    api, lines = demo
    today = datetime.now(UTC).date()
    period = {
        "from": (today - timedelta(days=EARLIER_DAYS + 31)).replace(day=1).isoformat(),
        "to": today.isoformat(),
        "tz": "Europe/Vilnius",
    }
    retention = _ok(api, "/v1/reports/retention", **period)
    cohorts = [r for r in retention["rows"] if r["customers"] > 0]
    assert len(cohorts) >= 5, retention["rows"]
    assert 0 < retention["total"]["month_1"] < 1, retention["total"]
    sources = {r["group"]: r for r in _ok(api, "/v1/reports/sources", **period)["rows"]}
    assert {"google", "newsletter", "facebook", "(none)"} <= set(sources), list(sources)
    assert sources["google"]["customers"] >= 10, sources["google"]
    value = _ok(api, "/v1/reports/value", group="source", **period)
    total = value["total"]
    assert total["buyers"] >= 15, total
    assert total["cancellations"] == 1, total
    assert total["unconverted"] == 1, total  # the USD order: no rate configured
    assert float(total["value"]) > 1000, total
    assert any("retention cohorts and value per source" in line for line in lines)


def test_the_demo_has_surveys_answered_and_csat_on(demo: tuple[Api, list[str]]) -> None:
    api, lines = demo
    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=HISTORY_DAYS + 1)).isoformat(), "to": str(today)}
    report = _ok(api, "/v1/reports/satisfaction", group="week", **period)
    total = report["total"]
    assert total["csat_answered"] >= 10
    assert 0 < total["csat_answered"] < total["csat_sent"]  # not everyone answers
    assert total["nps_answered"] >= 2
    assert total["csat"] is not None
    assert total["nps"] is not None
    agents = {row["group"] for row in _ok(api, "/v1/reports/satisfaction", group="agent")["rows"]}
    assert {"agent.sam (demo)", "agent.lee (demo)"} <= agents
    csat = _ok(api, "/v1/survey-policies/csat")
    assert (csat["enabled"], csat["template"], csat["delay_minutes"]) == (True, "csat", 1)
    nps = _ok(api, "/v1/survey-policies/nps")
    assert (nps["enabled"], nps["every_days"]) == (True, 90)
    panel = _ok(api, f"/v1/segments/{nps['segment_id']}")
    assert panel["name"] == "NPS panel (demo)"
    assert any("CSAT and NPS answers" in line for line in lines)
    # the question in the customer's language (a Lithuanian customer of the history)
    lt = _ok(api, "/v1/templates/csat")
    assert any(v["language"] == "lt" for v in lt["variants"])
