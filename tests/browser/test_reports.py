"""The Reports page in Chromium: an agent opens the dashboard over answered and resolved
conversations; every chart is a labelled image, nothing is fetched from anywhere but the hub,
no script fails, axe-core finds nothing serious, a report downloads as CSV, and in a 360 px
window nothing scrolls sideways (screenshots "reports" and "reports-narrow")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from hub.config import Settings
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, serving, wait_for
from tests.support.browser import screenshot, sign_in
from tests.support.surveys import survey_answered


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with serving(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as server:
        yield server


SOURCES = ({"source": "google", "medium": "cpc"}, {"source": "newsletter"}, None)


def _at(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def _seed(hub: LiveServer) -> None:
    """An SLA policy and, over the last three weeks, conversations on SMS, email and chat,
    answered after a few minutes to a few hours and resolved; the newest still open. The
    customers came from google, a newsletter or nowhere known; two of them ordered; and one
    more, first in touch two months ago, wrote again a month later (a retention cohort)."""
    with httpx.Client(base_url=hub.url, headers=ADMIN) as api:
        policy = {"first_response_minutes": 30, "resolution_minutes": 8 * 60}
        assert api.put("/v1/sla-policies/standard", json=policy).status_code in (200, 201)
        channels = [("sms", "phone:+1415555020{}"), ("email", "email:c{}@example.org")]
        channels.append(("chat", "chat:visitor-{}"))
        conversations = []
        for n in range(9):
            channel, address = channels[n % 3]
            began = 24 * 2.3 * (n + 1)  # hours ago, spread over three weeks
            answer = (5, 20, 45, 90, 240)[n % 5] / 60
            first = interaction(
                channel=channel,
                address=address.format(n),
                occurred_at=_at(began),
                text="Is my order on its way?",
                source=SOURCES[n % 3],
            )
            recorded = api.post("/v1/interactions", json=first)
            assert recorded.status_code == 202, recorded.text
            reply = interaction(
                channel=channel,
                address=address.format(n),
                direction="outbound",
                thread_ref=first["provider_message_id"],  # an email reply stays in its thread
                occurred_at=_at(began - answer),
                text="It is",
            )
            assert api.post("/v1/interactions", json=reply).status_code == 202
            conversations.append(recorded.json()["conversation_id"])
            if n < 2:
                order = {
                    "type": "order.placed",
                    "source": "shop",
                    "source_id": f"order-{n}",
                    "occurred_at": _at(began + 1),
                    "address": address.format(n),
                    "amount": "59.90",
                    "currency": "EUR",
                }
                assert api.post("/v1/activities", json=order).status_code == 201
        for days_ago in (60, 30):
            again = interaction(address="phone:+14155550299", occurred_at=_at(24 * days_ago))
            assert api.post("/v1/interactions", json=again).status_code == 202
        wait_for(
            lambda: all(api.get(f"/v1/conversations/{c}").status_code == 200 for c in conversations)
        )
        for conversation_id in conversations[1:]:
            done = api.put(
                f"/v1/conversations/{conversation_id}/status", json={"status": "resolved"}
            )
            assert done.status_code == 200, done.text

        def resolved() -> bool:
            total: dict[str, Any] = api.get("/v1/reports/resolution").json()["total"]
            return bool(total["resolved"] == 8)

        wait_for(resolved)
        # Surveys answered over the last weeks: CSAT 5, 4 and 2, NPS 9 and 6.
        store = hub.app.state.runtime.store
        for n, (reply, kind) in enumerate((("5", "csat"), ("4", "csat"), ("2", "csat"))):
            asked = datetime.now(UTC) - timedelta(days=3 + 5 * n)
            address = f"phone:+1415555031{n}"
            survey_answered(store, reply, f"S{n}", address=address, asked=asked, kind=kind)
        for n, reply in enumerate(("9", "6")):
            asked = datetime.now(UTC) - timedelta(days=2 + 6 * n)
            address = f"phone:+1415555032{n}"
            survey_answered(store, reply, f"N{n}", address=address, asked=asked, kind="nps")

        def surveyed() -> bool:
            total: dict[str, Any] = api.get("/v1/reports/satisfaction").json()["total"]
            return bool(total["nps_answered"] == 2)

        wait_for(surveyed)


def _agent_token(hub: LiveServer) -> str:
    token: str = hub.app.state.runtime.tokens.create("agent", "lead")[1]
    return token


def _serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (as tests/browser/
    test_accessibility.py checks the other pages)."""
    page.evaluate((files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8"))
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in {"serious", "critical"}]


def test_the_dashboard_of_a_support_lead(page: Page, hub: LiveServer, tmp_path: Path) -> None:
    _seed(hub)
    requested: list[str] = []

    def on_request(request: Request) -> None:
        requested.append(request.url)

    page.on("request", on_request)
    sign_in(page, hub, _agent_token(hub))
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()

    charts = page.locator("svg.chart")
    expect(charts).to_have_count(10)
    for i in range(10):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        expect(chart).to_be_visible()
        expect(chart).to_have_attribute("role", "img")
        title = chart.locator(":scope > title").text_content() or ""
        assert title.strip(), f"chart {i} has no title"
        # its accessible name: the title, then the description
        expect(page.get_by_role("img", name=title.strip())).to_have_count(1)
    expect(page.get_by_text("No data for this period")).to_have_count(0)
    for name in (
        "First response time per period",
        "SLA breach rate per period",
        "Resolution time per period",
        "Conversations per channel",
        "Conversations opened per period",
        "CSAT per period",
        "NPS per period",
        "Retention by monthly cohort",
        "Customers per source",
        "Order value per source (EUR)",
    ):
        expect(page.get_by_role("table", name=name, exact=True)).to_be_visible()
    channels = page.get_by_role("table", name="Conversations per channel", exact=True)
    expect(channels.get_by_role("rowheader", name="Web chat")).to_be_visible()
    sources = page.get_by_role("table", name="Customers per source", exact=True)
    expect(sources.get_by_role("rowheader", name="google")).to_be_visible()
    expect(page.locator("#report-retention rect.chart-cell").first).to_be_visible()

    found = _serious_violations(page)
    assert not found, [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in found]

    page.get_by_label("Period", exact=True).select_option("day")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{hub.url}/reports?from=&to=&period=day&channel=")
    expect(charts).to_have_count(10)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download conversations by channel (CSV)").click()
    saved = download.value.path()
    lines = Path(saved).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "group,opened,resolved,open,answered,reopened"
    assert lines[-1].startswith("total,14,13,1,9,")  # with the 5 surveyed

    page.get_by_label("Period", exact=True).select_option("week")
    page.get_by_role("button", name="Show").click()
    expect(charts).to_have_count(10)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, tmp_path, "reports")
    csat = page.locator("#report-csat")
    csat.scroll_into_view_if_needed()
    expect(csat.get_by_role("img", name="CSAT")).to_be_visible()
    screenshot(page, tmp_path, "reports-satisfaction")

    page.set_viewport_size({"width": 360, "height": 780})
    page.reload()
    expect(charts).to_have_count(10)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.body.scrollWidth, document.body.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways at 360 px: {widths}"
    assert widths[2] <= widths[3], f"the body scrolls sideways at 360 px: {widths}"
    for i in range(10):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360, f"chart {i} overflows: {box}"
    page.locator("#report-first-response").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "reports-narrow")
    page.locator("#report-retention").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "reports-retention-narrow")

    others = [url for url in requested if not url.startswith(f"{hub.url}/")]
    assert not others, f"requests to other hosts: {others}"
    assert any("/reports" in url for url in requested)
