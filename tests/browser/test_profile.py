"""The profile card in Chromium: an agent edits the name, the time zone and an enum attribute
in place (no reload: the form swaps into the card and the saved card back), with the keyboard,
and sees them saved; Escape puts the card back unchanged. Saves the "profile" and
"profile-edit" screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.api import ADMIN, LiveServer, interaction, wait_for
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=ADMIN) as client:
        yield client


def _customer(api: httpx.Client) -> str:
    recorded = api.post(
        "/v1/interactions",
        json=interaction(
            channel="email",
            address="email:kenji.sato@example.jp",
            contact_name="kenji",
            subject="Order 7731",
            text="Hello, where is my order?",
            source={"source": "newsletter", "campaign": "spring"},
        ),
    )
    assert recorded.status_code == 202, recorded.text
    customer: str = recorded.json()["customer_id"]
    api.put(
        "/v1/attributes/plan",
        json={"type": "enum", "label": "Plan", "values": ["free", "gold", "enterprise"]},
    )
    api.put("/v1/attributes/renewal", json={"type": "date", "label": "Renewal date"})
    wait_for(lambda: api.get(f"/v1/customers/{customer}").status_code == 200)
    return customer


def test_an_agent_edits_the_profile_in_place(
    page: Page, live_server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    customer = _customer(api)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{customer}")
    card = page.locator("#profile-card")
    expect(card.get_by_role("heading", name="kenji", level=1)).to_be_visible()
    page.evaluate("window.notReloaded = true")  # gone if the page reloads

    card.get_by_role("link", name="Edit profile").click()
    expect(page.get_by_label("Name")).to_be_focused()
    page.get_by_label("Name").fill("Kenji Sato")
    page.get_by_label("Time zone", exact=True).fill("asia/tokyo")
    page.get_by_label("Plan").select_option("gold")
    page.get_by_label("Company").fill("Sato Trading KK")
    screenshot(page, tmp_path, "profile-edit")
    page.get_by_label("Company").press("Enter")  # submits, keyboard only

    card = page.locator("#profile-card")
    expect(card.get_by_role("heading", name="Kenji Sato", level=1)).to_be_visible()
    expect(card.locator(".zone")).to_contain_text("Asia/Tokyo")
    expect(card.locator("dd[data-key=plan]")).to_have_text("gold")
    expect(card.locator(".company")).to_have_text("Sato Trading KK")
    expect(card.locator(".source")).to_contain_text("newsletter / spring")
    expect(card.get_by_role("link", name="Edit profile")).to_be_focused()
    assert page.evaluate("window.notReloaded") is True
    # the change is on the timeline, live
    expect(page.locator(".item-profile_updated")).to_contain_text("time zone → Asia/Tokyo")
    shown = api.get(f"/v1/customers/{customer}").json()
    assert (shown["display_name"], shown["time_zone"], shown["attributes"]) == (
        "Kenji Sato",
        "Asia/Tokyo",
        {"plan": "gold"},
    )
    screenshot(page, tmp_path, "profile")

    # Escape leaves the form and puts the card back as it was
    card.get_by_role("link", name="Edit profile").click()
    page.get_by_label("Name").fill("Someone Else")
    page.get_by_label("Name").press("Escape")
    expect(page.locator("#profile-card h1")).to_have_text("Kenji Sato")
    expect(page.get_by_role("link", name="Edit profile")).to_be_focused()
