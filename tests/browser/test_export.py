"""The console's export button in a real browser: an admin clicks it on a customer's page and
Chromium saves the JSON document as a download."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, wait_for


def test_an_admin_downloads_the_export(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    body = interaction(address="phone:+14155550177", contact_name="Nina Export", text="Hola")
    recorded = httpx.post(f"{live_server.url}/v1/interactions", json=body, headers=ADMIN)
    assert recorded.status_code == 202, recorded.text
    customer = recorded.json()["customer_id"]
    shown = f"{live_server.url}/v1/customers/{customer}"
    wait_for(lambda: httpx.get(shown, headers=ADMIN).status_code == 200)  # projected

    page.goto(f"{live_server.url}/login?next=/customers/{customer}")
    page.get_by_label("Access token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Nina Export")).to_be_visible()
    with page.expect_download() as started:
        page.get_by_role("button", name="Download export (JSON)").click()
    download = started.value

    assert download.suggested_filename == f"customer-{customer}.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["customer_id"] == customer
    assert document["profile"]["display_name"] == "Nina Export"
    assert [i["text"] for c in document["conversations"] for i in c["items"]] == ["Hola"]
