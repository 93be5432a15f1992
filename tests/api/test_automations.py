"""The rules and campaigns API (``/v1/automations``) on SQLite and PostgreSQL: define each
kind, list and read them with their counts, change, disable and delete them, the error codes,
admins only, the dry run; and any text in any field is refused or saved and read back."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.api.routes import automations
from hub.domain.automation import occurrence_id
from hub.runtime.automation.dates import DatePlanner
from tests.support.api import Api, assert_error

BIRTHDAY = {
    "kind": "date",
    "name": "Birthday",
    "template": "birthday",
    "channels": ["sms", "email"],
    "date_field": "birthday",
    "local_time": "10:00",
}
RESOLVED = {
    "kind": "event",
    "name": "After resolution",
    "template": "thanks",
    "channels": ["email"],
    "event_type": "conversation.status_changed.v1",
    "match": {"data.status": "resolved"},
    "delay": "P2D",
}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _segment(api: Api, name: str = "Everyone") -> str:
    body = {"name": name, "filter": {"all": []}}
    return str(ok(api.post("/v1/segments", json=body), 201)["segment_id"])


def _campaign(segment_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "kind": "campaign",
        "name": "Spring sale",
        "template": "spring",
        "channels": ["sms"],
        "purpose": "marketing",
        "segment_id": segment_id,
        "at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "throttle": 5,
    } | changes


def test_define_list_read_change_and_delete(api: Api) -> None:
    rule = ok(api.post("/v1/automations", json=BIRTHDAY), 201)
    assert rule["state"] == "active"
    assert (rule["local_time"], rule["date_field"], rule["yearly"]) == ("10:00", "birthday", True)
    assert rule["counts"] == {
        "scheduled": 0,
        "pending": 0,
        "sent": 0,
        "failed": 0,
        "cancelled": 0,
        "skipped": {},
    }
    event = ok(api.post("/v1/automations", json=RESOLVED), 201)
    assert event["delay_seconds"] == 2 * 86400
    campaign = ok(api.post("/v1/automations", json=_campaign(_segment(api))), 201)
    assert (campaign["state"], campaign["throttle"]) == ("scheduled", 5.0)
    names = [a["name"] for a in ok(api.get("/v1/automations"))["items"]]
    assert names == ["After resolution", "Birthday", "Spring sale"]
    assert [a["name"] for a in ok(api.get("/v1/automations?kind=campaign"))["items"]] == [
        "Spring sale"
    ]
    url = f"/v1/automations/{rule['automation_id']}"
    assert ok(api.get(url)) == rule
    off = ok(api.request("PATCH", url, json={"enabled": False, "offset_days": -1}))
    assert (off["state"], off["enabled"], off["offset_days"]) == ("disabled", False, -1)
    assert off["name"] == "Birthday"  # what the patch does not name stays
    ok(api.request("DELETE", url), 204)
    ok(api.request("DELETE", url), 204)
    assert_error(api.get(url), 404, "not_found")
    assert_error(api.request("DELETE", f"/v1/automations/{uuid4()}"), 404, "not_found")


def test_errors_have_codes(api: Api) -> None:
    ok(api.post("/v1/automations", json=BIRTHDAY), 201)
    assert_error(
        api.post("/v1/automations", json=BIRTHDAY | {"name": "BIRTHDAY"}),
        409,
        "automation_name_taken",
    )
    bad = assert_error(
        api.post("/v1/automations", json=BIRTHDAY | {"name": "x", "date_field": "wedding"}),
        422,
        "invalid_command",
    )
    assert bad["details"]["field"] == "date_field"
    assert_error(
        api.post("/v1/automations", json=RESOLVED | {"event_type": "interaction.queued.v1"}),
        422,
        "invalid_command",
    )
    assert_error(api.post("/v1/automations", json=_campaign(str(uuid4()))), 422, "segment_missing")
    assert_error(
        api.post("/v1/automations", json=BIRTHDAY | {"local_time": "10:00+02:00"}),
        422,
        "validation_error",
    )
    event = ok(api.post("/v1/automations", json=RESOLVED), 201)
    assert_error(
        api.post(f"/v1/automations/{event['automation_id']}/dry-run", json={}),
        422,
        "dry_run_unsupported",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/automations"),
        ("POST", "/v1/automations"),
        ("GET", "/v1/automations/{id}"),
        ("PATCH", "/v1/automations/{id}"),
        ("DELETE", "/v1/automations/{id}"),
        ("POST", "/v1/automations/{id}/dry-run"),
    ],
)
def test_only_admins_manage_automations(sqlite_api: Api, method: str, path: str) -> None:
    assert sqlite_api.runtime is not None
    rule = ok(sqlite_api.post("/v1/automations", json=BIRTHDAY), 201)
    url = path.format(id=rule["automation_id"])
    body = {"json": BIRTHDAY} if method in ("POST", "PATCH") else {}
    token = sqlite_api.runtime.tokens.create("agent", f"agent-{uuid4().hex[:6]}")[1]
    error = assert_error(sqlite_api.request(method, url, token=token, **body), 403, "forbidden")
    assert error["details"] == {"scope": "admin"}
    assert ok(sqlite_api.get(f"/v1/automations/{rule['automation_id']}")) == rule


def test_the_router_serves_the_operations_listed() -> None:
    routes = {
        (method, getattr(route, "path", ""))
        for route in automations.router.routes
        for method in getattr(route, "methods", ())
    }
    assert routes == {
        ("POST", "/v1/automations"),
        ("GET", "/v1/automations"),
        ("GET", "/v1/automations/{automation_id}"),
        ("PATCH", "/v1/automations/{automation_id}"),
        ("DELETE", "/v1/automations/{automation_id}"),
        ("POST", "/v1/automations/{automation_id}/dry-run"),
    }


def test_counts_follow_what_the_occurrences_did(api: Api) -> None:
    assert api.runtime is not None
    runtime = api.runtime
    customer = api.record(address="phone:+37060012345")["customer_id"]
    ok(api.request("PATCH", f"/v1/customers/{customer}", json={"birthday": "--05-10"}))
    rule = ok(api.post("/v1/automations", json=BIRTHDAY | {"template": "nowhere"}), 201)
    api.wait_caught_up()
    record = runtime.commands.automations.get(UUID(rule["automation_id"]))
    planner = DatePlanner(runtime.commands, runtime.views.engine, None)
    now = datetime(2030, 5, 9, 12, 0, tzinfo=UTC)
    assert planner.plan_rules([replace(record, updated_at=now - timedelta(days=9))], now) == 1
    api.wait_caught_up()
    counts = ok(api.get(f"/v1/automations/{rule['automation_id']}"))["counts"]
    assert (counts["scheduled"], counts["pending"]) == (1, 1)
    key = f"rule:{rule['automation_id']}:{customer}:2030-05-10"
    outcome = runtime.commands.schedules.fire(
        occurrence_id(key), now=now + timedelta(days=1), policy=runtime.policy
    )
    assert outcome.code == "template_missing"
    api.wait_caught_up()
    counts = ok(api.get(f"/v1/automations/{rule['automation_id']}"))["counts"]
    assert counts == {
        "scheduled": 1,
        "pending": 0,
        "sent": 0,
        "failed": 0,
        "cancelled": 0,
        "skipped": {"template_missing": 1},
    }


def test_a_dry_run_says_who_would_get_what_and_who_not_and_why(api: Api) -> None:
    template = {
        "default_language": "en",
        "variants": [{"language": "en", "text": "Spring is here, {{ display_name }}"}],
    }
    ok(api.put("/v1/templates/spring", json=template), 201)
    for n in range(3):
        api.record(address=f"phone:+3706001000{n}", contact_name=f"Customer {n}")
    api.wait_caught_up()
    segment = _segment(api)
    service = ok(
        api.post("/v1/automations", json=_campaign(segment, purpose="service", name="Notice")),
        201,
    )
    marketing = ok(api.post("/v1/automations", json=_campaign(segment)), 201)
    run = ok(api.post(f"/v1/automations/{service['automation_id']}/dry-run", json={"limit": 2}))
    assert (run["audience"], run["evaluated"], run["complete"]) == (3, 3, True)
    assert sum(run["decisions"].values()) == 3
    assert len(run["items"]) == 2
    for item in run["items"]:
        assert item["decision"] in ("send", "held", "skip")
        assert item["channel"] or item["code"]
    refused = ok(api.post(f"/v1/automations/{marketing['automation_id']}/dry-run", json={}))
    # Nobody gave marketing consent: skipped, with the reason.
    assert refused["decisions"] == {"skip": 3}
    assert sum(refused["skipped"].values()) == 3
    assert all(i["reason"] for i in refused["items"])
    # A date rule: who would get it on a given day.
    rule = ok(api.post("/v1/automations", json=BIRTHDAY), 201)
    day = ok(
        api.post(f"/v1/automations/{rule['automation_id']}/dry-run", json={"date": "2030-05-10"})
    )
    assert (day["audience"], day["items"]) == (0, [])


# -- any text ------------------------------------------------------------------------------

_RUN = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
TEXT_FIELDS = ["name", "description", "template", "date_field", "event_type", "match"]


def _body(field: str, value: str) -> dict[str, Any]:
    if field in ("event_type", "match"):
        base = dict(RESOLVED)
        if field == "match":
            return base | {"match": {"data.status": value}}
        return base | {field: value}
    return BIRTHDAY | {field: value}


@_RUN
@given(field=st.sampled_from(TEXT_FIELDS), change=st.booleans(), value=st.text(max_size=120))
@example(field="name", change=False, value="\ud800")
@example(field="name", change=True, value=" a\x00b ")
@example(field="description", change=False, value="x" * 501)
@example(field="template", change=True, value="<b>\u202eevil\u202c</b>")
@example(field="date_field", change=False, value="attributes.renewal")
@example(field="match", change=False, value="resolved")
def test_any_text_is_refused_or_saved_and_read_back(
    sqlite_api: Api, field: str, change: bool, value: str
) -> None:
    api = sqlite_api
    name = f"rule {uuid4().hex}"
    if change:
        base = RESOLVED if field in ("event_type", "match") else BIRTHDAY
        created = ok(api.post("/v1/automations", json=base | {"name": name}), 201)
        method, url = "PATCH", f"/v1/automations/{created['automation_id']}"
        body: dict[str, Any] = (
            {"match": {"data.status": value}} if field == "match" else {field: value}
        )
    else:
        method, url = "POST", "/v1/automations"
        body = _body(field, value) | ({"name": name} if field != "name" else {})
    response = api.request(
        method, url, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 404, 409, 422), response.text
        assert response.json()["error"]["code"]
        return
    saved = response.json()
    read = ok(api.get(f"/v1/automations/{saved['automation_id']}"))
    assert read == saved
    if field == "match":
        assert read["match"] == {"data.status": value}
    elif field == "description":
        assert read[field] == (value.strip() or None)
    else:
        assert read[field] == value.strip()
    assert saved["automation_id"] in [
        a["automation_id"] for a in ok(api.get("/v1/automations"))["items"]
    ]
