"""Survey buttons in the web chat (docs/chat.md, "Survey buttons"): a CSAT or NPS question the
dispatcher sends on the chat reaches the widget with its answer buttons, and a button's answer
is a visitor's message marked as one, whose score the survey records ``via`` button.

The session against an in-memory hub (what a frame carries, what a message records), then the
whole path on a live hub over a real WebSocket: a resolved conversation, the scheduler's CSAT
question, the click, ``feedback.received.v1``. In Chromium: tests/browser/test_chat_survey.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine

from hub.connectors.chat import ChatConnector
from hub.connectors.chat.frames import SURVEY_SCALES, is_choice, survey_of
from hub.connectors.chat.port import ShownMessage
from hub.connectors.chat.session import ChatSession
from hub.domain.surveys import SCALES
from tests.connectors.chat_widget import Widget, customer_of, message_items
from tests.connectors.test_chat_contract import VISITOR, RecordingHub, started
from tests.support.api import ADMIN, LiveServer, wait_for


def _automation(kind: str, source_id: str) -> dict[str, Any]:
    """The hub's own metadata of a scheduled message (``hub.domain.scheduling``)."""
    return {
        "author": None,
        "urgent": False,
        "automation": {
            "occurrence_id": str(uuid.uuid4()),
            "kind": kind,
            "id": source_id,
            "name": "CSAT survey",
            "template": "csat",
            "template_version": 1,
        },
    }


def test_the_chat_knows_the_surveys_scales() -> None:
    assert dict(SURVEY_SCALES) == SCALES


def test_a_survey_question_carries_its_scale_and_nothing_else_does() -> None:
    csat = survey_of({"metadata": _automation("survey", "csat")})
    assert csat == {
        "kind": "csat",
        "min": 1,
        "max": 5,
        "choices": [{"label": str(n), "value": str(n)} for n in range(1, 6)],
    }
    nps = survey_of({"metadata": _automation("survey", "nps")})
    assert nps is not None
    assert (nps["min"], nps["max"]) == (0, 10)
    assert [c["value"] for c in nps["choices"]] == [str(n) for n in range(11)]
    # An agent's reply, a campaign's message, an unknown survey, a body past its retention.
    assert survey_of({"metadata": {"author": "ana", "urgent": False}, "author": "ana"}) is None
    assert survey_of({"metadata": _automation("campaign", str(uuid.uuid4()))}) is None
    assert survey_of({"metadata": _automation("survey", "ces")}) is None
    assert survey_of({"metadata": {}, "body_expired": True}) is None
    assert survey_of({}) is None
    assert is_choice({"metadata": {"survey_choice": True, "language": "en"}})
    assert not is_choice({"metadata": {"survey_choice": "yes"}})
    assert not is_choice({"metadata": {}})


@dataclass(frozen=True)
class Shown:
    """A message as the timeline shows it (``port.ShownMessage``)."""

    item_id: uuid.UUID
    direction: str | None
    text: str | None
    occurred_at: datetime
    provider_message_id: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


class TimelineHub(RecordingHub):
    """The in-memory hub, with a timeline the session reads what it pushes from."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline: dict[uuid.UUID, Shown] = {}

    def messages(self, message_ids: Sequence[uuid.UUID]) -> Mapping[uuid.UUID, ShownMessage]:
        return {i: self.timeline[i] for i in message_ids if i in self.timeline}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
async def connector(engine: Engine) -> AsyncIterator[ChatConnector]:
    c = await started(engine)
    yield c
    await c.stop()


async def _session(connector: ChatConnector) -> tuple[ChatSession, TimelineHub, list[Any]]:
    hub, frames = TimelineHub(), []

    async def send(frame: dict[str, Any]) -> None:
        frames.append(frame)

    session = ChatSession(connector, hub, send, "127.0.0.1")
    _, token = connector.tokens.issue(VISITOR)
    hello = {"type": "hello", "token": token, "language": "nb-NO"}
    assert await session.open(json.dumps(hello)) is None
    assert frames.pop()["type"] == "welcome"
    return session, hub, frames


async def test_the_widget_gets_buttons_with_a_survey_question_only(
    connector: ChatConnector,
) -> None:
    session, hub, frames = await _session(connector)
    now = datetime.now(UTC)
    reply, question, answer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    hub.timeline = {
        reply: Shown(reply, "outbound", "It left today.", now, None, {"metadata": {}}),
        question: Shown(
            question,
            "outbound",
            "How did we do?",
            now,
            None,
            {"metadata": _automation("survey", "csat")},
        ),
        answer: Shown(
            answer,
            "inbound",
            "4",
            now,
            f"{VISITOR}:b1",
            {"metadata": {"language": "nb-NO", "survey_choice": True}},
        ),
    }
    for message_id, direction in ((reply, "outbound"), (question, "outbound"), (answer, "inbound")):
        connector.mailbox.post(VISITOR, message_id, direction)
    sent, waiting = await session._push_once()
    assert (sent, waiting) == (3, False)
    by_id = {f["message_id"]: f for f in frames}
    assert by_id[str(reply)]["survey"] is None
    assert by_id[str(reply)]["choice"] is False
    survey = by_id[str(question)]["survey"]
    assert (survey["kind"], survey["min"], survey["max"]) == ("csat", 1, 5)
    assert [c["label"] for c in survey["choices"]] == ["1", "2", "3", "4", "5"]
    assert by_id[str(answer)]["survey"] is None
    assert (by_id[str(answer)]["choice"], by_id[str(answer)]["client_id"]) == (True, "b1")


async def test_a_button_answer_is_recorded_as_a_message_marked_as_one(
    connector: ChatConnector,
) -> None:
    session, hub, frames = await _session(connector)
    await session.receive(
        json.dumps({"type": "message", "client_id": "b1", "text": "5", "choice": True})
    )
    await session.receive(json.dumps({"type": "message", "client_id": "t1", "text": "5"}))
    await session.receive(
        json.dumps({"type": "message", "client_id": "t2", "text": "thanks", "choice": False})
    )
    assert [f["type"] for f in frames] == ["ack", "ack", "ack"]
    button, typed, words = hub.recorded
    assert (button.text, dict(button.metadata)) == (
        "5",
        {"language": "nb-NO", "survey_choice": True},
    )
    assert dict(typed.metadata) == {"language": "nb-NO"}
    assert dict(words.metadata) == {"language": "nb-NO"}


@pytest.mark.parametrize(
    ("choice", "text"),
    [
        (True, "five"),  # a button sends a score
        (True, "11"),  # of 0 to 10
        (True, " 5"),
        (True, "05"),
        ("true", "5"),  # a boolean
        (1, "5"),
        ({"value": 5}, "5"),
    ],
)
async def test_a_choice_that_is_no_button_score_is_refused(
    connector: ChatConnector, choice: Any, text: str
) -> None:
    session, hub, frames = await _session(connector)
    frame = {"type": "message", "client_id": "b1", "text": text, "choice": choice}
    await session.receive(json.dumps(frame))
    (error,) = frames
    assert (error["type"], error["code"], error["client_id"]) == ("error", "invalid_message", "b1")
    assert not hub.recorded


def _events(client: httpx.Client, kind: str) -> list[dict[str, Any]]:
    page = client.get("/v1/events", params={"after": 0, "limit": 1000}, headers=ADMIN).json()
    return [e for e in page["events"] if e["type"] == kind]


def csat_over_chat(client: httpx.Client) -> None:
    """A CSAT policy asking on the conversation's own channel as soon as it is resolved."""
    template = {
        "default_language": "en",
        "variants": [{"language": "en", "text": "How did we do? Rate us 1 to 5."}],
    }
    assert client.put("/v1/templates/csat", json=template, headers=ADMIN).status_code == 201
    policy = {"enabled": True, "template": "csat", "delay_minutes": 0}
    saved = client.put("/v1/survey-policies/csat", json=policy, headers=ADMIN)
    assert saved.status_code == 200, saved.text


def test_a_click_on_a_survey_button_is_a_score_via_button(
    client: httpx.Client, hub: LiveServer
) -> None:
    csat_over_chat(client)
    tab = Widget(hub)
    tab.say("c1", "Where is my parcel?")
    assert tab.next("message")["survey"] is None
    customer = customer_of(client, f"chat:{tab.welcome['visitor_id']}")
    (first,) = wait_for(lambda: message_items(client, customer["customer_id"]) or None)
    conversation = first["conversation_id"]
    reply = client.post(
        f"/v1/conversations/{conversation}/messages",
        json={"text": "It arrives tomorrow."},
        headers={**ADMIN, "Idempotency-Key": "survey-chat-reply"},
    )
    assert reply.status_code == 202, reply.text
    answered = tab.next("message")
    assert (answered["text"], answered["survey"]) == ("It arrives tomorrow.", None)
    resolved = client.put(
        f"/v1/conversations/{conversation}/status", json={"status": "resolved"}, headers=ADMIN
    )
    assert resolved.status_code == 200, resolved.text

    question = tab.next("message", timeout=20)
    assert (question["direction"], question["text"]) == (
        "outbound",
        "How did we do? Rate us 1 to 5.",
    )
    survey = question["survey"]
    assert (survey["kind"], survey["min"], survey["max"]) == ("csat", 1, 5)
    assert [c["value"] for c in survey["choices"]] == ["1", "2", "3", "4", "5"]
    tab.send(type="received", message_id=question["message_id"])

    tab.send(type="message", client_id="b1", text="4", choice=True)
    ack = tab.next("ack")
    echo = tab.next("message")
    assert (echo["text"], echo["choice"], echo["client_id"]) == ("4", True, "b1")

    (received,) = wait_for(lambda: _events(client, "feedback.received.v1"), timeout=20)
    data = received["data"]
    assert (data["kind"], data["score"], data["via"]) == ("csat", 4, "button")
    assert data["conversation_id"] == conversation
    assert data["message_id"] == ack["message_id"]
    # The answer stays a message of the conversation, marked as a button's.
    items = {i["item_id"]: i for i in message_items(client, customer["customer_id"])}
    assert items[ack["message_id"]]["data"]["metadata"]["survey_choice"] is True
    tab.close()


def test_a_typed_score_is_still_a_reply(client: httpx.Client, hub: LiveServer) -> None:
    csat_over_chat(client)
    tab = Widget(hub)
    tab.say("c1", "Hi")
    customer = customer_of(client, f"chat:{tab.welcome['visitor_id']}")
    (first,) = wait_for(lambda: message_items(client, customer["customer_id"]) or None)
    resolved = client.put(
        f"/v1/conversations/{first['conversation_id']}/status",
        json={"status": "resolved"},
        headers=ADMIN,
    )
    assert resolved.status_code == 200, resolved.text
    while tab.next("message", timeout=20)["survey"] is None:
        pass
    tab.say("t1", "5 stars, thanks")
    (received,) = wait_for(lambda: _events(client, "feedback.received.v1"), timeout=20)
    assert (received["data"]["score"], received["data"]["via"]) == (5, "reply")
    tab.close()
