"""Fixtures of the browser tests: Debian's Chromium driven by Playwright for Python.

``make test`` installs the ``chromium`` package when it is missing (scripts/ensure-chromium.sh);
no browser is downloaded. A page that logs a JavaScript error, or whose script throws, fails
its test; each test saves a screenshot of where it ended in its ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Response, sync_playwright

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, launched through Playwright for the duration of the block."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium for one test. Not for the session: Playwright's sync API keeps an event loop
    running in this thread while it is open, and the suite's asyncio tests need the thread.
    (A module whose tests are all synchronous may override it with one Chromium for the
    module, from :func:`chromium`.)"""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A fresh browser context at 1280x800; JavaScript errors, and assets or requests of
    the page's scripts that fail, fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium also logs every HTTP error status as "Failed to load resource"; a page
        # answered 401 on purpose is not a script error, and failed assets are caught below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            errors.append(f"{response.status} for {response.request.resource_type} {response.url}")

    def on_error(error: Error) -> None:
        errors.append(f"page error: {error.message}")

    opened.on("console", on_console)
    opened.on("pageerror", on_error)
    opened.on("response", on_response)
    try:
        yield opened
        assert not errors, "the page logged JavaScript errors:\n" + "\n".join(errors)
    finally:
        opened.screenshot(path=str(tmp_path / "last.png"))
        context.close()
