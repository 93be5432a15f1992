"""Probes, metrics and the OpenAPI document."""

from __future__ import annotations

import re

import pytest

from hub import __version__
from hub.projections import default_projections
from tests.support.api import Api

PROJECTIONS = [p.name for p in default_projections()]


def test_healthz(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_readyz_reports_positions(api: Api) -> None:
    empty = api.readiness()
    # More fields may come (additive); these must be there with these values.
    assert {k: empty[k] for k in ("status", "runtime", "store_position", "projections", "lag")} == {
        "status": "ready",
        "runtime": "embedded",
        "store_position": 0,
        "projections": dict.fromkeys(PROJECTIONS, 0),
        "lag": 0,
    }
    api.record()
    api.wait_caught_up()
    ready = api.readiness()
    assert ready["status"] == "ready"
    assert ready["store_position"] == 4  # customer, conversation, address claim, message
    assert ready["projections"] == dict.fromkeys(PROJECTIONS, 4)
    assert ready["lag"] == 0


def test_metrics_count_interactions_and_time_requests(sqlite_api: Api) -> None:
    sqlite_api.record(channel="sms")
    sqlite_api.record(channel="sms")
    sqlite_api.record(channel="email", address="email:m@example.com", direction="outbound")
    duplicate = sqlite_api.post("/v1/interactions/batch", json={"interactions": []})
    assert duplicate.status_code == 422

    response = sqlite_api.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'hub_interactions_recorded_total{channel="sms",direction="inbound"} 2.0' in text
    assert 'hub_interactions_recorded_total{channel="email",direction="outbound"} 1.0' in text
    # Requests are labelled by route template, not by raw path.
    count = re.search(
        r'hub_http_request_duration_seconds_count\{method="POST",route="/v1/interactions",'
        r'status="202"\} (\S+)',
        text,
    )
    assert count is not None, text
    assert float(count.group(1)) == 3.0
    assert (
        'hub_http_request_duration_seconds_count{method="POST",'
        'route="/v1/interactions/batch",status="422"} 1.0'
    ) in text
    assert re.search(r"^hub_store_position \S+$", text, re.MULTILINE)


def test_openapi_lists_the_v1_paths(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {p for p in paths if p.startswith("/v1/")} == {
        "/v1/interactions",
        "/v1/interactions/batch",
        "/v1/messages/{message_id}/delivery",
        "/v1/messages/{message_id}",
        "/v1/customers",
        "/v1/customers/{customer_id}",
        "/v1/customers/{customer_id}/timeline",
        "/v1/customers/{customer_id}/consent",
        "/v1/customers/{customer_id}/merge",
        "/v1/customers/{customer_id}/unmerge",
        "/v1/customers/{customer_id}/tags",
        "/v1/customers/{customer_id}/erase",
        "/v1/customers/{customer_id}/export",
        "/v1/customers/{customer_id}/access-log",
        "/v1/messages/{message_id}/lawfulness",
        "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/conversations/{conversation_id}/notes",
        "/v1/conversations/{conversation_id}/status",
        "/v1/conversations/{conversation_id}/assignee",
        "/v1/customers/{customer_id}/conversations",
        "/v1/conversations/{conversation_id}/snooze",
        "/v1/conversations/{conversation_id}/follow-ups",
        "/v1/customers/{customer_id}/scheduled-messages",
        "/v1/customers/{customer_id}/scheduled-messages/{message_id}",
        "/v1/events",
        "/v1/events/stream",
        "/v1/dead-letters",
        "/v1/dead-letters/{letter_id}",
        "/v1/dead-letters/{letter_id}/retry",
        "/v1/attributes",
        "/v1/attributes/{key}",
        "/v1/customers/{customer_id}/duplicates",
        "/v1/customers/{customer_id}/duplicates/{other_id}/preview",
        "/v1/customers/{customer_id}/duplicates/{other_id}/dismiss",
        "/v1/customers/{customer_id}/duplicates/{other_id}/restore",
        "/v1/duplicates",
        "/v1/identity-blocklist",
        "/v1/segments",
        "/v1/segments/preview",
        "/v1/segments/{segment_id}",
        "/v1/segments/{segment_id}/customers",
        "/v1/search",
        "/v1/templates",
        "/v1/templates/{name}",
        "/v1/calendars",
        "/v1/calendars/{name}",
        "/v1/sla-policies",
        "/v1/sla-policies/{name}",
        "/v1/survey-policies",
        "/v1/survey-policies/{kind}",
        "/v1/reports/{name}",
        "/v1/activities",
        "/v1/activities/batch",
        "/v1/templates/{name}/preview",
        "/v1/webhooks",
        "/v1/webhooks/{webhook_id}",
        "/v1/webhooks/{webhook_id}/rotate-secret",
        "/v1/webhooks/{webhook_id}/test",
        "/v1/webhooks/{webhook_id}/deliveries",
        "/v1/webhooks/{webhook_id}/failed",
        "/v1/webhooks/{webhook_id}/redeliver",
        "/v1/webhooks/{webhook_id}/replay",
        "/v1/automations",
        "/v1/automations/{automation_id}",
        "/v1/automations/{automation_id}/dry-run",
    }
    assert set(paths["/v1/interactions"]["post"]["responses"]) >= {"200", "202"}
    assert "bearer" in str(response.json()["components"]["securitySchemes"]).lower()


def test_readyz_says_not_ready_when_the_status_cannot_be_read(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the distributed runtime's status when its event loop is too busy to ask the broker
    # in time (its problems did not find it): a 503 that says so, not a 500.
    def busy() -> dict[str, object]:
        raise TimeoutError

    monkeypatch.setattr(sqlite_api.runtime, "problems", list)
    monkeypatch.setattr(sqlite_api.runtime, "status", busy)
    response = sqlite_api.client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["details"]["problems"] == ["status unavailable: TimeoutError"]
    assert sqlite_api.client.get("/metrics").status_code == 200
