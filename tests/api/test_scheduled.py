"""Scheduled messages, snoozes and follow-ups through the API, on SQLite and PostgreSQL:
schedule (absolute or local time), the same Idempotency-Key again, list and read with the
status, cancel, what is refused with which code, and any text in: refused or readable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from tests.domain.fakes import FakeChannels
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, wait_for
from tests.support.hostile import HOSTILE_TEXT

BERLIN = ZoneInfo("Europe/Berlin")


def _customer(api: Api, address: str = "phone:+4915112345678") -> dict[str, Any]:
    return api.record(address=address)


def _schedule(api: Api, customer_id: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    payload = {
        "text": "Your appointment is tomorrow at 10:00",
        "channels": ["whatsapp", "sms"],
        "send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    } | body
    headers = body.pop("headers", None) or {}
    payload.pop("headers", None)
    response = api.post(
        f"/v1/customers/{customer_id}/scheduled-messages", json=payload, headers=headers
    )
    assert response.status_code == expect, response.text
    found: dict[str, Any] = response.json()
    return found


def test_schedule_list_read_and_cancel(api: Api) -> None:
    customer = _customer(api)
    cid = customer["customer_id"]
    key = {"Idempotency-Key": "visit-2026-12-24"}
    first = _schedule(api, cid, headers=key)
    assert first["status"] == "scheduled"
    assert first["channels"] == ["whatsapp", "sms"]
    assert first["source"] == {"kind": "api", "id": "api", "name": None}
    again = _schedule(api, cid, expect=200, headers=key, text="something else")
    assert again["id"] == first["id"]
    assert again["text"] == first["text"]

    api.wait_caught_up()
    listed = api.get(f"/v1/customers/{cid}/scheduled-messages").json()["items"]
    assert [(m["id"], m["status"]) for m in listed] == [(first["id"], "scheduled")]
    path = f"/v1/customers/{cid}/scheduled-messages/{first['id']}"
    assert api.get(path).json() == first
    timeline = [i for i in api.timeline(cid) if i["kind"] == "scheduled"]
    assert [(i["item_id"], i["delivery_status"]) for i in timeline] == [(first["id"], "scheduled")]

    assert api.request("DELETE", path).status_code == 204
    assert api.request("DELETE", path).status_code == 204  # again: nothing new
    assert api.get(path).json()["status"] == "cancelled"
    api.wait_caught_up()
    listed = api.get(f"/v1/customers/{cid}/scheduled-messages").json()["items"]
    assert [m["status"] for m in listed] == ["cancelled"]
    other = _customer(api, "phone:+4915112340000")["customer_id"]
    assert_error(
        api.get(f"/v1/customers/{other}/scheduled-messages/{first['id']}"), 404, "not_found"
    )


def test_a_local_time_is_in_the_customers_zone(api: Api) -> None:
    cid = _customer(api)["customer_id"]  # a German mobile number: Europe/Berlin
    day = (datetime.now(BERLIN) + timedelta(days=3)).date()
    found = _schedule(api, cid, send_at=None, local={"date": day.isoformat(), "time": "10:00"})
    due = datetime.fromisoformat(found["due_at"])
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(day.year, day.month, day.day, 10)
    changed = api.request("PATCH", f"/v1/customers/{cid}", json={"time_zone": "Asia/Tokyo"})
    assert changed.is_success, changed.text
    tokyo = _schedule(api, cid, send_at=None, local={"date": day.isoformat(), "time": "10:00"})
    assert datetime.fromisoformat(tokyo["due_at"]).astimezone(ZoneInfo("Asia/Tokyo")).hour == 10


def test_what_is_refused_and_why(api: Api) -> None:
    cid = _customer(api)["customer_id"]
    url = f"/v1/customers/{cid}/scheduled-messages"
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    both = {"text": "a", "template": "t", "channels": ["sms"], "send_at": soon}
    assert_error(api.post(url, json=both), 422, "invalid_command")
    neither_time = {"text": "a", "channels": ["sms"]}
    assert_error(api.post(url, json=neither_time), 422, "invalid_command")
    twice = {"text": "a", "channels": ["sms", "sms"], "send_at": soon}
    assert_error(api.post(url, json=twice), 422, "invalid_command")
    zoned = {"text": "a", "channels": ["sms"], "local": {"date": "2030-01-01", "time": "10:00Z"}}
    assert_error(api.post(url, json=zoned), 422, "validation_error")
    naive = {"text": "a", "channels": ["sms"], "send_at": "2030-01-01T10:00:00"}
    assert_error(api.post(url, json=naive), 422, "validation_error")
    purpose = {"text": "a", "channels": ["sms"], "send_at": soon, "purpose": "lottery"}
    assert_error(api.post(url, json=purpose), 422, "unknown_purpose")
    unknown = "0190a5a8-0000-7000-8000-000000000000"
    body = {"text": "a", "channels": ["sms"], "send_at": soon}
    assert_error(
        api.post(f"/v1/customers/{unknown}/scheduled-messages", json=body), 404, "not_found"
    )


def test_snooze_and_follow_up_a_conversation(api: Api) -> None:
    recorded = _customer(api)
    conversation = recorded["conversation_id"]
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    snoozed = api.post(
        f"/v1/conversations/{conversation}/snooze", json={"until": until.isoformat()}
    )
    assert snoozed.status_code == 201, snoozed.text
    assert api.conversation(conversation)["status"] == "pending"
    past = api.post(
        f"/v1/conversations/{conversation}/snooze",
        json={"until": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    )
    assert_error(past, 422, "invalid_command")

    follow = api.post(
        f"/v1/conversations/{conversation}/follow-ups",
        json={"after_hours": 72, "text": "Did that help?"},
        headers={"Idempotency-Key": "f-1"},
    )
    assert follow.status_code == 201, follow.text
    body = follow.json()
    assert (body["channels"], body["source"]["kind"]) == (["sms"], "followup")
    assert body["conversation_id"] == conversation
    again = api.post(
        f"/v1/conversations/{conversation}/follow-ups",
        json={"after_hours": 72, "text": "Did that help?"},
        headers={"Idempotency-Key": "f-1"},
    )
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    api.wait_caught_up()
    kinds = {
        i["data"]["source"]["kind"]
        for i in api.timeline(recorded["customer_id"])
        if i["kind"] == "scheduled"
    }
    assert kinds == {"followup", "reminder"}


def test_a_due_message_is_sent_and_its_status_follows(api: Api) -> None:
    """With no connector configured here the SMS channel is off: the message comes due and is
    skipped with the reason, on the API and the timeline."""
    cid = _customer(api)["customer_id"]
    found = _schedule(api, cid, send_at=datetime.now(UTC).isoformat())
    path = f"/v1/customers/{cid}/scheduled-messages/{found['id']}"
    done = wait_for(lambda: (b := api.get(path).json())["status"] != "scheduled" and b)
    assert done["status"] == "skipped"
    assert done["reason_code"] == "channel_unavailable"
    assert "no connector sends on 'sms'" in done["reason"]
    api.wait_caught_up()
    [item] = [i for i in api.timeline(cid) if i["kind"] == "scheduled"]
    assert item["delivery_status"] == "skipped"
    assert item["data"]["error_code"] == "channel_unavailable"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(text=HOSTILE_TEXT, subject=st.one_of(st.none(), HOSTILE_TEXT))
def test_any_text_is_refused_or_scheduled_and_readable(
    sqlite_api: Api, text: str, subject: str | None
) -> None:
    cid = _customer_of(sqlite_api)
    body = {
        "text": text,
        "subject": subject,
        "channels": ["email", "sms"],
        "send_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    response = sqlite_api.send_hostile_json("POST", f"/v1/customers/{cid}/scheduled-messages", body)
    if response is None:
        return
    assert response.status_code == 201
    found = response.json()
    # What JSON carries: two escaped halves of a surrogate pair arrive as one character.
    sent = json.loads(json.dumps(body))
    read = sqlite_api.get(f"/v1/customers/{cid}/scheduled-messages/{found['id']}").json()
    assert (read["text"], read["subject"]) == (sent["text"], sent["subject"] or None)
    sqlite_api.wait_caught_up()
    listed = sqlite_api.get(f"/v1/customers/{cid}/scheduled-messages").json()["items"]
    assert any(m["id"] == found["id"] and m["text"] == sent["text"] for m in listed)


_CUSTOMERS: dict[int, str] = {}


def _customer_of(api: Api) -> str:
    key = id(api)
    if key not in _CUSTOMERS:
        _CUSTOMERS[key] = api.record(address="phone:+4915112349999")["customer_id"]
    return _CUSTOMERS[key]


def test_a_message_retention_expires_a_scheduled_text_with_its_time(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, retention={"message_days": 30})
    with running_app(settings) as api:
        cid = _customer(api)["customer_id"]
        due = datetime.now(UTC) + timedelta(days=3)
        found = _schedule(api, cid, send_at=due.isoformat(), text="Jūsų kodas 4471")
        api.wait_caught_up()
        assert api.runtime is not None
        # 34 days on: the day it was due for lies past the retention.
        api.runtime.apply_retention(now=datetime.now(UTC) + timedelta(days=34))
        path = f"/v1/customers/{cid}/scheduled-messages/{found['id']}"
        assert api.get(path).json()["text"] is None
        api.wait_caught_up()
        [item] = [i for i in api.timeline(cid) if i["kind"] == "scheduled"]
        assert item["text"] is None
        assert item["data"]["body_expired"] is True
        assert item["delivery_status"] == "scheduled"  # the fact stays
        outcome = api.runtime.store.app.schedules.fire(
            UUID(found["id"]),
            now=due,
            policy=FakeChannels(),  # every channel on
        )
        assert (outcome.decision, outcome.code) == ("skip", "text_expired")
