"""The templates pages in Chromium: an admin starts a template with an English variant (version
1), adds a Lithuanian one (version 2), and previews it for a Lithuanian-speaking customer: the
Lithuanian text, its SMS encoding and segments (screenshot "templates")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving, wait_for
from tests.support.browser import screenshot, sign_in

LITHUANIAN = "Labas, {{ first_name }}! Jūsų vizitas rytoj"


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as server:
        yield server


def _lithuanian_customer(hub: LiveServer) -> str:
    """A customer who texted in, with Lithuanian as the profile's language."""
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        recorded = api.post(
            "/v1/interactions",
            json=interaction(address="phone:+37060030001", contact_name="Ona Petraitė"),
        )
        assert recorded.status_code == 202, recorded.text
        customer: str = recorded.json()["customer_id"]
        wait_for(lambda: api.get(f"/v1/customers/{customer}").status_code == 200)
        patched = api.patch(f"/v1/customers/{customer}", json={"language": "lt"})
        assert patched.status_code == 200, patched.text
    return customer


def test_define_a_template_in_two_languages_and_preview_it(
    page: Page, hub: LiveServer, tmp_path: Path
) -> None:
    customer = _lithuanian_customer(hub)
    sign_in(page, hub)
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_role("heading", name="Templates", level=1)).to_be_visible()
    expect(page.get_by_text("No templates yet.")).to_be_visible()

    page.get_by_label("Name").fill("visit-reminder")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name="visit-reminder", level=1)).to_be_visible()
    expect(page.get_by_text("A new template")).to_be_visible()
    page.get_by_label("Description").fill("The day before a visit")
    page.get_by_label("Defaults").fill("first_name = there")
    english = page.get_by_role("group", name="New variant")
    english.get_by_label("Language", exact=True).fill("en")
    english.get_by_label("Text (SMS").fill("Hi {{ first_name }}, your visit is tomorrow")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 1.")
    expect(page.locator(".template-version")).to_contain_text("Version 1,")

    # A variant more is the blank fieldset after the saved one: a new version.
    lithuanian = page.get_by_role("group", name="New variant")
    lithuanian.get_by_label("Language", exact=True).fill("lt")
    lithuanian.get_by_label("Text (SMS").fill(LITHUANIAN)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 2.")
    expect(page.locator(".template-version")).to_contain_text("Versions: 1 · 2")
    expect(page.get_by_role("group", name="Variant 2").get_by_label("Text (SMS")).to_have_value(
        LITHUANIAN
    )

    preview = page.locator(".template-preview-form")
    preview.get_by_label("Customer id").fill(customer)
    preview.get_by_label("Channel").select_option("sms")
    preview.get_by_role("button", name="Preview").click()
    sms = page.get_by_role("article", name="sms")
    expect(sms.locator(".template-text")).to_have_text("Labas, Ona! Jūsų vizitas rytoj")
    # as shown (innerText follows the style): the language code as written, not "Lt"
    expect(sms.get_by_role("heading")).to_contain_text("(lt, version 2)", use_inner_text=True)
    # ū and ų are not in GSM-7: the whole message goes as UCS-2
    expect(sms.locator(".sms-cost")).to_have_text("1 SMS segment, UCS-2, 30 characters")
    screenshot(page, tmp_path, "templates")

    listed = page.get_by_role("link", name="← Templates")
    listed.click()
    row = page.get_by_role("row").filter(has_text="visit-reminder")
    expect(row).to_contain_text("The day before a visit")
    expect(row.get_by_role("cell").nth(3)).to_have_text("2")
