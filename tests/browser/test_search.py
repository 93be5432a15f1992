"""Search in a real browser (Debian's Chromium through Playwright): an agent types a word
without its diacritics in the top search box, sees the customer and the messages that say it
with the word marked, narrows to one channel, and opens the customer of a message.

``HUB_SCREENSHOTS=docs/screenshots`` also writes the page where the README shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, ago, interaction, wait_for
from tests.support.browser import screenshot


def _record(hub: LiveServer, **overrides: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{hub.url}/v1/interactions", json=interaction(**overrides), headers=ADMIN
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_agent_finds_a_message_and_opens_its_customer(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    egle = _record(
        live_server,
        channel="email",
        address="email:egle.zukauskaite@example.lt",
        contact_name="Eglė Žukauskaitė",
        subject="Sudaužyta vaza, užsakymas 4471",
        text="Laba diena, vaza atkeliavo sudaužyta. Prašau pakeisti.",
        occurred_at=ago(120),
    )
    _record(
        live_server,
        address="phone:+37060099999",
        contact_name="Jonas Vazauskas",
        text="Ar dar turite tokią vazą? Norėčiau užsakyti.",
        occurred_at=ago(30),
    )
    _record(
        live_server, address="phone:+37060099998", text="Ačiū, viskas gerai", occurred_at=ago(5)
    )
    found = f"{live_server.url}/v1/search?q=vaza"
    wait_for(lambda: len(httpx.get(found, headers=ADMIN).json()["items"]) == 3)  # projected

    page.goto(f"{live_server.url}/login?next=/")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()

    # "/" focuses the top search box; the word is typed without its diacritics
    page.keyboard.press("/")
    expect(page.get_by_label("Search customers and messages")).to_be_focused()
    page.keyboard.type("vaza")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Search: “vaza”")).to_be_visible()
    customers = page.locator(".found-customers")
    expect(customers.get_by_role("link", name="Jonas Vazauskas")).to_be_visible()
    hits = page.locator(".hit")
    expect(hits).to_have_count(2)  # Jonas's message and Eglė's (its subject marked too)
    expect(hits.first).to_contain_text("Ar dar turite tokią vazą?")
    expect(hits.first.locator("mark")).to_have_text("vazą")
    expect(page.locator(".hit mark", has_text="vaza")).to_have_count(2)
    screenshot(page, tmp_path, "search")

    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Search", exact=True).last.click()
    expect(hits).to_have_count(1)
    expect(page.get_by_label("Channel")).to_have_value("email")

    hits.filter(has_text="atkeliavo sudaužyta").get_by_role("link", name="Eglė Žukauskaitė").click()
    expect(page.get_by_role("heading", name="Eglė Žukauskaitė", level=1)).to_be_visible()
    assert page.url.endswith(f"/customers/{egle['customer_id']}")
    expect(page.locator(".timeline")).to_contain_text("vaza atkeliavo sudaužyta")
