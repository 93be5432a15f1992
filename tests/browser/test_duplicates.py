"""Duplicate suggestions in Chromium: the review page from the navigation, a merge preview
and its merge, and "not the same person" from a customer's card with its undo (posted in the
background by console.js). Screenshots "duplicates" and "merge-preview"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.api import ADMIN, LiveServer, ago, interaction
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=ADMIN) as client:
        yield client


def _record(api: httpx.Client, **overrides: Any) -> str:
    response = api.post("/v1/interactions", json=interaction(**overrides))
    assert response.status_code == 202, response.text
    customer_id: str = response.json()["customer_id"]
    return customer_id


def _people(api: httpx.Client) -> dict[str, str]:
    found = {
        "ruta_sms": _record(
            api,
            address="phone:+37061234567",
            contact_name="Rūta Jankauskaitė",
            text="Labas, siuntinys dar neatvyko",
            occurred_at=ago(120),
        ),
        "ruta_mail": _record(
            api,
            channel="email",
            address="email:ruta.jankauskaite@pavyzdys.lt",
            contact_name="Ruta Jankauskaite",
            subject="Užsakymas 5521",
            text="Rašiau SMS žinute. Mano tel. +370 612 34567",
            occurred_at=ago(60),
        ),
        "tomas": _record(
            api,
            channel="email",
            address="email:tomas.petraitis@gmail.com",
            contact_name="Tomas Petraitis",
            occurred_at=ago(50),
        ),
        "tomas_tagged": _record(
            api,
            channel="email",
            address="email:tomaspetraitis+shop@gmail.com",
            contact_name="Tomas Petraitis",
            occurred_at=ago(40),
        ),
    }
    for n in (1, 2):
        _record(api, address=f"phone:+44791112345{n}", contact_name="John Smith")
    return found


def test_review_preview_and_merge_a_suggestion(
    page: Page, live_server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    people = _people(api)
    sign_in(page, live_server)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Duplicates").click()
    expect(page.get_by_role("heading", name="Possible duplicates")).to_be_visible()
    pairs = page.locator(".duplicate-queue > li")
    expect(pairs).to_have_count(3)
    expect(pairs.first.locator(".band")).to_contain_text("high")
    expect(pairs.last.locator(".band")).to_contain_text("low")
    screenshot(page, tmp_path, "duplicates")

    ruta = pairs.filter(has_text="Rūta Jankauskaitė")
    expect(ruta).to_contain_text("a message mentions +37061234567")
    ruta.get_by_role("link", name="Preview the merge").click()
    expect(page.get_by_role("heading", name="Merge preview")).to_be_visible()
    channels = page.locator(".merge-channels tbody tr")
    expect(channels).to_have_count(2)
    expect(page.locator(".merge-fields tr.conflict")).to_contain_text("display name")
    screenshot(page, tmp_path, "merge-preview")

    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/customers/{people['ruta_sms']}")
    expect(page.get_by_text("1 other record shown as this customer")).to_be_visible()
    merged = api.get(f"/v1/customers/{people['ruta_mail']}").json()
    assert merged["customer_id"] == people["ruta_sms"]


def test_not_the_same_person_from_the_card_and_undo(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    people = _people(api)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{people['tomas']}")
    card = page.locator(".duplicates-card")
    expect(card.locator(".duplicate-list > li")).to_have_count(1)
    expect(card).to_contain_text("reach one mailbox")

    card.get_by_role("button", name="Not the same person").click()
    expect(card.locator(".duplicate-list")).to_have_count(0)
    expect(card.get_by_text("None found.")).to_be_visible()
    expect(card.locator(".dismissed-list")).to_contain_text("Tomas Petraitis")
    found = api.get(f"/v1/customers/{people['tomas']}/duplicates").json()
    assert found["items"] == []

    card.get_by_role("button", name="Undo").click()
    expect(card.locator(".duplicate-list > li")).to_have_count(1)
    expect(card.locator(".dismissed-list")).to_have_count(0)
