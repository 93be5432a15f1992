"""Scheduled messages and reminders on the customer page in Chromium: an agent snoozes a
conversation (pending, the reminder on the timeline), schedules a message for 10:00 in the
customer's time zone, sees it on the timeline as scheduled (screenshot "scheduled"), cancels
it and sees it cancelled."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as server:
        yield server


def test_snooze_schedule_and_cancel_from_the_customer_page(
    page: Page, hub: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        recorded = api.post(
            "/v1/interactions",
            json=interaction(
                address="phone:+4915112345671",
                contact_name="Lena Vogel",
                text="Can I move my appointment?",
            ),
        )
        assert recorded.status_code == 202, recorded.text
    customer = recorded.json()["customer_id"]
    sign_in(page, hub)
    page.goto(f"{hub.url}/customers/{customer}")
    conversation = page.locator("article.conversation")
    expect(conversation.locator(".status")).to_have_text("open")

    # Snooze: pending until then, the reminder on the timeline.
    conversation.get_by_text("Snooze or follow up…").click()
    until = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT09:00")
    conversation.get_by_label("Snooze until").fill(until)
    conversation.get_by_role("button", name="Snooze").click()
    expect(conversation.locator(".status")).to_have_text("pending")
    expect(conversation.locator(".reminders-waiting")).to_contain_text("Snoozed until")
    timeline = page.locator(".timeline")
    expect(timeline.locator(".item-scheduled")).to_contain_text(re.compile("back to the queue"))

    # Schedule a message for tomorrow 10:00 in the customer's zone (the form's default).
    form = page.locator("form.schedule-form")
    expect(form).to_contain_text("the customer's time zone (Europe/Berlin)")
    form.get_by_label("Text", exact=True).fill("See you tomorrow at 10, Lena!")
    form.get_by_label("1st").select_option("whatsapp")
    form.get_by_label("then").first.select_option("sms")
    form.get_by_role("button", name="Schedule").click()
    item = timeline.locator(".item-scheduled").filter(has_text="See you tomorrow at 10, Lena!")
    expect(item).to_contain_text("on WhatsApp, then SMS (service)")
    expect(item.locator(".status")).to_have_text("scheduled")
    page.evaluate("window.scrollTo(0, 0)")  # the page, its timeline at its newest
    screenshot(page, tmp_path, "scheduled")

    item.get_by_role("button", name="Cancel").click()
    expect(item.locator(".status")).to_have_text("cancelled")
    expect(item.get_by_role("button", name="Cancel")).to_have_count(0)
