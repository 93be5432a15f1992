"""The console's keyboard shortcuts (hub/console/static/keys.js) in Chromium: j/k through the
queue and Enter to open, r/n to the reply and note boxes, e to resolve through the resolve
form, ? for the list of shortcuts (a modal dialog Escape closes), and none while typing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from hub.config import Settings
from tests.browser.conftest import chromium
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN, LiveServer, ago, interaction, mailing_hub
from tests.support.browser import sign_in


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module (its tests are all synchronous)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("keys")
    sink = SmtpSink().start()
    try:
        with mailing_hub(lambda _b, **kw: Settings(data_dir=data, **kw), sink.port) as server:
            yield server
    finally:
        sink.stop()


def _write(hub: LiveServer, name: str, minutes_ago: float) -> None:
    """An email from ``name`` (replies go by email, so the reply box is enabled)."""
    response = httpx.post(
        f"{hub.url}/v1/interactions",
        json=interaction(
            channel="email",
            address=f"email:{name.lower()}@example.org",
            contact_name=name,
            text="Where is my parcel?",
            occurred_at=ago(minutes_ago),
        ),
        headers=ADMIN,
    )
    assert response.status_code == 202, response.text


def _has_focus_ring(locator: Locator) -> bool:
    return bool(locator.evaluate("e => getComputedStyle(e).outlineStyle !== 'none'"))


def test_j_k_walk_the_queue_enter_opens_and_r_n_e_act_on_the_conversation(
    page: Page, hub: LiveServer
) -> None:
    for n, name in enumerate(["Ada", "Ben", "Cleo"]):  # the queue lists Cleo, Ben, Ada
        _write(hub, name, minutes_ago=30 - n)
    sign_in(page, hub)
    page.wait_for_load_state()  # keys.js has run
    queue = page.get_by_role("table")
    links = {name: queue.get_by_role("link", name=name) for name in ["Ada", "Ben", "Cleo"]}
    for key, name in [("j", "Cleo"), ("j", "Ben"), ("j", "Ada"), ("j", "Ada"), ("k", "Ben")]:
        page.keyboard.press(key)
        expect(links[name]).to_be_focused()
    assert _has_focus_ring(links["Ben"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Ben", level=1)).to_be_visible()
    conversation = page.locator("article.conversation")

    page.wait_for_load_state()  # keys.js has run
    page.keyboard.press("r")
    reply = conversation.get_by_label("Reply", exact=True)
    expect(reply).to_be_focused()
    page.keyboard.type("ok j k e n ?")  # typing: no shortcut fires
    expect(reply).to_have_value("ok j k e n ?")
    expect(reply).to_be_focused()
    page.keyboard.press("Tab")  # to Send: out of the field, still in the conversation
    page.keyboard.press("n")
    note = conversation.get_by_label("Internal note")
    expect(note).to_be_focused()

    page.keyboard.press("Tab")  # to "Add note"
    page.keyboard.press("Control+e")  # a modifier: not a shortcut
    page.keyboard.press("e")
    expect(page.locator(".resolved").get_by_role("button", name="Reopen")).to_be_visible()
    expect(page.get_by_text("No open conversation.")).to_be_visible()


def test_question_mark_lists_the_shortcuts_and_escape_closes_them(
    page: Page, hub: LiveServer
) -> None:
    sign_in(page, hub)
    page.wait_for_load_state()
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    search = page.get_by_label("Search customers and messages")
    page.keyboard.press("/")
    expect(search).to_be_focused()
    page.keyboard.type("?")  # typed into the search box, no dialog
    expect(search).to_have_value("?")
    expect(help_dialog).to_be_hidden()

    search.blur()
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Resolve it")
    expect(help_dialog.get_by_role("button", name="Close")).to_be_focused()
    page.keyboard.press("j")  # behind a modal dialog nothing moves
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    # The header's button opens it too, from the keyboard.
    opener = page.get_by_role("button", name="Keyboard shortcuts")
    opener.focus()
    page.keyboard.press("Enter")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("Enter")  # on Close
    expect(help_dialog).to_be_hidden()
    expect(opener).to_be_focused()
