"""Business calendars and SLA policies through the API (``/v1/calendars``,
``/v1/sla-policies``) on SQLite and PostgreSQL: saved (201, then 200), read, listed and
deleted (204, then 404), a calendar in use kept (409), refusals naming their field, admins
only; a policy selecting customers by saved segment (a missing or deleted one refused with
``segment_missing``; a conversation of a customer in it under it, another's under the
default); any text in any field refused with a code or saved and read back; and the SLA breach
end to end: a customer left waiting past the target gets ``conversation.sla_breached.v1``
in the event feed once, with the due time as it happened, and one answered in time none."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, ago, assert_error, interaction

OFFICE = {
    "time_zone": "Europe/Vilnius",
    "hours": {
        "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
        "friday": [{"start": "09:00", "end": "15:00"}],
    },
    "holidays": {"country": "LT"},
    "closed_dates": ["2024-12-31", "2024-12-27"],
}
STANDARD = {"first_response_minutes": 60, "resolution_minutes": 480, "channels": ["sms"]}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_calendars_are_saved_read_listed_and_deleted(api: Api) -> None:
    saved = ok(api.put("/v1/calendars/office", json=OFFICE), 201)
    assert (saved["name"], saved["actor"]) == ("office", "admin (HUB_ADMIN_TOKEN)")
    stored = saved["definition"]
    assert stored["time_zone"] == "Europe/Vilnius"
    assert stored["hours"]["monday"] == OFFICE["hours"]["monday"]
    assert stored["hours"]["sunday"] == []
    assert stored["holidays"] == {"country": "LT", "subdivision": None}
    assert stored["closed_dates"] == ["2024-12-27", "2024-12-31"]  # sorted

    assert ok(api.put("/v1/calendars/office", json=OFFICE)) == saved  # nothing changed
    changed = ok(api.put("/v1/calendars/office", json=OFFICE | {"closed_dates": []}))
    assert changed["definition"]["closed_dates"] == []
    assert ok(api.get("/v1/calendars/office")) == changed
    ok(api.put("/v1/calendars/Annex", json=OFFICE), 201)
    assert [c["name"] for c in ok(api.get("/v1/calendars"))["items"]] == ["Annex", "office"]

    ok(api.request("DELETE", "/v1/calendars/office"), 204)
    assert_error(api.get("/v1/calendars/office"), 404, "not_found")
    assert_error(api.request("DELETE", "/v1/calendars/office"), 404, "not_found")
    assert [c["name"] for c in ok(api.get("/v1/calendars"))["items"]] == ["Annex"]


def test_policies_are_saved_read_listed_and_deleted(api: Api) -> None:
    ok(api.put("/v1/calendars/office", json=OFFICE), 201)
    body = STANDARD | {"calendar": "office", "tags": ["vip"], "description": "VIP SMS"}
    saved = ok(api.put("/v1/sla-policies/vip", json=body), 201)
    assert saved["definition"] == {
        "calendar": "office",
        "first_response_minutes": 60,
        "next_response_minutes": None,
        "resolution_minutes": 480,
        "channels": ["sms"],
        "tags": ["vip"],
        "segments": [],
        "priority": 100,
        "description": "VIP SMS",
    }
    assert ok(api.put("/v1/sla-policies/vip", json=body)) == saved
    assert ok(api.get("/v1/sla-policies/vip")) == saved
    assert ok(api.get("/v1/sla-policies"))["items"] == [saved]

    refused = assert_error(api.request("DELETE", "/v1/calendars/office"), 409, "calendar_in_use")
    assert refused["details"]["policies"] == ["vip"]
    ok(api.get("/v1/calendars/office"))

    ok(api.request("DELETE", "/v1/sla-policies/vip"), 204)
    assert_error(api.get("/v1/sla-policies/vip"), 404, "not_found")
    assert_error(api.request("DELETE", "/v1/sla-policies/vip"), 404, "not_found")
    ok(api.request("DELETE", "/v1/calendars/office"), 204)


def test_refusals_name_their_field(api: Api) -> None:
    def refused(url: str, body: dict[str, Any]) -> str:
        error = assert_error(api.put(url, json=body), 422, "invalid_command")
        return str(error["details"]["field"])

    overlapping = {
        "monday": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
    }
    assert refused("/v1/calendars/office", OFFICE | {"hours": overlapping}) == "hours.monday[1]"
    backwards = {"friday": [{"start": "17:00", "end": "09:00"}]}
    assert refused("/v1/calendars/office", OFFICE | {"hours": backwards}) == "hours.friday[0]"
    assert refused("/v1/calendars/office", OFFICE | {"hours": {}}) == "hours"
    assert refused("/v1/calendars/office", OFFICE | {"time_zone": "Mars/Base"}) == "time_zone"
    no_country = OFFICE | {"holidays": {"country": "XX"}}
    assert refused("/v1/calendars/office", no_country) == "holidays.country"
    no_region = OFFICE | {"holidays": {"country": "LT", "subdivision": "ZZ"}}
    assert refused("/v1/calendars/office", no_region) == "holidays.subdivision"
    assert refused("/v1/calendars/bad%20name", OFFICE) == "name"

    assert refused("/v1/sla-policies/vip", STANDARD | {"calendar": "nowhere"}) == "calendar"
    assert refused("/v1/sla-policies/vip", {"channels": ["sms"]}) == "first_response_minutes"
    assert refused("/v1/sla-policies/-vip", STANDARD) == "name"
    # what the schema refuses is a validation_error
    assert_error(
        api.put("/v1/sla-policies/vip", json=STANDARD | {"first_response_minutes": 0}),
        422,
        "validation_error",
    )
    assert ok(api.get("/v1/calendars"))["items"] == []
    assert ok(api.get("/v1/sla-policies"))["items"] == []


def test_only_admins_change_them(api: Api) -> None:
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "desk 1")
    _, service = api.runtime.tokens.create("service", "crm")
    ok(api.put("/v1/calendars/office", json=OFFICE), 201)
    ok(api.put("/v1/sla-policies/std", json=STANDARD), 201)
    for token in (agent, service):
        assert_error(api.put("/v1/calendars/x", json=OFFICE, token=token), 403, "forbidden")
        assert_error(api.put("/v1/sla-policies/x", json=STANDARD, token=token), 403, "forbidden")
        for url in ("/v1/calendars/office", "/v1/sla-policies/std"):
            assert_error(api.request("DELETE", url, token=token), 403, "forbidden")
            ok(api.get(url, token=token))
    assert_error(api.get("/v1/calendars", token=None), 401, "unauthorized")
    assert_error(api.get("/v1/sla-policies", token=None), 401, "unauthorized")
    assert [c["name"] for c in ok(api.get("/v1/calendars"))["items"]] == ["office"]


# -- segments ---------------------------------------------------------------------------------


def _sla_policy(api: Api, conversation_id: str) -> str | None:
    deadline = time.monotonic() + 10
    while True:
        response = api.get(f"/v1/conversations/{conversation_id}")
        sla = response.json()["sla"] if response.status_code == 200 else None
        if sla is not None or time.monotonic() > deadline:
            assert sla is not None, response.text
            policy: str | None = sla["policy"]
            return policy
        time.sleep(0.05)


def test_a_policy_selects_customers_by_segment(api: Api) -> None:
    by_email = {"name": "Reachable by email", "filter": {"channel": "email"}}
    segment = ok(api.post("/v1/segments", json=by_email), 201)["segment_id"]
    gone = ok(api.post("/v1/segments", json={"name": "Gone", "filter": {"tag": "x"}}), 201)
    ok(api.request("DELETE", f"/v1/segments/{gone['segment_id']}"), 204)

    for missing in (str(uuid4()), gone["segment_id"]):
        body = STANDARD | {"channels": [], "segments": [segment, missing]}
        error = assert_error(api.put("/v1/sla-policies/mail", json=body), 422, "segment_missing")
        assert error["details"] == {"field": "segments", "segment_id": missing}
    too_many = STANDARD | {"segments": [str(uuid4()) for _ in range(21)]}
    assert_error(api.put("/v1/sla-policies/mail", json=too_many), 422, "validation_error")
    assert ok(api.get("/v1/sla-policies"))["items"] == []

    body = {"first_response_minutes": 15, "segments": [segment, segment], "priority": 1}
    saved = ok(api.put("/v1/sla-policies/mail", json=body), 201)
    assert saved["definition"]["segments"] == [segment]
    ok(api.put("/v1/sla-policies/standard", json={"first_response_minutes": 60}), 201)

    # the policy names no channel: its segment alone selects the customer with an email address
    mail = api.record(channel="email", address="email:ana@example.com", text="hi")
    sms = api.record(address="phone:+15550109001")
    assert _sla_policy(api, mail["conversation_id"]) == "mail"
    assert _sla_policy(api, sms["conversation_id"]) == "standard"


# -- any text --------------------------------------------------------------------------------

FIELDS = [
    "name",
    "calendar.time_zone",
    "calendar.start",
    "calendar.closed_date",
    "calendar.country",
    "calendar.subdivision",
    "policy.calendar",
    "policy.channel",
    "policy.tag",
    "policy.description",
]


def _put(field: str, value: str) -> tuple[str, dict[str, Any]]:
    calendar = {"time_zone": "UTC", "hours": {"monday": [{"start": "09:00", "end": "17:00"}]}}
    policy: dict[str, Any] = {"first_response_minutes": 30}
    name = f"n{uuid4().hex[:12]}"
    match field:
        case "name":
            return f"/v1/sla-policies/{quote(value, safe='')}", policy
        case "calendar.time_zone":
            calendar["time_zone"] = value
        case "calendar.start":
            calendar["hours"]["monday"][0]["start"] = value
        case "calendar.closed_date":
            calendar["closed_dates"] = [value]
        case "calendar.country":
            calendar["holidays"] = {"country": value}
        case "calendar.subdivision":
            calendar["holidays"] = {"country": "DE", "subdivision": value}
        case "policy.calendar":
            return f"/v1/sla-policies/{name}", policy | {"calendar": value}
        case "policy.channel":
            return f"/v1/sla-policies/{name}", policy | {"channels": [value]}
        case "policy.tag":
            return f"/v1/sla-policies/{name}", policy | {"tags": [value]}
        case "policy.description":
            return f"/v1/sla-policies/{name}", policy | {"description": value}
    return f"/v1/calendars/{name}", calendar


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(field=st.sampled_from(FIELDS), value=st.text(max_size=80))
@example(field="name", value="..")
@example(field="name", value="a?b")
@example(field="calendar.time_zone", value="../../etc/passwd")
@example(field="calendar.time_zone", value="America")
@example(field="calendar.time_zone", value="Europe/Vilnius")
@example(field="calendar.start", value="24:00")
@example(field="calendar.closed_date", value="2024-02-30")
@example(field="calendar.country", value="lt")
@example(field="calendar.subdivision", value="by")
@example(field="policy.calendar", value="default")
@example(field="policy.tag", value=" vip ")
@example(field="policy.description", value="\ud800")
@example(field="policy.description", value="<b>\u202eevil\u202c</b>")
def test_any_text_is_refused_or_saved_and_read_back(
    sqlite_api: Api, field: str, value: str
) -> None:
    api = sqlite_api
    url, body = _put(field, value)
    response = api.request(
        "PUT", url, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 404, 405, 422), response.text
        assert response.json()["error"]["code"], response.text
        return
    saved = response.json()
    assert response.status_code in (200, 201)
    read = ok(api.get(url))
    assert read == saved
    kind = url.split("/")[2]
    assert saved["name"] in [x["name"] for x in ok(api.get(f"/v1/{kind}"))["items"]]
    stored = saved["definition"]
    if field == "policy.tag":
        assert stored["tags"] == ([value.strip()] if value.strip() else [])  # blank: dropped
    elif field == "policy.description":
        assert stored["description"] == value.strip()
    elif field == "policy.calendar":
        assert stored["calendar"] == value
    elif field == "calendar.time_zone":
        assert stored["time_zone"] == value
    elif field == "calendar.start":
        assert stored["hours"]["monday"][0]["start"] == value


# -- breaches end to end ---------------------------------------------------------------------


def _breaches(api: Api) -> list[dict[str, Any]]:
    return [e for e in api.all_events() if e["type"] == "conversation.sla_breached.v1"]


def test_a_customer_left_waiting_gets_one_breach_and_one_answered_in_time_none(
    api: Api,
) -> None:
    ok(api.put("/v1/sla-policies/standard", json={"first_response_minutes": 60}), 201)
    # Recorded together: the watcher never sees this customer waiting with the reply unknown.
    answered = {"address": "phone:+15550100002"}
    items = [
        interaction(**answered, occurred_at=ago(120)),
        interaction(**answered, occurred_at=ago(100), direction="outbound"),
    ]
    [first, _] = ok(api.post("/v1/interactions/batch", json={"interactions": items}))["results"]
    asked_at = datetime.now(UTC) - timedelta(hours=2)
    waiting = api.record(occurred_at=asked_at.isoformat())

    deadline = time.monotonic() + 10
    while not (found := _breaches(api)):
        assert time.monotonic() < deadline, "no conversation.sla_breached.v1 within 10 s"
        time.sleep(0.05)
    time.sleep(1.2)  # two more rounds of the watcher: nothing more is recorded
    api.wait_caught_up()
    assert _breaches(api) == found
    [breach] = found
    data = breach["data"]
    assert data["conversation_id"] == waiting["conversation_id"]
    assert breach["customer_id"] == waiting["customer_id"]
    assert (data["target"], data["policy"], data["channel"]) == (
        "first_response",
        "standard",
        "sms",
    )
    clock = datetime.fromisoformat(data["clock_started_at"])
    assert clock == asked_at
    assert datetime.fromisoformat(data["due_at"]) == asked_at + timedelta(hours=1)
    assert datetime.fromisoformat(breach["occurred_at"]) == asked_at + timedelta(hours=1)
    assert first["conversation_id"] not in {b["data"]["conversation_id"] for b in found}


def test_no_policy_no_breach(api: Api) -> None:
    api.post("/v1/interactions", json=interaction(occurred_at=ago(600)))
    time.sleep(1.2)  # two rounds of the watcher
    api.wait_caught_up()
    assert _breaches(api) == []
