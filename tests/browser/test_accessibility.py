"""axe-core in Chromium on the console's main pages (and the surveys form) and the chat
widget: no violation whose impact is serious or critical.

axe.min.js comes from the ``axe-playwright-python`` wheel (a dev extra). It is evaluated in the
page rather than added as a ``<script>`` tag: the console's Content-Security-Policy runs no
inline script, and the test checks the pages as they are served.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from hub.config import Settings
from tests.browser.conftest import chromium
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, interaction, mailing_hub
from tests.support.browser import sign_in

AXE_SCRIPT = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module (its tests are all synchronous)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A hub that replies by email, with a customer who wrote by SMS and one by email."""
    data = tmp_path_factory.mktemp("a11y")
    sink = SmtpSink().start()
    try:
        with mailing_hub(lambda _b, **kw: Settings(data_dir=data, **kw), sink.port) as server:
            for overrides in (
                {"address": "phone:+14155550142", "contact_name": "Rosa Diaz"},
                {
                    "channel": "email",
                    "address": "email:tom@example.org",
                    "contact_name": "Tom Baker",
                },
            ):
                response = httpx.post(
                    f"{server.url}/v1/interactions",
                    json=interaction(text="My tank arrived cracked.", **overrides),
                    headers=ADMIN,
                )
                assert response.status_code == 202, response.text
            yield server
    finally:
        sink.stop()


def _serious_violations(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE_SCRIPT)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in BLOCKING]


def _assert_accessible(page: Page) -> None:
    found = _serious_violations(page)
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n"
        + "".join(f"    {node['target']} {node['failureSummary']}\n" for node in v["nodes"])
        for v in found
    )
    assert not found, f"axe-core found serious or critical violations on {page.url}:\n{report}"


def test_sign_in_page(page: Page, hub: LiveServer) -> None:
    page.goto(f"{hub.url}/login")
    expect(page.get_by_label("Access token")).to_be_visible()
    _assert_accessible(page)


def test_queue(page: Page, hub: LiveServer) -> None:
    sign_in(page, hub)
    expect(page.get_by_role("link", name="Rosa Diaz")).to_be_visible()
    _assert_accessible(page)
    page.keyboard.press("?")  # the list of keyboard shortcuts, a modal dialog
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    _assert_accessible(page)


def test_surveys_page(page: Page, hub: LiveServer) -> None:
    sign_in(page, hub)
    page.goto(f"{hub.url}/surveys")
    expect(page.get_by_label("Send CSAT surveys")).to_be_visible()
    _assert_accessible(page)


def test_customer_page(page: Page, hub: LiveServer) -> None:
    sign_in(page, hub)
    page.get_by_role("link", name="Tom Baker").click()  # email: the reply box is enabled
    expect(page.get_by_label("Reply", exact=True)).to_be_enabled()
    _assert_accessible(page)


def test_chat_widget_page(page: Page, hub: LiveServer, tmp_path: Path) -> None:
    page.goto(f"{hub.url}/chat/")
    _assert_accessible(page)  # closed
    page.get_by_role("button", name="Chat with us").click()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    _assert_accessible(page)  # open
