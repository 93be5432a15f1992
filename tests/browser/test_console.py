"""The agent console in a real browser (Debian's Chromium through Playwright), against the hub
served by uvicorn on loopback, with an aiosmtpd sink receiving what the hub sends by email.

Each test saves screenshots in its ``tmp_path``; ``HUB_SCREENSHOTS=docs/screenshots`` also
writes the main screens where the README shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from hub.runtime import Runtime
from tests.peers.email_peers import SmtpSink
from tests.peers.twilio_peer import twilio_settings
from tests.support.api import (
    ADMIN,
    LiveServer,
    ago,
    interaction,
    mailing_hub,
    wait_for,
)
from tests.support.browser import screenshot, sign_in

PHONE = "phone:+14155550142"
EMAIL = "email:rosa.diaz@example.org"


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    # SMS is on (nothing is sent by SMS here: the API base URL answers nothing).
    with mailing_hub(
        make_settings, sink.port, twilio=twilio_settings("http://127.0.0.1:9")
    ) as server:
        yield server


@pytest.fixture
def api(hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, headers=ADMIN) as client:
        yield client


def _record(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = api.post("/v1/interactions", json=interaction(**overrides))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _rosa(api: httpx.Client) -> dict[str, Any]:
    """A customer who wrote by SMS and by email (merged), with a conversation on each."""
    sms = _record(
        api,
        address=PHONE,
        contact_name="Rosa Diaz",
        text="Hi! My espresso machine arrived with a cracked tank.",
        occurred_at=ago(90),
    )
    mail = _record(
        api,
        channel="email",
        address=EMAIL,
        provider_message_id="<rosa-1@mail.example.org>",
        subject="Cracked tank, order 5521",
        text="Photos attached. Can you send a replacement tank?",
        occurred_at=ago(30),
        attachments=[{"name": "tank.jpg", "content_type": "image/jpeg", "size": 48213}],
    )
    merged = api.post(
        f"/v1/customers/{sms['customer_id']}/merge",
        json={"customer_id": mail["customer_id"], "reason": "same order number"},
    )
    assert merged.status_code == 200, merged.text
    return {"customer_id": sms["customer_id"], "sms": sms, "email": mail}


def test_sign_in_refuses_a_wrong_token_and_signs_out(page: Page, hub: LiveServer) -> None:
    page.goto(f"{hub.url}/")
    page.get_by_label("Access token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Unknown or revoked token.")
    sign_in(page, hub)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Access token")).to_be_visible()
    page.goto(f"{hub.url}/")
    expect(page.get_by_label("Access token")).to_be_visible()  # the session is gone


def test_queue_search_customer_live_reply_by_email_resolve_reopen(
    page: Page, hub: LiveServer, api: httpx.Client, sink: SmtpSink, tmp_path: Path
) -> None:
    rosa = _rosa(api)
    _record(api, address="phone:+14155550199", contact_name="Tom Baker", text="Where is my refund?")
    sign_in(page, hub)

    queue = page.get_by_role("table")
    expect(queue.get_by_role("link", name="Rosa Diaz")).to_have_count(2)  # SMS and email
    expect(queue.get_by_role("link", name="Tom Baker")).to_be_visible()
    screenshot(page, tmp_path, "queue")
    # A new customer writes: the queue shows them without a reload.
    _record(api, address="phone:+14155550123", contact_name="Ada Live", text="Hello?")
    expect(queue.get_by_role("link", name="Ada Live")).to_be_visible(timeout=10_000)
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Filter").click()
    expect(queue.get_by_role("link", name="Rosa Diaz")).to_have_count(1)
    expect(queue.get_by_role("link", name="Tom Baker")).to_have_count(0)

    # Search by a fragment of the phone number, open the customer.
    page.keyboard.press("/")
    expect(page.get_by_label("Search customers")).to_be_focused()
    page.keyboard.type("555-0142")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Rosa Diaz").click()
    expect(page.get_by_role("heading", name="Rosa Diaz", level=1)).to_be_visible()
    profile = page.get_by_role("complementary", name="Rosa Diaz")
    expect(profile).to_contain_text("+1 415-555-0142")  # formatted for reading
    expect(profile).to_contain_text("rosa.diaz@example.org")
    expect(profile).to_contain_text("America/Los_Angeles")
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("cracked tank")
    expect(timeline).to_contain_text("tank.jpg")
    expect(timeline).to_contain_text("Merged into this customer")

    # A message posted to the API appears without a reload.
    _record(api, address=PHONE, text="Also: the lid is missing.")
    expect(timeline.get_by_text("Also: the lid is missing.")).to_be_visible(timeout=10_000)

    # Reply by email: pending at once, then sent; the SMTP sink has it, threaded.
    email_conversation = page.locator(f"#c-{rosa['email']['conversation_id']}")
    email_conversation.get_by_label("Reply", exact=True).fill(
        "A new tank is on its way; tracking follows by email."
    )
    email_conversation.get_by_role("button", name="Send").click()
    sent = timeline.locator(".item.outbound", has_text="A new tank is on its way")
    expect(sent).to_be_visible(timeout=10_000)
    mail = wait_for(lambda: sink.requests[0] if sink.requests else None)
    assert mail.rcpt_tos == ["rosa.diaz@example.org"]
    assert mail.message["In-Reply-To"] == "<rosa-1@mail.example.org>"
    expect(sent.locator(".tick")).to_have_attribute("aria-label", "sent", timeout=10_000)
    screenshot(page, tmp_path, "customer")

    # An internal note, then resolve and reopen.
    email_conversation.get_by_label("Internal note").fill("Replacement tank ordered: RT-88.")
    email_conversation.get_by_role("button", name="Add note").click()
    expect(timeline.locator(".item-note", has_text="RT-88")).to_be_visible(timeout=10_000)
    email_conversation.get_by_role("button", name="Resolve").click()
    resolved = page.locator(".resolved").get_by_role("button", name="Reopen")
    expect(resolved).to_be_visible()
    resolved.click()
    expect(page.locator(f"#c-{rosa['email']['conversation_id']} .status")).to_have_text("open")
    statuses = [
        i["data"]["status"]
        for i in api.get(f"/v1/customers/{rosa['customer_id']}/timeline").json()["items"]
        if i["kind"] == "status_changed"
    ]
    assert statuses[:2] == ["open", "resolved"]


def test_a_channel_without_consent_says_why_and_nothing_is_sent(
    page: Page, hub: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    rosa = _rosa(api)
    withdrawn = api.put(
        f"/v1/customers/{rosa['customer_id']}/consent",
        json={"channel": "sms", "granted": False},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    sign_in(page, hub)
    page.goto(f"{hub.url}/customers/{rosa['customer_id']}")
    sms = page.locator(f"#c-{rosa['sms']['conversation_id']}")
    expect(sms.locator(".why")).to_contain_text("withdrew consent for sms")
    expect(sms.get_by_role("button", name="Send")).to_be_disabled()
    profile = page.get_by_role("complementary")
    expect(profile.get_by_role("row", name="SMS")).to_contain_text("withdrawn")


def test_scrolling_back_loads_older_pages(page: Page, hub: LiveServer, api: httpx.Client) -> None:
    items = [
        interaction(
            address="phone:+14155550177",
            contact_name="Long Story",
            text=f"message number {n:03d}",
            occurred_at=ago(500 - n),
        )
        for n in range(120)
    ]
    batch = api.post("/v1/interactions/batch", json={"interactions": items})
    assert batch.status_code == 200, batch.text
    customer = batch.json()["results"][0]["customer_id"]
    sign_in(page, hub)
    page.goto(f"{hub.url}/customers/{customer}")
    timeline = page.locator(".timeline")
    expect(timeline.get_by_text("message number 119")).to_be_visible()
    expect(timeline.locator(".item-message")).to_have_count(50)
    page.get_by_role("link", name="Load older").click()
    expect(timeline.locator(".item-message")).to_have_count(100)
    timeline.evaluate("t => t.scrollTop = 0")
    expect(timeline.get_by_text("message number 000")).to_be_attached(timeout=10_000)
    expect(page.get_by_role("link", name="Load older")).to_have_count(0)


def test_a_narrow_window_and_the_keyboard(
    page: Page, hub: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    rosa = _rosa(api)
    page.set_viewport_size({"width": 420, "height": 860})
    sign_in(page, hub)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.goto(f"{hub.url}/customers/{rosa['customer_id']}")
    expect(page.get_by_role("heading", name="Rosa Diaz", level=1)).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, f"the page scrolls sideways at 420 px ({width} px wide)"
    screenshot(page, tmp_path, "narrow")


def test_tags_are_added_and_removed_in_the_profile(
    page: Page, hub: LiveServer, api: httpx.Client
) -> None:
    rosa = _rosa(api)
    sign_in(page, hub)
    page.goto(f"{hub.url}/customers/{rosa['customer_id']}")
    profile = page.get_by_role("complementary")
    profile.get_by_label("Add a tag").fill("vip")
    profile.get_by_role("button", name="Add", exact=True).click()
    expect(profile.locator(".tag")).to_have_text(["vip"])
    profile.get_by_label("Add a tag").fill("espresso")
    profile.get_by_label("Add a tag").press("Enter")
    expect(profile.locator(".tag")).to_have_text(["espresso", "vip"])
    profile.get_by_role("button", name="Remove tag vip").click()
    expect(profile.locator(".tag")).to_have_text(["espresso"])
    shown = api.get(f"/v1/customers/{rosa['customer_id']}").json()
    assert shown["tags"] == ["espresso"]


def test_the_page_says_so_when_its_session_ends_and_stops_listening(
    page: Page, hub: LiveServer, api: httpx.Client
) -> None:
    """Under the Content-Security-Policy: the live feed ends with its session (the token is
    revoked), the page tells the agent, keeps their draft, and raises no script error (a
    reconnecting EventSource would be sent to the sign-in page and log one)."""
    rosa = _rosa(api)
    runtime: Runtime = hub.app.state.runtime
    token_id, token = runtime.tokens.create("agent", "Sam Agent")
    sign_in(page, hub, token)
    response = page.goto(f"{hub.url}/customers/{rosa['customer_id']}")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    draft = page.get_by_role("textbox", name="Internal note").first
    draft.fill("half-written note")
    _record(api, address=PHONE, text="live while signed in")
    expect(page.get_by_text("live while signed in")).to_be_visible(timeout=10_000)

    assert runtime.tokens.revoke(token_id)
    _record(api, address=PHONE, text="after the revocation")
    alert = page.get_by_role("alert").filter(has_text="Your session has ended")
    expect(alert).to_be_visible(timeout=10_000)
    expect(alert.get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", f"/login?next=%2Fcustomers%2F{rosa['customer_id']}"
    )
    page.wait_for_timeout(3000)  # longer than the EventSource's retry: it must not reconnect
    expect(page.get_by_text("after the revocation")).to_have_count(0)
    expect(draft).to_have_value("half-written note")
