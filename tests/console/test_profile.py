"""The console's profile card and form (hub.console.profile) over HTTP, as a browser without
JavaScript and as profile.js uses them: what the card shows, a save that sends only what the
agent changed, refusals next to the form, and the admins' attributes page. The browser test
(tests/browser/test_profile.py) covers the in-place editing itself."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.support.api import ADMIN_TOKEN, Api, running_app
from tests.support.console import csrf_of, sign_in
from tests.support.store import SettingsFactory

FETCH = {"X-Requested-With": "fetch"}


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        api.put(
            "/v1/attributes/plan",
            json={"type": "enum", "label": "Plan", "values": ["free", "gold"]},
        )
        api.put("/v1/attributes/vip", json={"type": "boolean", "label": "VIP"})
        api.put("/v1/attributes/renewal", json={"type": "date", "label": "Renewal"})
        api.put("/v1/attributes/seats", json={"type": "number", "label": "Seats"})
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


def _text(markup: str) -> str:
    """The page's text as a reader gets it (tags gone, spaces collapsed)."""
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))
    return re.sub(r" ([,)])", r"\1", text)


def _form(client: httpx.Client, customer: str) -> dict[str, str]:
    """The form's fields as the page shows them (what a browser would post unchanged)."""
    page = client.get(f"/customers/{customer}/profile")
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    for name, chosen in re.findall(
        r'<select[^>]*name="([^"]+)"[^>]*>.*?(?:<option value="([^"]*)" selected>|</select>)',
        page.text,
        re.S,
    ):
        fields[name] = chosen
    return fields


def _customer(app: Api, **extra: Any) -> str:
    return str(
        app.record(address="phone:+4915112340001", contact_name="Ona", **extra)["customer_id"]
    )


def test_the_card_shows_what_agents_set_and_where_the_customer_came_from(app: Api) -> None:
    customer = _customer(app, source={"source": "newsletter", "campaign": "spring"})
    app.request(
        "PATCH",
        f"/v1/customers/{customer}",
        json={
            "birthday": "--04-21",
            "time_zone": "Asia/Tokyo",
            "company": "Acme",
            "attributes": {"plan": "gold", "vip": True},
        },
    )
    app.wait_caught_up()
    page = _text(app.client.get(f"/customers/{customer}").text)
    assert "Birthday 21 April" in page
    assert "Company Acme" in page
    assert "(Asia/Tokyo)" in page  # set by an agent: no "guessed"
    assert "Plan gold" in page
    assert "Vip yes" in page
    assert "newsletter / spring (API)" in page
    assert "Edit profile" in page
    # the timeline says who changed what
    assert (
        "Profile edited by admin (HUB_ADMIN_TOKEN): birthday → --04-21, time zone → Asia/Tokyo"
        in page
    )


def test_a_save_without_javascript_sends_only_what_the_agent_changed(app: Api) -> None:
    customer = _customer(app)
    seen = _form(app.client, customer)
    assert seen["display_name"] == "Ona"
    # meanwhile another agent sets the company
    app.request("PATCH", f"/v1/customers/{customer}", json={"company": "Theirs"})
    posted = app.client.post(
        f"/customers/{customer}/profile",
        data=seen | {"time_zone": "Europe/Vilnius", "attr.plan": "free", "attr.vip": "true"},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == f"/customers/{customer}"
    shown = app.get(f"/v1/customers/{customer}").json()
    assert (shown["time_zone"], shown["company"]) == ("Europe/Vilnius", "Theirs")
    assert shown["attributes"] == {"plan": "free", "vip": True}
    # the same form again changes nothing
    app.wait_caught_up()
    position = app.store_position()
    again = _form(app.client, customer)
    app.client.post(f"/customers/{customer}/profile", data=again, follow_redirects=False)
    assert app.store_position() == position


def test_a_refusal_comes_back_next_to_the_form_with_what_was_typed(app: Api) -> None:
    customer = _customer(app)
    seen = _form(app.client, customer)
    refused = app.client.post(
        f"/customers/{customer}/profile",
        data=seen | {"birthday": "1990-13-01", "company": "Kept <b>"},
    )
    assert refused.status_code == 422
    assert 'id="profile-birthday" name="birthday" value="1990-13-01"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert "birthday: &#39;1990-13-01&#39; is not a date" in refused.text
    assert "Kept &lt;b&gt;" in refused.text
    app.wait_caught_up()
    assert app.get(f"/v1/customers/{customer}").json()["company"] is None


def test_profile_js_gets_the_card_back_or_the_refusal_as_json(app: Api) -> None:
    customer = _customer(app)
    fragment = app.client.get(f"/customers/{customer}/profile", headers=FETCH)
    assert "<html" not in fragment.text
    assert 'class="profile-card editing"' in fragment.text
    seen = _form(app.client, customer)
    saved = app.client.post(
        f"/customers/{customer}/profile", data=seen | {"company": "Acme"}, headers=FETCH
    )
    assert saved.status_code == 200, saved.text
    assert 'id="profile-card"' in saved.text
    assert "Acme" in saved.text
    assert "<html" not in saved.text
    refused = app.client.post(
        f"/customers/{customer}/profile", data=seen | {"attr.seats": "twelve"}, headers=FETCH
    )
    assert refused.status_code == 422
    assert refused.json() == {
        "code": "invalid_attribute",
        "message": "attributes.seats: expected a number",
        "field": "attributes.seats",
    }


def test_opening_the_form_is_in_the_access_log(app: Api) -> None:
    customer = _customer(app)
    app.client.get(f"/customers/{customer}/profile")
    assert app.runtime is not None
    app.runtime.access_log.flush()
    entries, _ = app.runtime.access_log.entries([UUID(customer)], 50)
    assert "console:profile_edit" in [e.action for e in entries]


def test_admins_define_attributes_on_their_page_and_agents_may_not(app: Api) -> None:
    page = app.client.get("/attributes")
    assert page.status_code == 200
    assert "<code>plan</code>" in page.text
    csrf = csrf_of(app.client, "/attributes")
    made = app.client.post(
        "/attributes",
        data={"csrf": csrf, "key": "tier", "type": "enum", "label": "Tier", "values": "a\nb\n"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert [
        a["values"] for a in app.get("/v1/attributes").json()["items"] if a["key"] == "tier"
    ] == [["a", "b"]]
    changed = app.client.post(
        "/attributes",
        data={"csrf": csrf, "key": "tier", "type": "string", "label": "Tier"},
        headers=FETCH,
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "attribute_type_change"
    assert app.runtime is not None
    agent = app.runtime.tokens.create("agent", "ann")[1]
    with httpx.Client(transport=app.client._transport, base_url=str(app.client.base_url)) as other:
        assert sign_in(other, agent).status_code == 303
        assert app.client.get("/attributes").status_code == 200
        assert other.get("/attributes").status_code == 403
