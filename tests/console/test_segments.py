"""The console's customers page (``hub.console.segments``): every customer, the form's filters
and the JSON filter, pages with the total, saving a filter as a segment and changing and
deleting it, what it refuses, and the old search address sent on to /search."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import csrf_of, sign_in


@pytest.fixture
def console(sqlite_api: Api) -> Api:
    assert sign_in(sqlite_api.client, ADMIN_TOKEN).status_code == 303
    return sqlite_api


def _text(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def _shown(page: httpx.Response) -> list[str]:
    """The names of the customers listed, in order."""
    found = re.findall(r'<li>\s*<a href="/customers/[0-9a-f-]+">([^<]*)</a>', page.text)
    return [html.unescape(n) for n in found]


def _people(api: Api) -> dict[str, str]:
    ids = {
        "Ana": api.record(address="phone:+37060020001", contact_name="Ana")["customer_id"],
        "Ben": api.record(channel="email", address="email:ben@example.net", contact_name="Ben")[
            "customer_id"
        ],
        "Cat": api.record(
            channel="telegram",
            address="telegram:8001",
            contact_name="Cat",
            metadata={"language_code": "lt"},
        )["customer_id"],
    }
    api.put(f"/v1/customers/{ids['Ana']}/tags", json={"tags": ["vip"]})
    api.put(f"/v1/customers/{ids['Ben']}/tags", json={"tags": ["vip"]})
    granted = api.put(
        f"/v1/customers/{ids['Ben']}/consent",
        json={
            "channel": "email",
            "granted": True,
            "purposes": ["marketing"],
            "source": "import",
            "evidence": "signed up in the shop",
        },
    )
    assert granted.status_code == 200, granted.text
    api.wait_caught_up()
    return ids


def test_the_old_search_address_goes_to_search(console: Api) -> None:
    moved = console.client.get("/customers", params={"q": "ab c"}, follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == "/search?q=ab%20c"


def test_every_customer_then_the_forms_filters(console: Api) -> None:
    _people(console)
    client = console.client
    everyone = client.get("/customers")
    assert everyone.status_code == 200, everyone.text
    assert _shown(everyone) == ["Cat", "Ben", "Ana"]
    assert "3 customers" in _text(everyone)
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"tag": "vip"}, ["Ben", "Ana"]),
        ({"tag": "vip", "channel": "sms"}, ["Ana"]),
        ({"language": "lt"}, ["Cat"]),
        ({"consent_channel": "email", "consent_purpose": "marketing"}, ["Ben"]),
        ({"consent_channel": "telegram", "consent_purpose": "service"}, ["Cat"]),
        ({"last_within": "1"}, ["Cat", "Ben", "Ana"]),
        ({"first_within": "1", "open": "no"}, []),
        ({"open": "yes", "tag": "vip"}, ["Ben", "Ana"]),
    ]
    for params, names in cases:
        page = client.get("/customers", params=params)
        assert page.status_code == 200, (params, page.text[:300])
        assert _shown(page) == names, params
        assert f"{len(names)} customer" in _text(page), params
    shown = client.get("/customers", params={"tag": "vip", "channel": "sms"})
    # The form shows what it filters by, and the JSON of it to take further.
    assert 'name="tag" value="vip"' in shown.text
    assert '<option value="sms" selected>' in shown.text
    assert '"channel": "sms"' in html.unescape(shown.text)


def test_a_json_filter_and_what_the_page_refuses(console: Api) -> None:
    _people(console)
    client = console.client
    tree = {"any": [{"language": "lt"}, {"channel": "email"}]}
    page = client.get("/customers", params={"filter": json.dumps(tree)})
    assert _shown(page) == ["Cat", "Ben"]
    refusals = [
        ({"filter": "{not json"}, "The filter is not JSON"),
        ({"filter": '{"colour": "red"}'}, "The filter does not fit the language"),
        ({"last_within": "soon"}, "'soon' is not a number of days"),
        ({"language": "!!"}, "The filter does not fit the language"),
        ({"consent_channel": "sms", "consent_purpose": "surveys"}, "unknown consent purpose"),
        ({"cursor": "nope"}, "cursor is not one this hub gave"),
    ]
    for params, message in refusals:
        refused = client.get("/customers", params=params)
        assert refused.status_code == 422, params
        assert message in _text(refused), (params, _text(refused)[-400:])
        assert _shown(refused) == []
    missing = client.get("/customers", params={"segment": "01890000-0000-7000-8000-000000000000"})
    assert missing.status_code == 404
    assert "no segment" in _text(missing)


def test_pages_carry_the_filter_and_the_total(console: Api) -> None:
    ids = [
        console.record(address=f"phone:+3706003{n:04d}", contact_name=f"Person {n:02d}")[
            "customer_id"
        ]
        for n in range(53)
    ]
    console.wait_caught_up()
    client = console.client
    first = client.get("/customers", params={"channel": "sms"})
    assert len(_shown(first)) == 50
    assert "53 customers" in _text(first)
    found = re.search(r'<a class="more" href="([^"]+)">Next page</a>', first.text)
    assert found
    second = client.get(html.unescape(found.group(1)))
    assert _shown(second) == ["Person 02", "Person 01", "Person 00"]
    assert "channel=sms" in html.unescape(found.group(1))
    assert "53 customers" in _text(second)
    # Each customer listed is in the access log, once per page that showed it.
    log = console.get(f"/v1/customers/{ids[0]}/access-log").json()["items"]
    assert [e["action"] for e in log] == ["console:customers"]


def _save(api: Api, name: str, tree: dict[str, Any]) -> httpx.Response:
    csrf = csrf_of(api.client, "/customers")
    return api.client.post(
        "/customers/segments",
        data={"csrf": csrf, "name": name, "filter": json.dumps(tree)},
        follow_redirects=False,
    )


def test_save_change_and_delete_a_segment(console: Api) -> None:
    _people(console)
    client = console.client
    saved = _save(console, "Very important", {"all": [{"tag": "vip"}]})
    assert saved.status_code == 303, saved.text
    location = saved.headers["location"]
    assert location.startswith("/customers?segment=")
    segment_id = location.rpartition("=")[2]
    page = client.get(location)
    assert _shown(page) == ["Ben", "Ana"]
    assert "<h1" in page.text
    assert re.search(r"<h1[^>]*>Very important</h1>", page.text)
    assert console.get(f"/v1/segments/{segment_id}").json()["filter"] == {"all": [{"tag": "vip"}]}

    taken = _save(console, "VERY important", {"tag": "x"})
    assert taken.status_code == 303
    shown = client.get(taken.headers["location"])
    assert "a segment is already called 'VERY important'" in _text(shown)
    assert "Save as segment" in shown.text

    csrf = csrf_of(client, location)
    changed = client.post(
        f"/customers/segments/{segment_id}",
        data={"csrf": csrf, "name": "Reachable VIPs", "filter": '{"channel": "email"}'},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    after = client.get(changed.headers["location"])
    assert re.search(r"<h1[^>]*>Reachable VIPs</h1>", after.text)
    assert _shown(after) == ["Ben"]
    bad = client.post(
        f"/customers/segments/{segment_id}",
        data={"csrf": csrf, "name": "Reachable VIPs", "filter": "[]"},
        follow_redirects=False,
    )
    assert "The filter does not fit the language" in _text(client.get(bad.headers["location"]))
    stale = client.post(
        f"/customers/segments/{segment_id}/delete", data={"csrf": "0" * 32}, follow_redirects=False
    )
    assert stale.status_code == 403
    deleted = client.post(
        f"/customers/segments/{segment_id}/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert console.get("/v1/segments").json()["items"] == []
    assert "None saved yet." in client.get("/customers").text
