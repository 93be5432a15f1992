"""The chat widget in a real browser: the hub's own ``/chat/`` page with ``/chat/widget.js`` on
it, Chromium talking to the hub's WebSocket, an agent on the API, and an SMTP sink receiving
the verification code."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, mailing_hub, wait_for


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    with mailing_hub(make_settings, sink.port) as server:
        yield server


def _chat_messages(client: httpx.Client) -> list[dict[str, Any]] | None:
    """The chat messages of the one chat visitor of the test, once there are any."""
    found = client.get("/v1/customers", params={"q": "chat:"}, headers=ADMIN).json()["items"]
    if not found:
        return None
    page = client.get(f"/v1/customers/{found[0]['customer_id']}/timeline", headers=ADMIN)
    items = [i for i in page.json()["items"] if i["kind"] == "message"]
    return items or None


def test_a_visitor_chats_in_the_browser_and_proves_an_email(
    page: Page, hub: LiveServer, sink: SmtpSink, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=hub.url)
    try:
        page.goto(f"{hub.url}/chat/")
        toggle = page.get_by_role("button", name="Chat with us")
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        message = page.get_by_label("Message", exact=True)
        expect(message).to_be_focused()
        message.fill("Hello, do you ship to Norway?")
        message.press("Enter")
        log = page.get_by_role("log", name="Messages")
        expect(log.get_by_text("Hello, do you ship to Norway?")).to_be_visible()

        (inbound,) = wait_for(lambda: _chat_messages(client))
        assert inbound["channel"] == "chat"
        assert inbound["data"]["metadata"]["language"] == page.evaluate("navigator.language")
        reply = client.post(
            f"/v1/conversations/{inbound['conversation_id']}/messages",
            json={"text": "We do, in 3 to 5 days."},
            headers={**ADMIN, "Idempotency-Key": "browser-reply"},
        )
        assert reply.status_code == 202, reply.text
        expect(log.get_by_text("We do, in 3 to 5 days.")).to_be_visible(timeout=10_000)

        def delivered() -> bool:
            items = _chat_messages(client) or []
            return any(i["delivery_status"] == "delivered" for i in items)

        wait_for(delivered)

        page.get_by_label("Your email, so we can reach you").fill("ola@example.no")
        page.get_by_role("button", name="Save").click()
        status = page.get_by_role("status")
        expect(status).to_contain_text("We emailed a code to ola@example.no")
        mail = wait_for(lambda: sink.requests[-1] if sink.requests else None)
        code = re.search(r"\d{6}", mail.message["Subject"]).group(0)  # type: ignore[union-attr]
        page.get_by_label("The code we emailed you").fill(code)
        page.get_by_role("button", name="Verify").click()
        expect(status).to_contain_text("ola@example.no is confirmed")
        expect(page.get_by_label("Your email, so we can reach you")).to_be_hidden()
        expect(page.get_by_label("The code we emailed you")).to_be_hidden()
        page.screenshot(path=str(tmp_path / "chat-widget.png"))

        # A reload shows the conversation so far (the visitor token is kept).
        page.reload()
        page.get_by_role("button", name="Chat with us").click()
        expect(log.get_by_text("We do, in 3 to 5 days.")).to_be_visible()
        expect(log.locator("li")).to_have_count(2)
        expect(page.get_by_label("Your email, so we can reach you")).to_be_hidden()

        found = client.get(
            "/v1/customers", params={"address": "email:ola@example.no"}, headers=ADMIN
        )
        identities = {i["address"]: i["verified"] for i in found.json()["items"][0]["identities"]}
        assert identities["email:ola@example.no"] is True
    finally:
        client.close()


def test_escape_closes_the_chat_and_gives_focus_back(page: Page, hub: LiveServer) -> None:
    page.goto(f"{hub.url}/chat/")
    toggle = page.get_by_role("button", name="Chat with us")
    expect(page.get_by_label("The code we emailed you")).to_be_hidden()
    toggle.click()
    expect(page.get_by_label("The code we emailed you")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(page.get_by_label("Message", exact=True)).to_be_hidden()
