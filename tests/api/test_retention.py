"""Retention by age (HUB_RETENTION__MESSAGE_DAYS, docs/retention.md) end to end on both
backends: messages of 40 days ago and of today through the API, ``hub retention run``, then
every API surface (timeline, message, conversation, event feed, search, export) shows no old
body while today's is intact and the old message still exists with its time, channel,
direction and delivery; a projections rebuild keeps it so, and the day's secret is gone (a
reader with no retention configured cannot read it either). A running hub applies the
retention at start; a message dated before the retention keeps no body at all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.cli import app as cli_app
from hub.config import Settings
from hub.events import ConversationOpened, InteractionReceived
from hub.store.keys import destroyed_periods, period_secrets
from tests.support.api import ADMIN_TOKEN, Api, running_app, wait_for
from tests.support.store import all_view_rows, opened

EMAIL = "email:ona.retention@example.com"
PHONE = "phone:+37061234567"
NAME = "Ona Retentionaite"
OLD_TEXT = "kvitas 7731 dingo sandelyje"
OLD_SUBJECT = "Saskaita OLD-SUBJ-5521"
OLD_FILE = "passport-scan-OLD-8812.pdf"
OLD_URL = "https://files.example.com/old-attachment-9931"
OLD_META = "OLD-META-4411"
OLD_SMS = "SMS senas 6614 tekstas"
NEW_TEXT = "naujas laiskas 3390 apie siunta"
NEW_SUBJECT = "Saskaita NEW-SUBJ-7788"
NEW_FILE = "invoice-NEW-2231.pdf"
OLD_STRINGS = (OLD_TEXT, OLD_SUBJECT, OLD_FILE, OLD_URL, OLD_META, OLD_SMS)

Factory = Callable[..., Settings]


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _settings(make_settings: Factory, backend: str, days: int | None) -> Settings:
    return make_settings(backend, admin_token=ADMIN_TOKEN, retention={"message_days": days})


def _record_history(api: Api) -> dict[str, dict[str, Any]]:
    """An email and an SMS of 40 days ago, an email of today, one customer."""
    old = api.record(
        channel="email",
        address=EMAIL,
        contact_name=NAME,
        occurred_at=_ago(40),
        text=OLD_TEXT,
        subject=OLD_SUBJECT,
        attachments=[
            {"name": OLD_FILE, "content_type": "application/pdf", "size": 1234, "url": OLD_URL}
        ],
        metadata={"ticket": OLD_META},
    )
    sms = api.record(channel="sms", address=PHONE, occurred_at=_ago(40), text=OLD_SMS)
    new = api.record(
        channel="email",
        address=EMAIL,
        occurred_at=_ago(1 / 1440),
        text=NEW_TEXT,
        subject=NEW_SUBJECT,
        attachments=[{"name": NEW_FILE, "content_type": "application/pdf", "size": 99}],
        metadata={"ticket": "NEW-META"},
    )
    return {"old": old, "sms": sms, "new": new}


def _cli(settings: Settings, *args: str, days: int | None = 30) -> Any:
    """``hub ARGS`` on the settings' store, as an operator would run it beside the hub."""
    env = {"HUB_DATA_DIR": str(settings.data_dir)}
    if days is not None:
        env["HUB_RETENTION__MESSAGE_DAYS"] = str(days)
    if settings.store_url:
        assert settings.master_key
        assert settings.address_pepper
        env |= {
            "HUB_STORE_URL": settings.store_url,
            "HUB_MASTER_KEY": settings.master_key.get_secret_value(),
            "HUB_ADDRESS_PEPPER": settings.address_pepper.get_secret_value(),
        }
    return CliRunner().invoke(cli_app, list(args), env=env)


def _message(api: Api, message_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_expired(item: dict[str, Any], channel: str) -> None:
    """A message whose body expired: the fact stays, the body is gone."""
    assert item["kind"] == "message"
    assert (item["channel"], item["direction"]) == (channel, "inbound")
    assert item["delivery_status"] == "received"
    assert datetime.fromisoformat(item["occurred_at"]) < datetime.now(UTC) - timedelta(days=39)
    assert item["text"] is None
    assert item["subject"] is None
    assert item["data"]["attachments"] == []
    assert item["data"]["metadata"] == {}
    assert item["data"]["body_expired"] is True


def _assert_intact(item: dict[str, Any]) -> None:
    assert item["text"] == NEW_TEXT
    assert item["subject"] == NEW_SUBJECT
    assert [a["name"] for a in item["data"]["attachments"]] == [NEW_FILE]
    assert item["data"]["metadata"] == {"ticket": "NEW-META"}
    assert "body_expired" not in item["data"]


def _check_every_surface(api: Api, ids: dict[str, dict[str, Any]]) -> None:
    old, sms, new = ids["old"], ids["sms"], ids["new"]
    customer = old["customer_id"]
    shown: list[str] = []  # every response body, searched for the old strings at the end

    timeline = {m["item_id"]: m for m in api.messages(customer)}
    _assert_expired(timeline[old["message_id"]], "email")
    _assert_intact(timeline[new["message_id"]])
    sms_timeline = {m["item_id"]: m for m in api.messages(sms["customer_id"])}
    _assert_expired(sms_timeline[sms["message_id"]], "sms")
    shown += [str(timeline), str(sms_timeline)]

    _assert_expired(_message(api, old["message_id"]), "email")
    _assert_intact(_message(api, new["message_id"]))

    old_conversation = api.conversation(old["conversation_id"])
    assert old_conversation["subject"] is None
    assert old_conversation["channel"] == "email"
    assert api.conversation(new["conversation_id"])["subject"] == NEW_SUBJECT
    shown.append(str(old_conversation))

    events = api.all_events()
    shown.append(str(events))
    by_message = {
        e["data"]["message_id"]: e["data"]
        for e in events
        if e["type"] == InteractionReceived.model_fields["type"].default
    }
    for key in ("old", "sms"):
        data = by_message[ids[key]["message_id"]]
        assert (data["text"], data["subject"], data["attachments"], data["metadata"]) == (
            None,
            None,
            [],
            {},
        )
        assert data["body_expired"] is True
        assert data["channel"] in {"email", "sms"}
    assert by_message[new["message_id"]]["text"] == NEW_TEXT
    assert by_message[new["message_id"]]["body_expired"] is False
    opened_events = {
        e["data"]["conversation_id"]: e["data"]
        for e in events
        if e["type"] == ConversationOpened.model_fields["type"].default
    }
    assert opened_events[old["conversation_id"]]["subject"] is None
    assert opened_events[old["conversation_id"]]["body_expired"] is True
    assert opened_events[new["conversation_id"]]["subject"] == NEW_SUBJECT

    for q in (NAME, "retention@example", "kvitas 7731"):
        found = api.get("/v1/customers", params={"q": q})
        assert found.status_code == 200, found.text
        shown.append(found.text)
    assert api.get("/v1/customers", params={"q": "kvitas 7731"}).json()["items"] == []

    export = api.get(f"/v1/customers/{customer}/export")
    assert export.status_code == 200, export.text
    assert NEW_TEXT in export.text
    shown.append(export.text)

    everything = "\n".join(shown)
    assert [s for s in OLD_STRINGS if s in everything] == []


def test_a_retention_run_expires_old_bodies_everywhere_and_keeps_the_facts(
    make_settings: Factory, backend: str
) -> None:
    off = _settings(make_settings, backend, None)
    with running_app(off) as api:
        ids = _record_history(api)
        before = {m["item_id"]: m for m in api.messages(ids["old"]["customer_id"])}
        assert before[ids["old"]["message_id"]]["text"] == OLD_TEXT  # kept while it is off
        assert _message(api, ids["sms"]["message_id"])["text"] == OLD_SMS

    result = _cli(off, "retention", "run")

    assert result.exit_code == 0, result.output
    assert "day secret(s) destroyed" in result.output
    assert "views blanked: 2 timeline row(s), 1 conversations row(s)" in result.output
    old_day = datetime.fromisoformat(_ago(40)).strftime("%Y%m%d")
    with opened(off) as store:
        assert old_day in destroyed_periods(store.state_engine)
        view_rows = str(all_view_rows(store.views_engine))
        assert [s for s in OLD_STRINGS if s in view_rows] == []
        assert NEW_TEXT in view_rows
        # Cryptographically gone, not just hidden: a reader with no retention set cannot
        # read it either, while today's body reads.
        texts = {
            e.data.message_id: e.data.text
            for e in store.read_envelopes(0, 10_000)[0]
            if isinstance(e, InteractionReceived)
        }
    assert texts[UUID(ids["old"]["message_id"])] is None
    assert texts[UUID(ids["sms"]["message_id"])] is None
    assert texts[UUID(ids["new"]["message_id"])] == NEW_TEXT
    again = _cli(off, "retention", "run")
    assert again.exit_code == 0, again.output
    assert "no day secret to destroy" in again.output
    assert "nothing left to blank" in again.output

    on = _settings(make_settings, backend, 30)
    with running_app(on) as api:
        _check_every_surface(api, ids)

    rebuilt = _cli(on, "projections", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    with running_app(on) as api:
        _check_every_surface(api, ids)


def test_a_running_hub_applies_the_retention_when_it_starts(
    make_settings: Factory, backend: str
) -> None:
    with running_app(_settings(make_settings, backend, None)) as api:
        ids = _record_history(api)
        api.wait_caught_up()

    with running_app(_settings(make_settings, backend, 30)) as api:

        def blanked() -> bool:
            found = _message(api, ids["old"]["message_id"])
            return found["text"] is None and found["data"].get("body_expired") is True

        wait_for(blanked)
        _check_every_surface(api, ids)
        assert api.runtime is not None
        store = api.runtime.store
        assert datetime.fromisoformat(_ago(40)).strftime("%Y%m%d") in destroyed_periods(
            store.state_engine
        )


def test_a_message_dated_before_the_retention_keeps_no_body(
    make_settings: Factory, backend: str
) -> None:
    settings = _settings(make_settings, backend, 30)
    with running_app(settings) as api:
        old = api.record(
            channel="email",
            address=EMAIL,
            occurred_at=_ago(40),
            text=OLD_TEXT,
            subject=OLD_SUBJECT,
            attachments=[{"name": OLD_FILE, "content_type": "application/pdf", "size": 1}],
        )
        fresh = api.record(channel="sms", address=PHONE, occurred_at=_ago(29), text=NEW_TEXT)
        api.wait_caught_up()
        message = _message(api, old["message_id"])
        _assert_expired(message, "email")
        assert _message(api, fresh["message_id"])["text"] == NEW_TEXT
        assert api.conversation(old["conversation_id"])["subject"] is None
    with opened(_settings(make_settings, backend, None)) as store:
        # Nothing of the body was stored, and no secret was made for its day.
        texts = {
            e.data.message_id: (
                e.data.text,
                e.data.subject,
                [(a.name, a.url) for a in e.data.attachments],
            )
            for e in store.read_envelopes(0, 10_000)[0]
            if isinstance(e, InteractionReceived)
        }
        with store.state_engine.connect() as conn:
            days = set(conn.scalars(select(period_secrets.c.period)))
    # (a reader that knows no retention shows a nameless attachment as "[erased]")
    assert texts[UUID(old["message_id"])] == (None, None, [("[erased]", None)])
    assert datetime.fromisoformat(_ago(40)).strftime("%Y%m%d") not in days


def test_the_cli_says_when_no_retention_is_set(make_settings: Factory, backend: str) -> None:
    settings = _settings(make_settings, backend, None)
    with opened(settings):
        pass

    result = _cli(settings, "retention", "run", days=None)

    assert result.exit_code == 1
    assert "message retention is off: set HUB_RETENTION__MESSAGE_DAYS" in result.output
    status = _cli(settings, "retention", "status")
    assert status.exit_code == 0, status.output
    assert "message bodies kept 30 day(s)" in status.output
    assert "day secrets destroyed: none" in status.output


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads HUB_* from the environment: only what a test passes counts."""
    monkeypatch.delenv("HUB_RETENTION__MESSAGE_DAYS", raising=False)
