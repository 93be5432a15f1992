"""The queue with SLA due times: each open conversation under a policy says when its next
target breaches ("breaches in 50 min", "breached 1 h ago"), the queue sorts by that time and
filters to what breached or breaches soon; a resolved conversation shows none. On SQLite and
PostgreSQL: the due time is computed in SQL from two columns."""

from __future__ import annotations

import html
import re
import time

from tests.support.api import ADMIN_TOKEN, Api, ago
from tests.support.console import sign_in


def _queue(api: Api, **params: str) -> str:
    page = api.client.get("/", params=params)
    assert page.status_code == 200, page.text
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"\s+", " ", page.text)))


def _wait_for_sla(api: Api, conversation_ids: list[str]) -> None:
    """Until the service projection has measured these conversations."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = _queue(api, sort="due")
        if text.count("breach") >= len(conversation_ids):
            return
        time.sleep(0.1)
    raise AssertionError(f"no SLA in the queue: {text}")


def test_the_queue_shows_sorts_and_filters_by_sla_due_time(api: Api) -> None:
    policy = {"first_response_minutes": 60, "resolution_minutes": 24 * 60}
    assert api.put("/v1/sla-policies/standard", json=policy).status_code == 201
    late = api.record(address="phone:+15550107001", text="late", occurred_at=ago(125))
    soon = api.record(address="phone:+15550107002", text="soon", occurred_at=ago(10))
    assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
    _wait_for_sla(api, [late["conversation_id"], soon["conversation_id"]])

    text = _queue(api, sort="due")
    assert "breached 1 h ago" in text  # due 65 min ago
    assert "breaches in 49 min" in text or "breaches in 50 min" in text
    assert text.index("7001") < text.index("7002")  # the breached one first
    newest_first = _queue(api)
    assert newest_first.index("7002") < newest_first.index("7001")

    breached = _queue(api, due="breached")
    assert "7001" in breached
    assert "7002" not in breached
    within_hour = _queue(api, due="1h", sort="due")
    assert "7001" in within_hour
    assert "7002" in within_hour

    conversation = late["conversation_id"]
    resolved = api.put(f"/v1/conversations/{conversation}/status", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    deadline = time.monotonic() + 10
    while "7001" in _queue(api, due="breached") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "7001" not in _queue(api, due="breached")
