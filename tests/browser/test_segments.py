"""The customers page in Chromium: filter customers by a saved segment, filter them with the
form, and save that filter as a segment (screenshot "segments")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving, wait_for
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as server:
        yield server


@pytest.fixture
def api(hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, headers=ADMIN) as client:
        yield client


def _customer(api: httpx.Client, tags: list[str], **overrides: str) -> str:
    recorded = api.post("/v1/interactions", json=interaction(**overrides))
    assert recorded.status_code == 202, recorded.text
    customer: str = recorded.json()["customer_id"]
    if tags:
        assert api.put(f"/v1/customers/{customer}/tags", json={"tags": tags}).status_code == 200
    return customer


def _caught_up(api: httpx.Client) -> None:
    def done() -> bool:
        ready = api.get("/readyz").json()
        return bool(ready["lag"] == 0) and set(ready["projections"].values()) == {
            ready["store_position"]
        }

    wait_for(done)


def test_filter_by_a_segment_and_save_a_filter_as_one(
    page: Page, hub: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    _customer(api, ["vip"], address="phone:+14155550171", contact_name="Rosa Diaz")
    _customer(
        api,
        ["vip", "wholesale"],
        channel="email",
        address="email:tom.baker@example.org",
        contact_name="Tom Baker",
    )
    _customer(api, [], channel="telegram", address="telegram:4242", contact_name="Ada Lovelace")
    defined = api.post("/v1/segments", json={"name": "VIP", "filter": {"tag": "vip"}})
    assert defined.status_code == 201, defined.text
    _caught_up(api)

    sign_in(page, hub)
    page.get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()
    results = page.locator(".segment-customers")
    for name in ("Rosa Diaz", "Tom Baker", "Ada Lovelace"):
        expect(results.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("3 customers")

    # A saved segment.
    segments = page.get_by_role("navigation", name="Segments")
    segments.get_by_role("link", name="VIP").click()
    expect(page.get_by_role("heading", name="VIP", level=1)).to_be_visible()
    expect(results.get_by_role("link")).to_have_count(2)
    expect(results.get_by_role("link", name="Ada Lovelace")).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("2 customers")

    # Ad-hoc filters, saved as a segment.
    segments.get_by_role("link", name="All customers").click()
    page.get_by_label("Tag", exact=True).fill("vip")
    page.get_by_label("Reachable on", exact=True).select_option("sms")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("status")).to_have_text("1 customer")
    expect(results.get_by_role("link", name="Rosa Diaz")).to_be_visible()
    page.get_by_label("Name of the new segment").fill("VIPs by SMS")
    screenshot(page, tmp_path, "segments")
    page.get_by_role("button", name="Save as segment").click()
    expect(page.get_by_role("heading", name="VIPs by SMS", level=1)).to_be_visible()
    expect(results.get_by_role("link", name="Rosa Diaz")).to_be_visible()
    expect(segments.get_by_role("link", name="VIPs by SMS")).to_have_attribute(
        "aria-current", "page"
    )
    saved = {s["name"]: s for s in api.get("/v1/segments").json()["items"]}
    assert saved["VIPs by SMS"]["filter"] == {"all": [{"tag": "vip"}, {"channel": "sms"}]}
    assert page.url.endswith(f"/customers?segment={saved['VIPs by SMS']['segment_id']}")
