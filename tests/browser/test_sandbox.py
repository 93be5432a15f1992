"""The sandbox loop in Chromium: an agent replies by SMS, the delivery ticks move to read, the
customer simulator (``/sandbox/``) writes back as the customer, and the answer arrives live on
the customer's page. ``HUB_SCREENSHOTS=docs/screenshots`` writes the simulator's page where the
README shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, ago, interaction, serving
from tests.support.browser import screenshot, sign_in

MARIA = "phone:+15550101001"


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    settings = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, dispatch={"quiet_hours_start": None}, sandbox=True
    )
    with serving(settings) as server:
        yield server


def test_reply_ticks_and_the_customer_writes_back_live(
    page: Page, hub: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        recorded = api.post(
            "/v1/interactions",
            json=interaction(
                address=MARIA,
                contact_name="Maria Garcia",
                text="Has my order shipped?",
                occurred_at=ago(5),
            ),
        )
        assert recorded.status_code == 202, recorded.text
    customer = recorded.json()
    sign_in(page, hub)
    expect(page.locator(".sandbox-badge")).to_have_text("sandbox")
    page.goto(f"{hub.url}/customers/{customer['customer_id']}")
    timeline = page.locator(".timeline")
    conversation = page.locator(f"#c-{customer['conversation_id']}")
    conversation.get_by_label("Reply", exact=True).fill("It left on Monday: tracking DEMO123.")
    conversation.get_by_role("button", name="Send").click()
    sent = timeline.locator(".item.outbound", has_text="tracking DEMO123")
    expect(sent).to_be_visible(timeout=10_000)
    expect(sent.locator(".tick")).to_have_attribute("aria-label", "delivered", timeout=10_000)
    expect(sent.locator(".tick")).to_have_attribute("aria-label", "read", timeout=10_000)

    simulator = page.context.new_page()
    simulator.goto(f"{hub.url}/sandbox/")
    expect(simulator.get_by_role("heading", name="Sandbox: simulated customers")).to_be_visible()
    # Maria's phone: the hub's messages to her number, and a form to write back from it.
    phone = simulator.get_by_role("article", name="+15550101001")
    expect(phone).to_contain_text("It left on Monday: tracking DEMO123.")
    phone.get_by_label("Channel").select_option("sms")
    phone.get_by_label("Write as").fill("Got it, thank you!")
    phone.get_by_role("button", name="Send as the customer").click()
    expect(simulator.get_by_role("status")).to_contain_text("Sent as +15550101001")
    expect(simulator.get_by_role("article", name="+15550101001")).to_contain_text(
        "Got it, thank you!"
    )
    screenshot(simulator, tmp_path, "sandbox")

    # The customer's page, open all along, shows the answer without a reload.
    arrived = timeline.locator(".item.inbound", has_text="Got it, thank you!")
    expect(arrived).to_be_visible(timeout=10_000)
