"""The chat widget in Chromium when the hub refuses a message: over the visitor's rate limit
(the widget says so and keeps the message pending, to resend it later) and text the hub
refuses (the message is marked as not sent, and never resent)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.support.api import LiveServer, serving

PENDING = re.compile(r"\bhubchat-pending\b")


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", chat={"messages_per_visitor_per_minute": 1})) as server:
        yield server


def test_the_widget_shows_refusals_and_keeps_what_may_be_resent(
    page: Page, hub: LiveServer
) -> None:
    page.goto(f"{hub.url}/chat/")
    page.get_by_role("button", name="Chat with us").click()
    message = page.get_by_label("Message", exact=True)
    log = page.get_by_role("log", name="Messages")
    status = page.get_by_role("status")

    # Text no store can hold: JSON.stringify sends a lone surrogate as "\ud800".
    page.evaluate("window.HubChat.send('broken \\ud800 text')")
    expect(status).to_contain_text("lone surrogate")
    refused = log.locator("li.hubchat-failed")
    expect(refused).to_have_count(1)
    expect(refused).not_to_have_class(PENDING)

    message.fill("first")
    message.press("Enter")
    expect(log.locator("li", has_text="first")).not_to_have_class(PENDING)
    message.fill("second")
    message.press("Enter")
    expect(status).to_contain_text(re.compile(r"too fast; try again in \d+ s"))
    expect(log.locator("li", has_text="second")).to_have_class(PENDING)
