"""CSAT surveys through a real hub process, on both runtimes (``hub serve``, and ``hub run all``
on Kafka and PostgreSQL, where the dispatch role's scheduler runs the survey watcher): an
agent resolves a customer's SMS conversation, and the survey goes out through Twilio's API on
loopback once, in the customer's language; the customer's "5" and the message after it are
recorded as the score (naming the agent who resolved it) and its comment, shown on the
customer's timeline; resolving the same conversation again asks nothing more."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.peers.email_peers import SmtpSink
from tests.peers.twilio_peer import TwilioPeer, twilio_env
from tests.support.api import wait_for
from tests.support.hub_process import HubProcess, interaction, run_hub

pytestmark = pytest.mark.e2e

PHONE = "+37060012345"
QUESTION_LT = "Kaip įvertintumėte mūsų pagalbą? Atsakykite 1-5"
TEMPLATE = {
    "default_language": "en",
    "variants": [
        {"language": "en", "text": "How would you rate our help? Reply 1-5"},
        {"language": "lt", "text": QUESTION_LT},
    ],
}


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _twilio_env(twilio: TwilioPeer) -> dict[str, str]:
    return twilio_env(twilio.url) | {"HUB_AUTOMATION__PLAN_INTERVAL_SECONDS": "0.5"}


def _agent(hub: HubProcess, name: str) -> httpx.Client:
    """A client with a new agent token named ``name`` (made by ``hub tokens create``)."""
    created = run_hub("tokens", "create", "--role", "agent", "--name", name, env=hub.child_env())
    assert created.returncode == 0, created.stderr
    match = re.search(r"^token: (\S+)$", created.stdout, re.MULTILINE)
    assert match, created.stdout
    return httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {match[1]}"}, timeout=30
    )


def _feedback(hub: HubProcess, kind: str) -> list[dict[str, Any]]:
    return [e for e in hub.events() if e["type"] == f"feedback.{kind}.v1"]


def _surveys_sent(twilio: TwilioPeer) -> list[dict[str, Any]]:
    return [m for m in twilio.messages if m["body"] == QUESTION_LT]


def _set_status(agent: httpx.Client, conversation: str, status: str) -> None:
    changed = agent.put(f"/v1/conversations/{conversation}/status", json={"status": status})
    assert changed.status_code == 200, changed.text


def test_a_resolved_conversation_is_surveyed_once_and_the_reply_is_its_score(
    hub_server: Callable[..., HubProcess], twilio: TwilioPeer
) -> None:
    hub = hub_server()
    hub.env.update(_twilio_env(twilio))
    hub.start()
    missing = hub.http.put("/v1/survey-policies/csat", json={"enabled": True, "template": "csat"})
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["code"] == "template_missing"
    saved = hub.http.put("/v1/templates/csat", json=TEMPLATE)
    assert saved.status_code in (200, 201), saved.text
    policy = {"enabled": True, "template": "csat", "delay_minutes": 0}
    enabled = hub.http.put("/v1/survey-policies/csat", json=policy)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["enabled"] is True
    agent = _agent(hub, "Ana Agentė")

    first = hub.record(interaction(address=f"phone:{PHONE}", text="Sveiki, kur mano siunta?"))
    customer, conversation = first["customer_id"], first["conversation_id"]
    patched = hub.http.patch(f"/v1/customers/{customer}", json={"language": "lt"})
    assert patched.is_success, patched.text
    answered = agent.post(
        f"/v1/conversations/{conversation}/messages", json={"text": "Siunta jau pakeliui."}
    )
    assert answered.status_code == 202, answered.text
    _set_status(agent, conversation, "resolved")

    (survey,) = wait_for(lambda: _surveys_sent(twilio), timeout=60)
    assert survey["to"] == PHONE
    (requested,) = wait_for(lambda: _feedback(hub, "requested"), timeout=30)
    assert requested["customer_id"] == customer
    assert requested["data"]["conversation_id"] == conversation
    assert requested["data"]["agent"] == "Ana Agentė"

    # The customer answers, and a moment later adds a few words.
    hub.record(interaction(address=f"phone:{PHONE}", text="5", occurred_at=_now()))
    (received,) = wait_for(lambda: _feedback(hub, "received"), timeout=30)
    data = received["data"]
    assert (data["score"], data["via"], data["kind"]) == (5, "reply", "csat")
    assert (data["conversation_id"], data["agent"]) == (conversation, "Ana Agentė")
    assert data["survey_id"] == requested["data"]["survey_id"]
    assert data["message_id"] is not None
    # A bare score does not bring the conversation back to the queue; words after it do.
    hub.wait_caught_up()
    assert agent.get(f"/v1/conversations/{conversation}").json()["status"] == "resolved"
    hub.record(
        interaction(address=f"phone:{PHONE}", text="Labai greitai, ačiū!", occurred_at=_now())
    )
    (commented,) = wait_for(lambda: _feedback(hub, "commented"), timeout=30)
    assert commented["data"]["comment"] == "Labai greitai, ačiū!"
    assert commented["data"]["survey_id"] == data["survey_id"]

    def on_timeline() -> list[dict[str, Any]] | None:
        response = hub.http.get(f"/v1/customers/{customer}/timeline", params={"limit": 200})
        if response.status_code == 404:  # the views lag behind the log
            return None
        assert response.status_code == 200, response.text
        items = [i for i in response.json()["items"] if i["kind"] == "feedback"]
        return items if len(items) == 2 else None

    items = wait_for(on_timeline, timeout=30)
    (score,) = [i for i in items if i["data"].get("score") is not None]
    assert (score["data"]["score"], score["data"]["agent"]) == (5, "Ana Agentė")
    (comment,) = [i for i in items if i["data"].get("comment")]
    assert comment["text"] == "Labai greitai, ačiū!"

    # The customer's comment reopened the conversation: resolving it again asks nothing more.
    hub.wait_caught_up()
    assert agent.get(f"/v1/conversations/{conversation}").json()["status"] == "open"
    _set_status(agent, conversation, "open")
    _set_status(agent, conversation, "resolved")

    def skipped() -> list[dict[str, Any]]:
        return [
            e
            for e in hub.events()
            if e["type"] == "scheduled_message.skipped.v1"
            and e["data"]["code"] == "already_surveyed"
        ]

    (skip,) = wait_for(skipped, timeout=60)
    assert skip["customer_id"] == customer
    time.sleep(1.0)  # nothing more happens
    assert len(_surveys_sent(twilio)) == 1
    assert len(_feedback(hub, "requested")) == 1
    agent.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- the one-click links of an email survey --------------------------------------------------

PUBLIC = "https://hub.example.test"
EMAIL_TEMPLATE = {
    "default_language": "en",
    "variants": [
        {
            "language": "en",
            "channel": "email",
            "email": {
                "subject": "How did we do?",
                "text": "Good: {{ event.survey.links['4'] }}\nBad: {{ event.survey.links['1'] }}",
            },
        }
    ],
}
CLICK = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-User": "?1"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _link(mail: Any, score: str) -> str:
    """The path of the score's link in the survey email (on the hub under test)."""
    body: str = mail.message.get_body(preferencelist=("plain",)).get_content()
    prefix = "Good: " if score == "4" else "Bad: "
    (url,) = [line.removeprefix(prefix) for line in body.splitlines() if line.startswith(prefix)]
    assert url.startswith(f"{PUBLIC}/feedback/"), body
    return url.removeprefix(PUBLIC)


def test_an_email_surveys_link_records_a_persons_click_once(
    hub_server: Callable[..., HubProcess], sink: SmtpSink
) -> None:
    hub = hub_server()
    hub.env.update(
        {
            "HUB_PUBLIC_URL": PUBLIC,
            "HUB_EMAIL__FROM_ADDRESS": "help@support.example.com",
            "HUB_EMAIL__SMTP_HOST": "127.0.0.1",
            "HUB_EMAIL__SMTP_PORT": str(sink.port),
            "HUB_EMAIL__SMTP_SECURITY": "none",
            "HUB_AUTOMATION__PLAN_INTERVAL_SECONDS": "0.5",
        }
    )
    hub.start()
    saved = hub.http.put("/v1/templates/csat-mail", json=EMAIL_TEMPLATE)
    assert saved.status_code in (200, 201), saved.text
    policy = {"enabled": True, "template": "csat-mail", "delay_minutes": 0}
    assert hub.http.put("/v1/survey-policies/csat", json=policy).status_code == 200
    first = hub.record(
        interaction(channel="email", address="email:rasa@example.com", text="Where is it?")
    )
    customer, conversation = first["customer_id"], first["conversation_id"]
    _set_status(hub.http, conversation, "resolved")

    (mail,) = wait_for(lambda: sink.requests, timeout=60)
    assert mail.rcpt_tos == ["rasa@example.com"]
    good, bad = _link(mail, "4"), _link(mail, "1")
    web = httpx.Client(base_url=hub.url, timeout=30)  # no login: the token is the key

    # A scanner or a preview (no sign of a click) sees a button; nothing is recorded.
    scanned = web.get(good)
    assert scanned.status_code == 200, scanned.text
    assert '<form method="post">' in scanned.text
    hub.wait_caught_up()
    assert _feedback(hub, "received") == []

    clicked = web.get(good, headers=CLICK)
    assert clicked.status_code == 200, clicked.text
    assert "comment" in clicked.text
    (received,) = wait_for(lambda: _feedback(hub, "received"), timeout=30)
    data = received["data"]
    assert (data["score"], data["via"], data["conversation_id"]) == (4, "link", conversation)
    assert (received["customer_id"], data["channel"], data["message_id"]) == (
        customer,
        "email",
        None,
    )
    # A form that is not the page's (too many fields) is refused, recording nothing.
    crafted = web.post(good, content="a=1&b=2&c=3&d=4&comment=x", headers=FORM)
    assert crafted.status_code == 400, crafted.text
    commented = web.post(good, data={"comment": "Fast and kind"})
    assert commented.status_code == 200, commented.text
    (words,) = wait_for(lambda: _feedback(hub, "commented"), timeout=30)
    assert words["data"]["comment"] == "Fast and kind"

    # Another score's link afterwards: the first answer stands.
    later = web.get(bad, headers=CLICK)
    assert later.status_code == 200, later.text
    assert "<strong>4</strong>" in later.text
    # A token changed by a character is refused.
    token = good.removeprefix("/feedback/")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    tampered = web.get(f"/feedback/{flipped}", headers=CLICK)
    assert tampered.status_code == 400, tampered.text
    hub.wait_caught_up()
    assert [e["data"]["score"] for e in _feedback(hub, "received")] == [4]
    assert len(_feedback(hub, "commented")) == 1
    web.close()
