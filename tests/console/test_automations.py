"""The console's automations pages (admins): the list with counts, adding a rule or a
campaign (refused with the reason), one's page with its counts, changing, disabling and
deleting it, and its dry run; agents are refused."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from uuid import uuid4

import pytest

from tests.support.api import ADMIN_TOKEN, Api, running_app
from tests.support.console import csrf_of, sign_in
from tests.support.store import SettingsFactory


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def _add(app: Api, **fields: str) -> str:
    csrf = csrf_of(app.client, "/automations")
    added = app.client.post(
        "/automations",
        data={
            "csrf": csrf,
            "kind": "date",
            "name": "Birthday",
            "template": "birthday",
            "channels": "sms email",
            "purpose": "service",
            "enabled": "on",
            "yearly": "on",
            "date_field": "birthday",
            "local_time": "10:00",
        }
        | fields,
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    found = re.match(r"/automations/([0-9a-f-]{36})\?done=created", added.headers["location"])
    assert found
    return found.group(1)


def test_add_list_change_disable_and_delete_a_rule(app: Api) -> None:
    automation_id = _add(app)
    listing = _text(app.client.get("/automations").text)
    assert "Birthday" in listing
    assert "active" in listing
    page = app.client.get(f"/automations/{automation_id}")
    assert page.status_code == 200
    assert "Scheduled" in page.text
    assert 'href="/automations" aria-current="page"' in page.text  # the navigation
    csrf = csrf_of(app.client, f"/automations/{automation_id}")
    saved = app.client.post(
        f"/automations/{automation_id}",
        data={
            "csrf": csrf,
            "name": "Birthdays",
            "template": "birthday",
            "channels": "email",
            "purpose": "service",
            "enabled": "on",
            "date_field": "birthday",
            "offset_days": "-1",
            "local_time": "09:30",
        },
    )
    assert saved.status_code == 200
    rule = app.get(f"/v1/automations/{automation_id}").json()
    assert (rule["name"], rule["channels"], rule["offset_days"], rule["local_time"]) == (
        "Birthdays",
        ["email"],
        -1,
        "09:30",
    )
    app.client.post(f"/automations/{automation_id}", data={"csrf": csrf, "action": "disable"})
    assert app.get(f"/v1/automations/{automation_id}").json()["state"] == "disabled"
    refused = app.client.post(
        f"/automations/{automation_id}",
        data={"csrf": csrf, "name": "x", "template": "t", "channels": "fax"},
    )
    assert "fax" in _text(refused.text)
    gone = app.client.post(f"/automations/{automation_id}", data={"csrf": csrf, "action": "delete"})
    assert "Deleted" in gone.text
    assert app.client.get(f"/automations/{automation_id}").status_code == 404
    assert app.client.get(f"/automations/{uuid4()}").status_code == 404


def test_a_refused_form_says_why_and_keeps_what_was_typed(app: Api) -> None:
    csrf = csrf_of(app.client, "/automations")
    refused = app.client.post(
        "/automations",
        data={
            "csrf": csrf,
            "kind": "event",
            "name": "Thanks",
            "template": "thanks",
            "channels": "sms",
            "event_type": "interaction.sent.v1",
        },
    )
    assert refused.status_code == 422
    assert "event_type" in _text(refused.text)
    assert 'value="Thanks"' in refused.text


def test_a_campaign_and_its_dry_run(app: Api) -> None:
    for n in range(2):
        app.record(address=f"phone:+3706002000{n}")
    app.wait_caught_up()
    segment = app.post("/v1/segments", json={"name": "All", "filter": {"all": []}}).json()
    automation_id = _add(
        app,
        kind="campaign",
        name="Spring",
        template="spring",
        date_field="",
        segment_id=segment["segment_id"],
        at="2030-04-01T09:00+03:00",
        throttle="10",
    )
    csrf = csrf_of(app.client, f"/automations/{automation_id}")
    run = app.client.post(f"/automations/{automation_id}/dry-run", data={"csrf": csrf})
    assert run.status_code == 200, run.text
    text = _text(run.text)
    assert "2 customers; 2 decided" in text
    assert "template_missing" in text  # no template called spring yet


def test_only_admins_see_automations(app: Api) -> None:
    assert app.runtime is not None
    token = app.runtime.tokens.create("agent", f"agent-{uuid4().hex[:6]}")[1]
    app.client.cookies.clear()
    assert sign_in(app.client, token).status_code == 303
    assert app.client.get("/automations").status_code == 403
    assert 'href="/automations"' not in app.client.get("/").text
