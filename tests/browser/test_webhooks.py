"""The webhooks page in Chromium: an admin adds an endpoint, sees its secret once, sends a test
ping to a loopback receiver and sees it among the deliveries with a recorded interaction
(screenshot "webhooks")."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook

from hub.config import Settings
from tests.peers.webhook_receiver import WebhookReceiver
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving, wait_for
from tests.support.browser import screenshot, sign_in

#: Loopback receivers are allowed.
WEBHOOKS = {"allow_private_networks": True}


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", admin_token=ADMIN_TOKEN, webhooks=WEBHOOKS)) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as found:
        yield found


def test_add_an_endpoint_see_its_secret_once_and_ping_it(
    page: Page, hub: LiveServer, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    sign_in(page, hub)
    page.get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Event types").fill("interaction.*")
    page.get_by_label("Description").fill("Helpdesk bot")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("heading", name=receiver.url, level=1)).to_be_visible()
    secret_box = page.locator("#webhook-secret")
    expect(secret_box).to_have_text(re.compile(r"^whsec_"))
    secret = secret_box.inner_text()
    expect(page.get_by_text("copy it now, it is not shown again")).to_be_visible()

    # shown once: neither the list nor the endpoint's page has it
    page.get_by_role("link", name="← Webhooks").click()
    row = page.get_by_role("row").filter(has_text=receiver.url)
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("Helpdesk bot")
    expect(page.locator("#webhook-secret")).to_have_count(0)
    row.get_by_role("link", name=receiver.url).click()
    expect(page.locator("#webhook-secret")).to_have_count(0)

    page.get_by_role("button", name="Send test ping").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Test ping: answered 200"))
    deliveries = page.locator(".webhook-attempts tbody tr")
    expect(deliveries.first).to_contain_text("webhook.ping")
    (request,) = receiver.requests
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    assert Webhook(secret).verify(request.body, headers)["type"] == "webhook.ping"

    # an interaction recorded meanwhile is delivered and listed too
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        recorded = api.post("/v1/interactions", json=interaction(contact_name="Rosa Diaz"))
        assert recorded.status_code == 202, recorded.text
    wait_for(lambda: len(receiver.requests) == 2)
    page.reload()
    expect(deliveries).to_have_count(2)
    expect(deliveries.first).to_contain_text("interaction.received.v1")
    expect(deliveries.first).to_contain_text("delivered")
    screenshot(page, tmp_path, "webhooks")
