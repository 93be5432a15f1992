"""The console's search page (``/search``) read as HTML: customers and what was said together,
the matched words in ``<mark>`` around escaped text (a message's markup stays text), the
filters, older pages, links to the customer and the conversation, what an agent is told when
nothing can be searched, and the access log."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import ADMIN_TOKEN, Api, ago
from tests.support.console import sign_in


def _signed_in(api: Api) -> httpx.Client:
    assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
    return api.client


def _get(client: httpx.Client, **params: Any) -> str:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return re.sub(r"\s+", " ", response.text)


def _hits(markup: str) -> list[str]:
    """Each hit's text as a reader gets it."""
    found = re.findall(r'<li class="hit .*?</li>', markup)
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in found]


def _history(api: Api) -> dict[str, Any]:
    mail = api.record(
        channel="email",
        address="email:rasa@example.lt",
        contact_name="Rasa Kazlauskienė",
        subject="Grąžinimas",
        text="Prašau grąžinti pinigus už užsakymą 5521. <b>skubu</b>",
        occurred_at=ago(60),
    )
    sms = api.record(
        address="phone:+37060077777",
        contact_name="Tomas Grąžulis",
        text="Kada grąžinsite pinigus?",
        occurred_at=ago(30),
    )
    note = api.post(
        f"/v1/conversations/{mail['conversation_id']}/notes",
        json={"text": "Pinigai grąžinti 05-02"},
    )
    assert note.status_code == 201, note.text
    api.wait_caught_up()
    return {"mail": mail, "sms": sms}


def test_customers_and_messages_together_with_matches_marked(sqlite_api: Api) -> None:
    h = _history(sqlite_api)
    client = _signed_in(sqlite_api)

    markup = _get(client, q="Grąž")  # a name part: the directory; no whole word: no message
    assert "Rasa Kazlauskienė" not in markup
    assert f'<a href="/customers/{h["sms"]["customer_id"]}">Tomas Grąžulis</a>' in markup
    assert _hits(markup) == []

    markup = _get(client, q="pinigus")
    hits = _hits(markup)
    assert len(hits) == 2
    assert hits[0].startswith("Tomas Grąžulis From the customer")
    assert hits[0].endswith("Kada grąžinsite pinigus?")
    assert hits[1].startswith("Rasa Kazlauskienė From the customer")
    assert "Grąžinimas Prašau grąžinti pinigus" in hits[1]
    assert "<mark>pinigus</mark>" in markup
    # a message's markup is text, escaped; only the matched words are marked
    assert "&lt;b&gt;skubu&lt;/b&gt;" in markup
    assert "<b>skubu</b>" not in markup
    mail = h["mail"]
    link = f'href="/customers/{mail["customer_id"]}#c-{mail["conversation_id"]}"'
    assert link in markup
    # no customer's name or address has this word
    assert "No customer's name or address contains “pinigus”" in markup


def test_filters_and_older_pages(sqlite_api: Api) -> None:
    _history(sqlite_api)
    for n in range(30):
        sqlite_api.record(
            address="phone:+37060088888", text=f"pinigai grąžinti {n}", occurred_at=ago(n)
        )
    sqlite_api.wait_caught_up()
    client = _signed_in(sqlite_api)

    assert [t.split()[-1] for t in _hits(_get(client, q="pinigus", channel="sms"))] == ["pinigus?"]
    (note,) = _hits(_get(client, q="grazinti", kind="note"))
    assert "Pinigai grąžinti 05-02" in note
    outbound = _hits(_get(client, q="pinigus OR pinigai", direction="outbound"))
    assert outbound == []

    first = _get(client, q="pinigai")
    assert len(_hits(first)) == 25
    older = re.search(r'<a class="older" href="([^"]+)"', first)
    assert older is not None
    second = client.get(html.unescape(older.group(1)))
    assert second.status_code == 200
    rest = _hits(re.sub(r"\s+", " ", second.text))
    assert len(rest) == 6  # 30 + the note
    assert "Customers</h2>" not in second.text  # customers are on the first page only
    assert client.get("/search", params={"q": "pinigai", "before": "nope"}).status_code == 400


def test_what_cannot_be_searched_is_said(sqlite_api: Api) -> None:
    _history(sqlite_api)
    client = _signed_in(sqlite_api)

    assert "Type a word (letters or digits)" in _get(client, q="-pinigus")
    assert "Type a word (letters or digits)" in _get(client, q="?!")
    assert "Dates are written as YYYY-MM-DD." in _get(client, q="pinigus", since="yesterday")
    assert "Dates are written as YYYY-MM-DD." in _get(client, q="pinigus", until="9999-12-31")
    assert "must not be after" in _get(client, q="pinigus", since="2025-02-02", until="2025-02-01")
    assert "Diacritics and case do not matter" in _get(client)
    signed_out = httpx.Client(
        transport=sqlite_api.client._transport, base_url=str(sqlite_api.client.base_url)
    )
    assert signed_out.get("/search?q=x", follow_redirects=False).status_code == 303


def test_each_customer_shown_is_access_logged(sqlite_api: Api) -> None:
    h = _history(sqlite_api)
    client = _signed_in(sqlite_api)
    _get(client, q="pinigus")
    _get(client, q="Tomas")

    def actions(customer_id: str) -> list[tuple[str, int]]:
        response = sqlite_api.get(f"/v1/customers/{customer_id}/access-log")
        assert response.status_code == 200, response.text
        return [(e["action"], e["items"]) for e in response.json()["items"]]

    assert actions(h["sms"]["customer_id"]) == [("console:search", 1), ("console:search", 1)]
    assert actions(h["mail"]["customer_id"]) == [("console:search", 1)]


def test_any_query_is_a_page(sqlite_api: Api) -> None:
    _history(sqlite_api)
    client = _signed_in(sqlite_api)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        derandomize=True,
    )
    @given(q=st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
    def check(q: str) -> None:
        response = client.get("/search", params={"q": q})
        assert response.status_code == 200, response.text

    check()
