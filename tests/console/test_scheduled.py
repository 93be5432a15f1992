"""Scheduled messages and reminders on the console's customer page, without a browser: the
"Schedule a message" form (CSRF-checked, a double submit scheduling once, the customer's time
zone or the agent's), its refusals shown as the other forms show them, the Cancel button,
a conversation's snooze and follow-up, and how the timeline shows each status."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from hub.console.shared import templates
from hub.projections.timeline import TimelineItem
from tests.support.api import Api, assert_error, wait_for
from tests.support.console import csrf_of, signed_in_agent

BERLIN = ZoneInfo("Europe/Berlin")
PHONE = "phone:+4915112345670"  # a German mobile number: the customer is in Europe/Berlin


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


def _tomorrow_at(hour: int, zone: ZoneInfo = BERLIN) -> tuple[str, datetime]:
    """A datetime-local value for tomorrow at ``hour`` in ``zone``, and that moment."""
    day = (datetime.now(zone) + timedelta(days=1)).date()
    local = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    return f"{day.isoformat()}T{hour:02d}:00", local


def _form(csrf: str, **fields: Any) -> dict[str, Any]:
    at, _ = _tomorrow_at(10)
    return {
        "csrf": csrf,
        "text": "Your appointment is tomorrow at 10:00",
        "channels": ["sms", "", ""],
        "purpose": "service",
        "at": at,
        "zone": "customer",
        "key": "k1",
    } | fields


def _scheduled(api: Api, customer_id: str) -> list[dict[str, Any]]:
    api.wait_caught_up()
    found: list[dict[str, Any]] = api.get(f"/v1/customers/{customer_id}/scheduled-messages").json()[
        "items"
    ]
    return found


def test_schedule_from_the_page_then_cancel(sqlite_api: Api) -> None:
    api = sqlite_api
    cid = api.record(address=PHONE)["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    page = client.get(path)
    assert 'id="schedule-title"' in page.text
    assert "the customer's time zone (Europe/Berlin)" in _text(page.text)
    csrf = csrf_of(client, path)

    data = _form(csrf, channels=["sms", "email", "sms"], subject="Tomorrow")
    sent = client.post(f"{path}/scheduled-messages", data=data, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"{path}#schedule-title"
    again = client.post(f"{path}/scheduled-messages", data=data, follow_redirects=False)
    assert again.status_code == 303  # the same form twice: one message
    [found] = _scheduled(api, cid)
    assert found["channels"] == ["sms", "email"]  # in order, each once
    assert (found["text"], found["subject"], found["purpose"]) == (
        data["text"],
        "Tomorrow",
        "service",
    )
    _, ten = _tomorrow_at(10)
    assert datetime.fromisoformat(found["due_at"]) == ten.astimezone(UTC)

    page = client.get(path)
    item = _item_markup(page.text, found["id"])
    shown = _text(item)
    assert f"Scheduled for {ten.astimezone(UTC):%Y-%m-%d %H:%M}" in shown
    assert "on SMS, then Email (service) · by ann" in shown
    assert data["text"] in shown
    assert "Tomorrow" in shown
    assert "scheduled" in shown
    cancel_path = f"{path}/scheduled-messages/{found['id']}/cancel"
    assert f'action="{cancel_path}"' in item

    stale = client.post(cancel_path, data={"csrf": "0" * 32}, follow_redirects=False)
    assert_error(stale, 403, "stale_form")
    cancelled = client.post(cancel_path, data={"csrf": csrf}, follow_redirects=False)
    assert cancelled.status_code == 303, cancelled.text
    assert cancelled.headers["location"] == f"{path}#item-{found['id']}"
    assert [m["status"] for m in _scheduled(api, cid)] == ["cancelled"]
    item = _item_markup(client.get(path).text, found["id"])
    assert "cancelled" in _text(item)
    assert "cancel-scheduled" not in item  # no button once cancelled


def test_a_time_in_the_agents_zone_and_a_template(sqlite_api: Api) -> None:
    api = sqlite_api
    cid = api.record(address=PHONE)["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    tokyo = ZoneInfo("Asia/Tokyo")
    at, nine = _tomorrow_at(9, tokyo)
    data = _form(
        csrf_of(client, path),
        text="",
        template="appointment-reminder",
        zone="mine",
        tz="Asia/Tokyo",
        purpose="marketing",
        channels=["whatsapp", "sms", ""],
    )
    data["at"] = at
    sent = client.post(f"{path}/scheduled-messages", data=data, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    [found] = _scheduled(api, cid)
    assert datetime.fromisoformat(found["due_at"]) == nine.astimezone(UTC)
    assert (found["template"], found["text"], found["purpose"]) == (
        "appointment-reminder",
        None,
        "marketing",
    )
    shown = _text(_item_markup(client.get(path).text, found["id"]))
    assert "on WhatsApp, then SMS (marketing)" in shown
    assert "template appointment-reminder" in shown


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"template": "reminder"}, "write a text or name a template (one of them)"),
        ({"text": "", "template": ""}, "write a text or name a template (one of them)"),
        ({"text": "", "template": "no spaces allowed"}, "is not a template's name"),
        ({"channels": ["", "", ""]}, "choose at least one channel"),
        ({"channels": ["fax"]}, "'fax' is not a channel"),
        ({"purpose": "lottery"}, "unknown purpose 'lottery': one of service, marketing"),
        ({"at": "tomorrow"}, "'tomorrow' is not a date and time"),
        ({"at": "2020-01-01T10:00"}, "has passed: choose a later time"),
        ({"zone": "mine", "tz": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone"),
        ({"text": "bad \x00 byte"}, "the text holds characters that are not text"),
    ],
)
def test_refusals_come_back_to_the_page(
    sqlite_api: Api, fields: dict[str, Any], reason: str
) -> None:
    api = sqlite_api
    cid = api.record(address=PHONE)["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    data = _form(csrf_of(client, path), **fields)
    refused = client.post(f"{path}/scheduled-messages", data=data, follow_redirects=False)
    assert refused.status_code == 303
    location = refused.headers["location"]
    assert location.startswith(f"{path}?error=")
    assert location.endswith("#schedule-title")
    page = client.get(location.partition("#")[0])
    assert reason in _text(page.text)
    # console.js gets the reason as JSON, to show in the form
    fetched = client.post(
        f"{path}/scheduled-messages", data=data, headers={"X-Requested-With": "fetch"}
    )
    assert fetched.status_code == 422
    assert reason in fetched.json()["message"]
    assert _scheduled(api, cid) == []


def test_the_forms_need_the_agents_csrf_token(sqlite_api: Api) -> None:
    api = sqlite_api
    recorded = api.record(address=PHONE)
    api.wait_caught_up()
    client = signed_in_agent(api)
    cid, conversation = recorded["customer_id"], recorded["conversation_id"]
    for url, data in (
        (f"/customers/{cid}/scheduled-messages", _form("0" * 32)),
        (f"/conversations/{conversation}/snooze", {"csrf": "", "until": "2099-01-01T09:00"}),
        (f"/conversations/{conversation}/follow-up", {"csrf": "bad", "days": "3"}),
    ):
        assert_error(client.post(url, data=data, follow_redirects=False), 403, "stale_form")
    assert _scheduled(api, cid) == []
    assert api.conversation(conversation)["status"] == "open"


def test_snooze_and_follow_up_a_conversation(sqlite_api: Api) -> None:
    api = sqlite_api
    recorded = api.record(address=PHONE)
    api.wait_caught_up()
    client = signed_in_agent(api)
    cid, conversation = recorded["customer_id"], recorded["conversation_id"]
    path = f"/customers/{cid}"
    page = client.get(path)
    assert f'action="/conversations/{conversation}/snooze"' in page.text
    csrf = csrf_of(client, path)

    at, nine = _tomorrow_at(9, ZoneInfo("UTC"))
    snoozed = client.post(
        f"/conversations/{conversation}/snooze",
        data={"csrf": csrf, "until": at, "tz": "UTC"},
        follow_redirects=False,
    )
    assert snoozed.status_code == 303, snoozed.text
    assert snoozed.headers["location"] == f"{path}#c-{conversation}"
    assert api.conversation(conversation)["status"] == "pending"
    past = client.post(
        f"/conversations/{conversation}/snooze",
        data={"csrf": csrf, "until": "2020-01-01T09:00", "tz": "UTC"},
        headers={"X-Requested-With": "fetch"},
    )
    assert past.status_code == 422
    assert "has passed" in past.json()["message"]

    followed = client.post(
        f"/conversations/{conversation}/follow-up",
        data={"csrf": csrf, "days": "3", "action": "send", "text": "Did that help?", "key": "f"},
        follow_redirects=False,
    )
    assert followed.status_code == 303, followed.text
    reopen = client.post(
        f"/conversations/{conversation}/follow-up",
        data={"csrf": csrf, "days": "7", "action": "reopen", "text": "ignored", "key": "g"},
        follow_redirects=False,
    )
    assert reopen.status_code == 303, reopen.text
    for days, reason in (("0", "follow up in 1 to 366 days"), ("x", "give the number of days")):
        refused = client.post(
            f"/conversations/{conversation}/follow-up",
            data={"csrf": csrf, "days": days, "text": "hi"},
            headers={"X-Requested-With": "fetch"},
        )
        assert refused.status_code == 422
        assert refused.json()["message"] == reason

    items = {m["source"]["kind"] + ":" + m["action"]: m for m in _scheduled(api, cid)}
    assert set(items) == {"reminder:reopen", "followup:send", "followup:reopen"}
    assert datetime.fromisoformat(items["reminder:reopen"]["due_at"]) == nine
    assert items["followup:send"]["channels"] == ["sms"]  # the conversation's
    assert items["followup:reopen"]["text"] is None

    page = client.get(path).text
    short = conversation[-6:]
    reminder = _text(_item_markup(page, items["reminder:reopen"]["id"]))
    assert f"Reminder #{short} back to the queue at {nine:%Y-%m-%d %H:%M}" in reminder
    follow = _text(_item_markup(page, items["followup:send"]["id"]))
    assert "Follow-up for" in follow
    assert "on SMS (service) unless the customer writes" in follow
    assert "Did that help?" in follow
    back = _text(_item_markup(page, items["followup:reopen"]["id"]))
    assert "back to the queue at" in back
    assert "unless the customer writes" in back
    waiting = _text(page.partition('class="reminders-waiting"')[2].partition("</ul>")[0])
    assert f"Snoozed until {nine:%Y-%m-%d %H:%M} UTC" in waiting
    assert waiting.count("Follow-up") == 2


def test_a_due_message_shows_why_it_was_not_sent(sqlite_api: Api) -> None:
    """No SMS connector here: scheduled for now from the form, it comes due at once and is
    skipped with the reason, which the timeline shows."""
    api = sqlite_api
    cid = api.record(address=PHONE)["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    now = datetime.now(UTC)
    data = _form(csrf_of(client, path), zone="mine", tz="UTC", at=f"{now:%Y-%m-%dT%H:%M}")
    assert client.post(f"{path}/scheduled-messages", data=data).status_code == 200
    done = wait_for(lambda: (s := _scheduled(api, cid)) and s[0]["status"] == "skipped" and s)
    shown = _text(_item_markup(client.get(path).text, done[0]["id"]))
    assert "not sent : sms: " in shown
    assert "no connector sends on 'sms'" in shown
    assert "(channel_unavailable)" in shown


# -- how the timeline shows each status (the template alone) --------------------------------


def _item(status: str, **data: Any) -> TimelineItem:
    return TimelineItem(
        item_id=uuid4(),
        customer_id=uuid4(),
        conversation_id=None,
        kind="scheduled",
        channel=None,
        direction=None,
        occurred_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        position=7,
        text=data.pop("text", "See you tomorrow"),
        subject=None,
        delivery_status=status,
        provider_message_id=None,
        data={
            "due_at": "2026-12-24T09:00:00+00:00",
            "action": "send",
            "purpose": "marketing",
            "channels": ["whatsapp", "sms", "email"],
            "template": None,
            "source": {"kind": "api", "id": "api", "name": None},
            "actor": "ann",
        }
        | data,
    )


class _Agent:
    csrf = "c" * 32


def _render(item: TimelineItem, actions: bool = True) -> str:
    markup = templates.env.get_template("_item.html").render(
        item=item, agent=_Agent(), timeline_actions=actions
    )
    return markup


def test_each_status_on_the_timeline() -> None:
    waiting = _item("scheduled")
    markup = _render(waiting)
    shown = _text(markup)
    assert (
        "Scheduled for 2026-12-24 09:00 on WhatsApp, then SMS, then Email (marketing) · by ann"
        in shown
    )
    assert "See you tomorrow" in shown
    assert 'datetime="2026-12-24T09:00:00+00:00"' in markup
    cancel = f"/customers/{waiting.customer_id}/scheduled-messages/{waiting.item_id}/cancel"
    assert f'action="{cancel}"' in markup
    assert 'name="csrf" value="' + "c" * 32 in markup
    # not on pages without actions (the timeline "as of" a moment, the live feed)
    assert "cancel-scheduled" not in _render(waiting, actions=False)

    assert "cancel-scheduled" not in _render(_item("cancelled"))
    assert "cancelled" in _text(_render(_item("cancelled")))

    skipped = _text(
        _render(
            _item(
                "skipped",
                error_code="no_consent",
                error_message="whatsapp: no marketing consent; sms: no marketing consent",
            )
        )
    )
    assert (
        "not sent : whatsapp: no marketing consent; sms: no marketing consent (no_consent)"
        in skipped
    )

    message = UUID("0190a5a8-0000-7000-8000-00000000abcd")
    queued = _item(
        "queued",
        template="birthday",
        text=None,
        message_id=str(message),
        sent_on="sms",
        template_version=3,
        source={"kind": "rule", "id": str(uuid4()), "name": "Birthday greetings"},
        actor=None,
    )
    markup = _render(queued)
    shown = _text(markup)
    assert "· by rule Birthday greetings" in shown
    assert "template birthday (version 3)" in shown
    assert "sent as message #00abcd on SMS" in shown
    assert f'href="#item-{message}"' in markup


def test_a_reminder_and_hostile_text_on_the_timeline() -> None:
    reminder = replace(
        _item("scheduled", action="reopen", channels=[], purpose="service", text=None),
        conversation_id=uuid4(),
    )
    shown = _text(_render(reminder))
    short = str(reminder.conversation_id)[-6:]
    assert f"Reminder #{short} back to the queue at 2026-12-24 09:00 · by ann" in shown
    assert "(service)" not in shown
    assert "done back in the queue" in _text(_render(replace(reminder, delivery_status="queued")))
    for text in ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'):
        markup = _render(_item("scheduled", text=text, actor="<b>eve</b>"))
        assert "<script>" not in markup
        assert "<img" not in markup
        assert "<b>eve" not in markup
        assert text in _text(markup)


def _item_markup(page: str, item_id: str) -> str:
    """The markup of one timeline item of a page."""
    start = page.index(f'<li id="item-{item_id}"')
    return page[start : page.index("</li>", start) + len("</li>")]
