"""The customer page's other new actions in Chromium, on a hub with the sandbox on (so every
channel can send): start a conversation by email, link a phone number with a reason, and
withdraw SMS marketing consent with the agent's note; each one then seen through the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving
from tests.support.browser import sign_in


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    settings = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, dispatch={"quiet_hours_start": None}, sandbox=True
    )
    with serving(settings) as server:
        yield server


def test_new_conversation_link_an_address_and_a_consent_note(page: Page, hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        recorded = api.post(
            "/v1/interactions",
            json=interaction(
                channel="email", address="email:ona@example.lt", contact_name="Ona Petraitė"
            ),
        )
        assert recorded.status_code == 202, recorded.text
        customer = recorded.json()["customer_id"]
        sign_in(page, hub)
        page.goto(f"{hub.url}/customers/{customer}")

        form = page.locator(".new-conversation-form")
        form.get_by_label("Write on").select_option("email")
        form.get_by_label("Subject (email)").fill("Jūsų užsakymas")
        form.get_by_label("Message").fill("Labas, Ona: your parcel is on its way.")
        form.get_by_role("button", name="Start conversation").click()
        expect(page.locator(".timeline")).to_contain_text(
            "your parcel is on its way", timeout=10_000
        )

        page.get_by_label("Email or phone number").fill("+370 612 34567")
        page.get_by_label("Reason for linking").fill("she gave it on the phone")
        page.get_by_role("button", name="Link", exact=True).click()
        expect(page.locator(".identities")).to_contain_text("+370 612 34567")

        consent = page.locator("form.consent-change")
        consent.get_by_label("Channel").select_option("sms")
        consent.get_by_label("Purpose").select_option("marketing")
        consent.get_by_label("Note (evidence)").fill("asked not to get offers, call 2026-12-04")
        consent.get_by_label("Change").select_option("no")
        consent.get_by_role("button", name="Record").click()

        def ledger() -> list[dict[str, object]]:
            found: list[dict[str, object]] = api.get(f"/v1/customers/{customer}/consent").json()[
                "history"
            ]
            return found

        expect(page.locator(".consent-history")).to_contain_text("asked not to get offers")
        last = ledger()[-1]
        assert (last["channel"], last["granted"], last["source"]) == ("sms", False, "agent")
        assert last["evidence"] == "asked not to get offers, call 2026-12-04"
        items = api.get(f"/v1/customers/{customer}/timeline").json()["items"]
        assert any(i["kind"] == "identity_linked" for i in items)
