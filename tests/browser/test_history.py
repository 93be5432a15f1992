""" "View as of" in a real browser (Debian's Chromium through Playwright): from an outbound
message's link to the timeline as the hub knew it when it was sent, and the form on the
customer page, read in the agent's own time zone. Screenshot: ``console-history.png``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.api import ADMIN, LiveServer, ago, interaction, wait_for
from tests.support.browser import screenshot, sign_in

PHONE = "phone:+14155550190"


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=ADMIN) as client:
        yield client


def _record(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = api.post("/v1/interactions", json=interaction(address=PHONE, **overrides))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _caught_up(api: httpx.Client) -> datetime:
    """Now, once the views hold everything recorded so far."""

    def ready() -> bool:
        state = api.get("/readyz").json()
        return bool(state["lag"] == 0)

    wait_for(ready)
    return datetime.now(UTC)


def _story(api: httpx.Client) -> dict[str, Any]:
    """Marta asks, the company answers by SMS; later the answer is delivered, the
    conversation resolved, and Marta writes again."""
    asked = _record(
        api, contact_name="Marta Kowalska", text="Is my order 7731 shipped?", occurred_at=ago(30)
    )
    answer = _record(
        api,
        direction="outbound",
        text="Yes, it left our warehouse this morning.",
        occurred_at=ago(20),
    )
    # A whole second after the answer was recorded and before its delivery report: the
    # moment the form can name (a datetime-local input holds whole seconds).
    replied = (_caught_up(api) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (replied - datetime.now(UTC)).total_seconds()) + 0.05)
    delivered = api.post(
        f"/v1/messages/{answer['message_id']}/delivery", json={"status": "delivered"}
    )
    assert delivered.status_code == 200, delivered.text
    resolved = api.put(
        f"/v1/conversations/{asked['conversation_id']}/status", json={"status": "resolved"}
    )
    assert resolved.status_code == 200, resolved.text
    _record(api, text="Got it, thank you!", occurred_at=ago(1))
    _caught_up(api)
    return {"customer_id": asked["customer_id"], "answer": answer, "replied": replied}


def test_an_outbound_message_opens_the_timeline_as_of_its_sending(
    page: Page, live_server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    story = _story(api)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{story['customer_id']}")
    timeline = page.locator(".timeline")
    expect(timeline.get_by_text("Got it, thank you!")).to_be_visible()
    answer = page.locator(f"#item-{story['answer']['message_id']}")
    expect(answer.locator(".tick")).to_have_attribute("title", "delivered")

    answer.get_by_role("link", name="timeline then").click()
    expect(page).to_have_url(re.compile(r"/as-of\?position=[0-9]+#item-"))
    banner = page.get_by_role("status")
    expect(banner).to_contain_text("As the hub knew it on")
    then = page.locator(".timeline")
    expect(then.get_by_text("Yes, it left our warehouse this morning.")).to_be_visible()
    expect(then.get_by_text("Is my order 7731 shipped?")).to_be_visible()
    expect(then.get_by_text("Got it, thank you!")).to_have_count(0)
    expect(page.locator(f"#item-{story['answer']['message_id']} .tick")).to_have_attribute(
        "title", "sent"
    )
    expect(page.locator(".as-of-conversations .status")).to_have_text(["open"])
    screenshot(page, tmp_path, "history")

    page.get_by_role("link", name="Back to now").click()
    expect(page.locator(".timeline").get_by_text("Got it, thank you!")).to_be_visible()


def test_the_form_reads_the_time_in_the_agents_zone(
    browser: Browser, live_server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    story = _story(api)
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Vilnius"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(error.message))
    try:
        sign_in(page, live_server)
        page.goto(f"{live_server.url}/customers/{story['customer_id']}")
        expect(page.locator(".as-of-zone")).to_contain_text("Europe/Vilnius")
        # just after the answer was recorded, before its delivery report: in Vilnius time
        local = story["replied"].astimezone(ZoneInfo("Europe/Vilnius"))
        page.get_by_label("View as of").fill(local.strftime("%Y-%m-%dT%H:%M:%S"))
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("status")).to_contain_text("Europe/Vilnius")
        expect(page.locator(f"#item-{story['answer']['message_id']} .tick")).to_have_attribute(
            "title", "sent"
        )
        expect(page.locator(".timeline").get_by_text("Got it, thank you!")).to_have_count(0)
        # the form on the page keeps the moment, in local time
        expect(page.get_by_label("View as of")).to_have_value(local.strftime("%Y-%m-%dT%H:%M:%S"))
        page.screenshot(path=str(tmp_path / "history-form.png"))
    finally:
        context.close()
    assert not errors
