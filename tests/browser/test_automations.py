"""The automations pages in Chromium: an admin adds a marketing campaign to a segment and dry-runs
it (who would get which text; who would be skipped and why: no marketing consent), then adds a
birthday rule, sees it listed with its counts and disables it (screenshot "automations")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hub.config import Settings
from tests.peers.twilio_peer import twilio_settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving, wait_for
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    # SMS is on (a dry run sends nothing: the API base URL answers nothing); no quiet hours,
    # so the dry run's outcome does not depend on when the test runs.
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        dispatch={"quiet_hours_start": None},
        twilio=twilio_settings("http://127.0.0.1:9"),
    )
    with serving(settings) as server:
        yield server


def _seed(hub: LiveServer) -> None:
    """Two customers who texted in, one of them with marketing consent on SMS; a template;
    a segment of everyone reachable by SMS."""
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        customers = []
        for n, name in enumerate(("Rosa Diaz", "Tom Baker")):
            body = interaction(address=f"phone:+1415555017{n}", contact_name=name)
            recorded = api.post("/v1/interactions", json=body)
            assert recorded.status_code == 202, recorded.text
            customers.append(recorded.json()["customer_id"])
        wait_for(lambda: all(api.get(f"/v1/customers/{c}").status_code == 200 for c in customers))
        consent = {
            "channel": "sms",
            "granted": True,
            "purposes": ["marketing"],
            "evidence": "ticked the offers box at the counter",
        }
        granted = api.put(f"/v1/customers/{customers[0]}/consent", json=consent)
        assert granted.status_code == 200, granted.text
        template = {
            "default_language": "en",
            "variants": [{"language": "en", "text": "Spring sale, {{ first_name }}: 20% off"}],
        }
        assert api.put("/v1/templates/spring", json=template).status_code == 201
        segment = api.post("/v1/segments", json={"name": "Texting", "filter": {"channel": "sms"}})
        assert segment.status_code == 201, segment.text


def test_dry_run_a_campaign_then_add_and_disable_a_birthday_rule(
    page: Page, hub: LiveServer, tmp_path: Path
) -> None:
    _seed(hub)
    sign_in(page, hub)
    page.get_by_role("link", name="Automations", exact=True).click()
    expect(page.get_by_role("heading", name="Automations", level=1)).to_be_visible()
    expect(page.get_by_text("No rules or campaigns yet.")).to_be_visible()

    page.get_by_label("Kind").select_option(label="Campaign to a segment")
    page.get_by_label("Name", exact=True).fill("Spring sale")
    page.get_by_label("Template").fill("spring")
    page.get_by_label("Channels").fill("sms")
    page.get_by_label("Purpose").select_option("marketing")
    page.get_by_label("Segment (campaigns").select_option(label="Texting")
    page.get_by_label("At (UTC").fill("2030-04-01T09:00+03:00")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("heading", name="Spring sale", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Created.")

    page.get_by_role("button", name="Try it (nothing is sent)").click()
    run = page.get_by_role("region", name="Dry run")
    expect(run).to_contain_text("2 customers; 2 decided")
    rosa = run.get_by_role("row").filter(has_text="Rosa Diaz")
    expect(rosa).to_contain_text("send (sms)")
    expect(rosa).to_contain_text("Spring sale, Rosa: 20% off")
    tom = run.get_by_role("row").filter(has_text="Tom Baker")
    expect(tom).to_contain_text("skip")
    expect(tom).to_contain_text("consent_missing")
    expect(tom).to_contain_text("has not given consent for marketing messages on sms")
    expect(tom).not_to_contain_text("Spring sale, Tom")
    run.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "automations")

    page.get_by_role("link", name="Automations", exact=True).first.click()
    page.get_by_label("Name", exact=True).fill("Birthday greeting")
    page.get_by_label("Template").fill("birthday")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("Created.")
    page.get_by_role("link", name="Automations", exact=True).first.click()
    rows = page.locator(".automation-list tbody tr")
    expect(rows).to_have_count(2)
    birthday = rows.filter(has_text="Birthday greeting")
    expect(birthday.get_by_role("cell")).to_have_text(
        ["Birthday greeting", "date", "active", "0", "0", "0", "0", "0"]
    )

    birthday.get_by_role("link", name="Birthday greeting").click()
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator(".automation-state")).to_have_text("disabled")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    page.get_by_role("link", name="Automations", exact=True).first.click()
    expect(rows.filter(has_text="Birthday greeting").get_by_role("cell").nth(2)).to_have_text(
        "disabled"
    )
