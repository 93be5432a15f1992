"""Survey buttons of the chat widget in Chromium, on a 360 px wide phone: an agent resolves the
visitor's conversation, the CSAT question arrives with its buttons ("1 out of 5" ... "5 out of
5"), the visitor picks one with the keyboard, the buttons are disabled, and the hub records the
score via button (the protocol: tests/connectors/test_chat_surveys.py). The eleven buttons of
an NPS question, from a scripted socket (planning NPS takes a period)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from hub.config import Settings
from hub.connectors.chat.frames import survey_of
from tests.browser.test_accessibility import AXE_SCRIPT, BLOCKING
from tests.connectors.test_chat_surveys import csat_over_chat
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, serving, wait_for

QUESTION = "How did we do? Rate us 1 to 5."


@pytest.fixture
def hub(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    settings = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, dispatch={"quiet_hours_start": None}
    )
    with serving(settings) as server:
        yield server


def _feedback(client: httpx.Client) -> list[dict[str, Any]]:
    page = client.get("/v1/events", params={"after": 0, "limit": 1000}, headers=ADMIN).json()
    return [e for e in page["events"] if e["type"] == "feedback.received.v1"]


def _chat_conversation(client: httpx.Client) -> str | None:
    found = client.get("/v1/customers", params={"q": "chat:"}, headers=ADMIN).json()["items"]
    if not found:
        return None
    page = client.get(f"/v1/customers/{found[0]['customer_id']}/timeline", headers=ADMIN)
    items = [i for i in page.json()["items"] if i["kind"] == "message"]
    return str(items[0]["conversation_id"]) if items else None


def _serious_violations(page: Page) -> list[str]:
    page.evaluate(AXE_SCRIPT)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def test_a_visitor_answers_a_survey_with_a_button(
    page: Page, hub: LiveServer, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    client = httpx.Client(base_url=hub.url)
    try:
        csat_over_chat(client)
        page.goto(f"{hub.url}/chat/")
        page.get_by_role("button", name="Chat with us").click()
        message = page.get_by_label("Message", exact=True)
        message.fill("My order arrived, thanks!")
        message.press("Enter")
        log = page.get_by_role("log", name="Messages")
        conversation = wait_for(lambda: _chat_conversation(client))
        resolved = client.put(
            f"/v1/conversations/{conversation}/status", json={"status": "resolved"}, headers=ADMIN
        )
        assert resolved.status_code == 200, resolved.text

        question = log.locator("li", has_text=QUESTION)
        expect(question).to_be_visible(timeout=20_000)
        group = question.get_by_role("group", name="Your rating, from 1 to 5")
        buttons = group.get_by_role("button")
        expect(buttons).to_have_count(5)
        names = [b.get_attribute("aria-label") for b in buttons.all()]
        assert names == [f"{n} out of 5" for n in range(1, 6)]
        # Every button within the panel, nothing scrolls sideways at 360 px.
        panel = page.get_by_role("region", name="Chat with us").bounding_box()
        assert panel is not None
        for button in buttons.all():
            box = button.bounding_box()
            assert box is not None
            assert panel["x"] <= box["x"]
            assert box["x"] + box["width"] <= panel["x"] + panel["width"]
            assert box["height"] >= 24, box  # WCAG 2.5.8's minimum target
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert not _serious_violations(page)
        page.screenshot(path=str(tmp_path / "chat-survey.png"))

        # With the keyboard: to the first button, three tabs on, Enter.
        group.get_by_role("button", name="1 out of 5").focus()
        for _ in range(3):
            page.keyboard.press("Tab")
        four = group.get_by_role("button", name="4 out of 5")
        expect(four).to_be_focused()
        page.keyboard.press("Enter")

        expect(log.locator("li.hubchat-in", has_text="4")).to_be_visible()
        expect(log.locator("li.hubchat-in.hubchat-pending")).to_have_count(0)
        for button in buttons.all():
            expect(button).to_be_disabled()
        expect(four).to_have_attribute("aria-pressed", "true")
        expect(message).to_be_focused()  # the next message is the score's comment

        (received,) = wait_for(lambda: _feedback(client), timeout=20)
        data = received["data"]
        assert (data["kind"], data["score"], data["via"]) == ("csat", 4, "button")
        assert data["conversation_id"] == conversation
        assert not _serious_violations(page)
        page.screenshot(path=str(tmp_path / "chat-survey-answered.png"))

        # A reload shows the question with its buttons, disabled: it was answered.
        page.reload()
        page.get_by_role("button", name="Chat with us").click()
        expect(question).to_be_visible()
        expect(log.locator("li.hubchat-in", has_text="4")).to_be_visible()
        for button in buttons.all():
            expect(button).to_be_disabled()
    finally:
        client.close()


def test_the_eleven_nps_buttons_fit_a_phone(page: Page, hub: LiveServer) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    survey = survey_of({"metadata": {"automation": {"kind": "survey", "id": "nps"}}})
    question = {
        "type": "message",
        "seq": 1,
        "message_id": str(uuid.uuid4()),
        "direction": "outbound",
        "text": "How likely are you to recommend us to a friend?",
        "at": "2026-05-04T10:00:00+00:00",
        "author": None,
        "client_id": None,
        "survey": survey,
        "choice": False,
    }
    received: list[dict[str, Any]] = []

    def scripted_hub(ws: WebSocketRoute) -> None:
        def answer(text: str | bytes) -> None:
            frame = json.loads(text)
            received.append(frame)
            if frame["type"] == "hello":
                welcome = {"type": "welcome", "token": "t", "visitor_id": "v", "resumed": False}
                ws.send(json.dumps(welcome | {"verification": False, "email": None}))
                ws.send(json.dumps(question))
            elif frame["type"] == "message":
                ack = {"type": "ack", "client_id": frame["client_id"], "duplicate": False}
                ws.send(json.dumps(ack | {"message_id": str(uuid.uuid4())}))

        ws.on_message(answer)

    page.route_web_socket(re.compile(r".*/chat/ws$"), scripted_hub)
    page.goto(f"{hub.url}/chat/")
    page.get_by_role("button", name="Chat with us").click()
    group = page.get_by_role("group", name="Your rating, from 0 to 10")
    buttons = group.get_by_role("button")
    expect(buttons).to_have_count(11)
    assert [b.get_attribute("aria-label") for b in buttons.all()] == [
        f"{n} out of 10" for n in range(11)
    ]
    panel = page.get_by_role("region", name="Chat with us").bounding_box()
    assert panel is not None
    rows = set()
    for button in buttons.all():
        box = button.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= panel["x"] + panel["width"]
        rows.add(round(box["y"]))
    assert len(rows) == 2, rows
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert not _serious_violations(page)

    group.get_by_role("button", name="10 out of 10").click()
    for button in buttons.all():
        expect(button).to_be_disabled()
    wait_for(lambda: any(f["type"] == "message" for f in received))
    (sent,) = [f for f in received if f["type"] == "message"]
    assert (sent["text"], sent["choice"]) == ("10", True)
