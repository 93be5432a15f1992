"""The customer page shows business activity (POST /v1/activities) on the timeline: its
label, amount, reference and title, linked to the source's page."""

from __future__ import annotations

from tests.api.test_activities import activity
from tests.console.test_pages import _page
from tests.support.api import Api


def test_the_console_shows_the_activity_on_the_customer_page(sqlite_api: Api) -> None:
    cid = sqlite_api.record(address="phone:+15550107006")["customer_id"]
    body = activity(address=None, customer_id=cid, url="https://shop.example.com/o/<1042>")
    assert sqlite_api.post("/v1/activities", json=body).status_code == 201
    sqlite_api.wait_caught_up()

    markup, text = _page(sqlite_api, cid)

    assert "Order placed · 129.00 EUR · #1042" in text
    assert "2 x running shoes" in text
    assert 'href="https://shop.example.com/o/&lt;1042&gt;"' in markup
