"""What the browser tests share: signing in through the console's form, and screenshots
(each saved in the test's ``tmp_path``; ``HUB_SCREENSHOTS=docs/screenshots`` also writes the
page where the README shows it, as ``console-<name>.png``)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.api import ADMIN_TOKEN, LiveServer


def sign_in(page: Page, hub: LiveServer, token: str = ADMIN_TOKEN) -> None:
    page.goto(f"{hub.url}/")
    expect(page).to_have_url(f"{hub.url}/login?next=/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=False)
    target = os.environ.get("HUB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"console-{name}.png"), full_page=False)
