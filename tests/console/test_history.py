"""The console's "view as of" (``hub.console.history``): the form on the customer page, the
link of each outbound message to the timeline as of its sending, the page with its banner and
the conversations then, older pages (a page without JavaScript, a fragment to console.js),
and whatever a form or link sends as a time."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.console.history import moment_from
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import sign_in


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


def ticks(markup: str) -> list[str]:
    """The delivery ticks the page shows, by what they say."""
    return re.findall(r'<span class="tick tick-[a-z]+" title="([^"]+)"', markup)


@pytest.fixture
def signed(sqlite_api: Api) -> Api:
    assert sign_in(sqlite_api.client, ADMIN_TOKEN).status_code == 303
    return sqlite_api


def now(api: Api) -> datetime:
    api.wait_caught_up()
    return datetime.now(UTC)


def test_an_outbound_message_links_to_the_timeline_as_of_its_sending(signed: Api) -> None:
    api = signed
    first = api.record(address="phone:+15550170001", text="where is it?")
    sent = api.record(direction="outbound", address="phone:+15550170001", text="on its way")
    cid = first["customer_id"]
    api.wait_caught_up()
    assert api.post(f"/v1/messages/{sent['message_id']}/delivery", json={"status": "delivered"})
    api.put(f"/v1/conversations/{first['conversation_id']}/status", json={"status": "resolved"})
    api.record(address="phone:+15550170001", text="thanks, it came")
    api.wait_caught_up()

    today = api.client.get(f"/customers/{cid}")
    assert today.status_code == 200
    assert 'action="/customers/' + cid + '/as-of"' in today.text  # the "view as of" form
    assert ticks(today.text) == ["delivered"]
    links = re.findall(r'class="as-of-link" href="([^"]+)"', today.text)
    assert len(links) == 1  # the outbound message's; the customer's own have none
    assert links[0].endswith(f"#item-{sent['message_id']}")

    then = api.client.get(html.unescape(links[0]))
    assert then.status_code == 200
    shown = text_of(then.text)
    assert "As the hub knew it on" in shown
    assert "Back to now" in shown
    assert f'id="item-{sent["message_id"]}"' in then.text
    assert ticks(then.text) == ["sent"]  # the delivery report came later
    assert "on its way" in shown
    assert "where is it?" in shown
    assert "thanks, it came" not in shown
    assert re.search(r'class="status status-open">open<', then.text)  # resolved later
    entries = api.get(f"/v1/customers/{cid}/access-log").json()["items"]
    assert "console:as_of" in [e["action"] for e in entries]


def test_the_form_reads_a_local_time_in_the_agents_zone(signed: Api) -> None:
    api = signed
    sent = api.record(direction="outbound", address="phone:+15550170002")
    before_report = now(api)
    assert api.post(f"/v1/messages/{sent['message_id']}/delivery", json={"status": "read"})
    api.wait_caught_up()
    url = f"/customers/{sent['customer_id']}/as-of"

    vilnius = before_report.astimezone(ZoneInfo("Europe/Vilnius"))
    local = vilnius.strftime("%Y-%m-%dT%H:%M:%S.%f")
    page = api.client.get(url, params={"at": local, "tz": "Europe/Vilnius"})
    assert page.status_code == 200
    assert ticks(page.text) == ["sent"]
    # the same wall-clock time read as UTC is two or three hours later: after the report
    as_utc = api.client.get(url, params={"at": local, "tz": "UTC"})
    assert ticks(as_utc.text) == ["read"]
    assert ticks(api.client.get(url, params={"at": now(api).isoformat()}).text) == ["read"]


def test_older_items_page_without_script_and_as_fragments(signed: Api) -> None:
    api = signed
    cid = ""
    for n in range(55):
        cid = api.record(address="phone:+15550170003", text=f"m{n}")["customer_id"]
    url = f"/customers/{cid}/as-of"
    first = api.client.get(url, params={"at": now(api).isoformat()})
    older = re.search(r'<a class="older" href="([^"]+)"', first.text)
    assert older, "a moment of 56 items has an older page"
    whole = api.client.get(html.unescape(older.group(1)))
    assert whole.status_code == 200
    assert "Older items of that moment" in text_of(whole.text)
    assert text_of(whole.text).count("First contact") == 1

    fragment = api.client.get(html.unescape(older.group(1)), headers={"X-Requested-With": "fetch"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.count('<li id="item-') == 6  # 5 messages and the first contact
    assert "X-Older" not in fragment.headers
    items = re.search(r'data-items="([^"]+)"', first.text)
    assert items
    cursor = re.search(r"before=([^\"&]+)", html.unescape(older.group(1)))
    assert cursor
    same = api.client.get(items.group(1), params={"before": html.unescape(cursor.group(1))})
    assert same.text == fragment.text


def test_what_is_not_a_time_goes_back_to_the_customer_saying_why(signed: Api) -> None:
    api = signed
    cid = api.record(address="phone:+15550170004")["customer_id"]
    api.wait_caught_up()
    url = f"/customers/{cid}/as-of"
    for params in ({"at": "yesterday"}, {"at": "2026-11-20T10:00", "tz": "Mars/Olympus"}):
        refused = api.client.get(url, params=params, follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(f"/customers/{cid}?error=")
        back = api.client.get(refused.headers["location"])
        assert "is not a" in text_of(back.text)
    nowhere = api.client.get(url, params={"position": 2**62}, follow_redirects=False)
    assert nowhere.status_code == 303
    assert api.client.get(url, follow_redirects=False).headers["location"] == f"/customers/{cid}"


def test_before_the_customer_appeared_unknown_and_erased(signed: Api) -> None:
    api = signed
    too_early = now(api)
    cid = api.record(address="phone:+15550170005")["customer_id"]
    api.wait_caught_up()
    url = f"/customers/{cid}/as-of"
    early = api.client.get(url, params={"at": too_early.isoformat()})
    assert early.status_code == 404
    assert "did not know this customer yet" in text_of(early.text)
    unknown = api.client.get(f"/customers/{uuid4()}/as-of", params={"at": now(api).isoformat()})
    assert unknown.status_code == 404
    assert "No such customer" in unknown.text
    assert api.post(f"/v1/customers/{cid}/erase", json={"reason": "objection"}).is_success
    erased = api.client.get(url, params={"at": now(api).isoformat()})
    assert erased.status_code == 410


@settings(max_examples=200, deadline=None)
@given(at=st.text(max_size=40), tz=st.text(max_size=30))
@example(at="0001-01-01T00:00:00", tz="Etc/GMT-14")
@example(at="9999-12-31T23:59:59", tz="Pacific/Kiritimati")
@example(at="2026-11-20T10:00", tz="../../etc/passwd")
def test_any_at_and_tz_is_a_moment_in_utc_or_a_reason(at: str, tz: str) -> None:
    try:
        moment = moment_from(at, tz)
    except ValueError as exc:
        reason = str(exc)  # a reason the agent reads
        assert reason
        return
    assert moment.tzinfo is UTC


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at=st.text(max_size=40), tz=st.text(max_size=30))
def test_any_text_in_the_form_is_a_page_or_a_way_back(signed: Api, at: str, tz: str) -> None:
    cid = _customer(signed)
    response = signed.client.get(
        f"/customers/{cid}/as-of", params={"at": at, "tz": tz}, follow_redirects=False
    )
    assert response.status_code in (200, 303, 404, 422), response.text


def _customer(api: Api) -> str:
    """One customer per app (the property test's examples share it)."""
    found = getattr(api, "_history_customer", None)
    if found is None:
        found = api.record(address="phone:+15550170006")["customer_id"]
        api.wait_caught_up()
        api._history_customer = found  # type: ignore[attr-defined]
    return str(found)
