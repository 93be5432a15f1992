"""Merging from a customer's page in Chromium: find the other customer, the preview, a reason,
the merge; then the member's Unmerge with its reason. Screenshot "customer-merge"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.api import ADMIN, LiveServer, interaction
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


def test_merge_from_the_customer_page_then_unmerge(
    page: Page, live_server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    maria = _record(api, address="phone:+15550107101", contact_name="Maria Lopez")
    other = _record(
        api, channel="email", address="email:m.lopez@example.com", contact_name="M. Lopez"
    )
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{maria}")

    page.get_by_label("Find the other customer").fill("m.lopez")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="M. Lopez").click()
    expect(page.get_by_role("heading", name="Merge preview")).to_be_visible()
    expect(page.locator(".merge-summary")).to_contain_text("Merging M. Lopez into Maria Lopez")
    page.get_by_label("Reason").fill("same person, confirmed on the phone")
    screenshot(page, tmp_path, "customer-merge")
    page.get_by_role("button", name="Merge", exact=True).click()

    expect(page).to_have_url(f"{live_server.url}/customers/{maria}")
    members = page.locator(".members")
    expect(members).to_contain_text("M. Lopez")
    assert api.get(f"/v1/customers/{maria}").json()["merged_customer_ids"] == [other]

    members.get_by_label("Reason to unmerge").fill("two different people")
    members.get_by_role("button", name="Unmerge").click()
    expect(page.locator(".members")).to_have_count(0)
    assert api.get(f"/v1/customers/{maria}").json()["merged_customer_ids"] == []
