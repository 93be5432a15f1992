"""Consent through the HTTP API: GET /v1/customers/{id}/consent (the state per channel and
purpose, with defaults marked, and the merge group's whole ledger) and PUT (a change with its
source and evidence), on both backends; roles; unknown channels and purposes; any evidence
text either refused or recorded and readable; and double opt-in end to end: the signed link
emailed to the customer, its page and button, a tampered or expired link refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from hub.config import Settings
from hub.domain.links import LinkSigner
from hub.events import ConsentSignal, InboundInteraction
from hub.runtime.consent import CONFIRM_KIND
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, smtp_to, wait_for
from tests.support.hostile import HOSTILE_TEXT

PUBLIC = "https://hub.example.com"
_URL = re.compile(r"https://hub\.example\.com(/consent/confirm/[A-Za-z0-9_.-]+)")


def _cells(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["channel"], c["purpose"]): c for c in body["state"]}


def _consent(api: Api, customer_id: str, **kwargs: Any) -> dict[str, Any]:
    response = api.get(f"/v1/customers/{customer_id}/consent", **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _put(api: Api, customer_id: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    token = body.pop("token", ADMIN_TOKEN)
    # A double opt-in mails the link on the customer's email conversation, which the views
    # know once they caught up with the recording.
    api.wait_caught_up()
    response = api.put(f"/v1/customers/{customer_id}/consent", json=body, token=token)
    assert response.status_code == expect, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_new_customer_has_the_default_rules_marked_as_defaults(api: Api) -> None:
    sms = api.record(address="phone:+15550107001")
    body = _consent(api, sms["customer_id"])
    assert body["customer_id"] == sms["customer_id"]
    assert body["purposes"] == ["service", "marketing"]
    assert body["history"] == []
    cells = _cells(body)
    assert len(cells) == 7 * 2
    assert all(c["default"] for c in cells.values())
    assert cells[("sms", "service")]["granted"] is True
    assert cells[("sms", "service")]["rule"] == "first_contact"
    assert cells[("email", "marketing")]["granted"] is False
    assert cells[("email", "marketing")]["rule"] == "opt_in_required"


def test_a_change_is_a_ledger_line_with_its_source_and_evidence(api: Api) -> None:
    sms = api.record(address="phone:+15550107002")
    cid = sms["customer_id"]
    _, agent = api.runtime.tokens.create("agent", "ann")  # type: ignore[union-attr]
    answer = _put(
        api,
        cid,
        channel="sms",
        granted=True,
        purposes=["marketing"],
        evidence="asked for offers at the counter",
        token=agent,
    )
    assert answer["recorded_on"] == [cid]
    assert answer["confirmations"] == []  # SMS needs no double opt-in
    cell = _cells(answer)[("sms", "marketing")]
    assert (cell["granted"], cell["default"], cell["rule"]) == (True, False, "agent")
    assert cell["decided_on"] == cid

    _put(api, cid, channel="sms", granted=False, purposes=["service", "marketing"])
    body = _consent(api, cid)
    assert [(h["source"], h["granted"], h["actor"]) for h in body["history"]] == [
        ("agent", True, "ann"),
        ("api", False, "admin (HUB_ADMIN_TOKEN)"),
    ]
    first = body["history"][0]
    assert first["evidence"] == "asked for offers at the counter"
    assert first["customer_id"] == cid
    assert first["kind"] == "change"
    assert _cells(body)[("sms", "service")]["granted"] is False


def test_a_keyword_from_the_customer_shows_with_its_message(api: Api) -> None:
    """A STOP as the Twilio connector records it (the API's own contract carries no consent)."""
    runtime = api.runtime
    assert runtime is not None
    [stop] = runtime.record_now(
        [
            InboundInteraction(
                channel="sms",
                direction="inbound",
                address="phone:+15550107003",
                provider_message_id="SM-stop-1",
                occurred_at=datetime.now(UTC),
                text="STOP",
                consent=ConsentSignal(granted=False, reason="sms_keyword:STOP"),
            )
        ]
    )
    body = _consent(api, str(stop.customer_id))
    [line] = body["history"]
    assert (line["source"], line["message_id"], line["granted"]) == (
        "keyword",
        str(stop.message_id),
        False,
    )
    assert _cells(body)[("sms", "marketing")]["granted"] is False


def test_roles_and_refusals(api: Api) -> None:
    cid = api.record(address="phone:+15550107004")["customer_id"]
    runtime = api.runtime
    assert runtime is not None
    _, service = runtime.tokens.create("service", "crm")
    _, agent = runtime.tokens.create("agent", "ann")
    url = f"/v1/customers/{cid}/consent"
    assert api.get(url, token=service).status_code == 200  # read scope
    assert_error(api.get(url, token=None), 401, "unauthorized")
    change = {"channel": "sms", "granted": False}
    assert_error(api.put(url, json=change, token=service), 403, "forbidden")
    assert_error(api.put(url, json=change, token=None), 401, "unauthorized")
    imported = {**change, "source": "import", "evidence": "old CRM, record 12"}
    assert_error(api.put(url, json=imported, token=agent), 403, "forbidden")
    no_evidence = {**change, "source": "import"}
    assert_error(api.put(url, json=no_evidence), 422, "invalid_command")
    assert api.put(url, json=imported).status_code == 200
    assert _consent(api, cid)["history"][-1]["source"] == "import"

    assert_error(api.put(url, json={**change, "purposes": ["newsletter"]}), 422, "unknown_purpose")
    assert_error(api.put(url, json={**change, "channel": "fax"}), 422, "validation_error")
    assert_error(api.put(url, json={**change, "channel": "voice"}), 422, "validation_error")
    assert_error(api.put(url, json={**change, "source": "keyword"}), 422, "validation_error")
    assert_error(api.put(url, json={**change, "purposes": []}), 422, "validation_error")
    unknown = "/v1/customers/01a23c98-f61b-7e73-a846-77e8d4a5408e/consent"
    assert_error(api.get(unknown), 404, "not_found")
    assert_error(api.put(unknown, json=change), 404, "not_found")


def test_configured_purposes_are_accepted(make_settings: Callable[..., Settings]) -> None:
    settings_ = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, consent={"purposes": {"reminders": {}}}
    )
    with running_app(settings_) as api:
        cid = api.record(address="phone:+15550107005")["customer_id"]
        body = _put(api, cid, channel="sms", granted=True, purposes=["reminders"])
        assert body["purposes"] == ["service", "marketing", "reminders"]
        assert _cells(body)[("sms", "reminders")]["granted"] is True
        assert _cells(body)[("email", "reminders")]["rule"] == "opt_in_required"


def test_the_history_covers_the_whole_merge_group(api: Api) -> None:
    phone = api.record(address="phone:+15550107006", text="by sms")
    email = api.record(channel="email", address="email:ana@example.org", text="by email")
    survivor, duplicate = phone["customer_id"], email["customer_id"]
    _put(api, survivor, channel="sms", granted=False, purposes=["service"], evidence="STOP call")
    _put(api, duplicate, channel="email", granted=False, purposes=["service"])
    merged = api.post(
        f"/v1/customers/{survivor}/merge", json={"customer_id": duplicate, "reason": "same"}
    )
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()

    for asked in (survivor, duplicate):
        body = _consent(api, asked)
        assert body["customer_id"] == survivor
        assert body["customer_ids"] == [survivor, duplicate]
        assert [(h["customer_id"], h["channel"]) for h in body["history"]] == [
            (survivor, "sms"),
            (duplicate, "email"),
        ]
        cells = _cells(body)
        assert cells[("sms", "service")]["granted"] is False
        assert cells[("email", "service")]["decided_on"] == duplicate

    # A change for the group lands on the member whose address the channel reaches.
    answer = _put(api, survivor, channel="email", granted=True, purposes=["service"])
    assert answer["recorded_on"] == [duplicate]
    assert _cells(answer)[("email", "service")]["granted"] is True


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(evidence=HOSTILE_TEXT)
def test_any_evidence_text_is_refused_or_recorded_and_readable(
    sqlite_api: Api, evidence: str
) -> None:
    cid = _customer_of(sqlite_api)
    body = {"channel": "sms", "granted": True, "purposes": ["marketing"], "evidence": evidence}
    response = sqlite_api.send_hostile_json("PUT", f"/v1/customers/{cid}/consent", body)
    if response is None:
        return
    assert response.status_code == 200
    last = _consent(sqlite_api, cid)["history"][-1]
    # What JSON carries: two escaped halves of a surrogate pair arrive as one character.
    sent = json.loads(json.dumps(body))
    assert last["evidence"] == (sent["evidence"] or None)


_CUSTOMERS: dict[int, str] = {}


def _customer_of(api: Api) -> str:
    """One customer per app (the property test's examples share it)."""
    key = id(api)
    if key not in _CUSTOMERS:
        _CUSTOMERS[key] = api.record(address="phone:+15550107007")["customer_id"]
    return _CUSTOMERS[key]


# -- double opt-in ---------------------------------------------------------------------------


@pytest.fixture
def mailing(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[Api]:
    """A hub that sends email to the sink and knows its public URL."""
    settings_ = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        dispatch={"quiet_hours_start": None},
        email=smtp_to(sink.port),
    )
    with running_app(settings_) as api:
        yield api


def test_double_opt_in_by_email_end_to_end(mailing: Api, sink: SmtpSink) -> None:
    api = mailing
    kim = api.record(channel="email", address="email:kim@example.com", subject="Hello")
    cid = kim["customer_id"]
    answer = _put(
        api, cid, channel="email", granted=True, purposes=["marketing"], evidence="form on site"
    )
    [confirmation] = answer["confirmations"]
    assert confirmation["sent"] is True
    assert confirmation["purposes"] == ["marketing"]
    assert confirmation["url"].startswith(f"{PUBLIC}/consent/confirm/")
    cell = _cells(answer)[("email", "marketing")]
    assert cell["granted"] is False  # not before the customer confirms
    assert cell["pending"]["request_id"] == confirmation["request_id"]

    mail = wait_for(lambda: sink.requests)[0]
    assert mail.rcpt_tos == ["kim@example.com"]
    body = mail.message.get_body(("plain",)).get_content()
    found = _URL.search(body)
    assert found, body
    path = found.group(1)
    assert confirmation["url"] == PUBLIC + path

    client = api.client
    page = client.get(path)  # opening the link changes nothing (mail scanners open links)
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert "marketing" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert _cells(_consent(api, cid))[("email", "marketing")]["granted"] is False

    done = client.post(path)
    assert done.status_code == 200, done.text
    assert "Thank you" in done.text
    again = client.post(path)
    assert again.status_code == 200
    body_ = _consent(api, cid)
    cell = _cells(body_)[("email", "marketing")]
    assert (cell["granted"], cell["rule"], cell["pending"]) == (True, "double_opt_in", None)
    lines = [(h["kind"], h["source"], h["status"]) for h in body_["history"]]
    assert lines == [
        ("request", "api", "confirmed"),
        ("change", "double_opt_in", None),
    ]
    assert body_["history"][0]["evidence"] == "form on site"
    assert "Already confirmed" in client.get(path).text


def test_a_tampered_or_expired_link_is_refused(mailing: Api) -> None:
    api = mailing
    cid = api.record(channel="email", address="email:lee@example.com")["customer_id"]
    [confirmation] = _put(api, cid, channel="email", granted=True, purposes=["marketing"])[
        "confirmations"
    ]
    path = confirmation["url"].removeprefix(PUBLIC)
    body, _, mac = path.rpartition(".")
    tampered = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    client: httpx.Client = api.client
    for method in ("GET", "POST"):
        refused = client.request(method, tampered)
        assert refused.status_code == 400, refused.text
        assert "not valid" in refused.text
    assert client.get("/consent/confirm/nonsense").status_code == 400

    runtime = api.runtime
    assert runtime is not None
    expired = LinkSigner(runtime.store.links_key).sign(
        CONFIRM_KIND,
        {"c": cid, "r": confirmation["request_id"]},
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    for method in ("GET", "POST"):
        refused = client.request(method, f"/consent/confirm/{expired}")
        assert refused.status_code == 410, refused.text
        assert "expired" in refused.text
    assert _cells(_consent(api, cid))[("email", "marketing")]["granted"] is False


def test_a_withdrawal_cancels_a_pending_confirmation(mailing: Api) -> None:
    api = mailing
    cid = api.record(channel="email", address="email:max@example.com")["customer_id"]
    [confirmation] = _put(api, cid, channel="email", granted=True, purposes=["marketing"])[
        "confirmations"
    ]
    _put(api, cid, channel="email", granted=False, purposes=["marketing"])
    path = confirmation["url"].removeprefix(PUBLIC)
    assert api.client.get(path).status_code == 409
    assert api.client.post(path).status_code == 409
    assert _cells(_consent(api, cid))[("email", "marketing")]["granted"] is False


def test_without_a_public_url_the_link_is_returned_to_pass_on(api: Api) -> None:
    cid = api.record(channel="email", address="email:noa@example.com")["customer_id"]
    [confirmation] = _put(api, cid, channel="email", granted=True, purposes=["marketing"])[
        "confirmations"
    ]
    assert confirmation["sent"] is False
    assert "HUB_PUBLIC_URL" in confirmation["note"]
    assert "/consent/confirm/" in confirmation["url"]
    path = "/consent/confirm/" + confirmation["url"].partition("/consent/confirm/")[2]
    assert api.client.post(path).status_code == 200
    assert _cells(_consent(api, cid))[("email", "marketing")]["granted"] is True
