"""The console's "why was this sent?": each outbound message of a customer's timeline links to
the lawfulness answer (a page of its own without JavaScript, a fragment when fetched), the
same answer as ``GET /v1/messages/{id}/lawfulness``; messages the customer sent have none."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN_TOKEN, Api, running_app, smtp_to, wait_for
from tests.support.console import sign_in


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[Api]:
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        dispatch={"quiet_hours_start": None},
        email=smtp_to(sink.port),
    )
    with running_app(settings) as api:
        yield api


def test_an_outbound_message_says_why_it_was_sent(hub: Api, sink: SmtpSink) -> None:
    api = hub
    recorded = api.record(channel="email", address="email:kim@example.org", text="Hello?")
    cid, conversation = recorded["customer_id"], recorded["conversation_id"]
    sent = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Hi Kim"})
    mid = sent.json()["message_id"]
    wait_for(lambda: sink.requests)
    answer = wait_for(
        lambda: (b := api.get(f"/v1/messages/{mid}/lawfulness").json())["outcome"] == "sent" and b
    )
    api.wait_caught_up()

    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "ann")
    assert sign_in(api.client, agent).status_code == 303
    customer = api.client.get(f"/customers/{cid}")
    assert customer.status_code == 200
    links = re.findall(r'href="(/messages/[0-9a-f-]+/why)"', customer.text)
    assert links == [f"/messages/{mid}/why"]  # the reply has one, the customer's mail none

    page = api.client.get(links[0])
    assert page.status_code == 200
    assert "<html" in page.text  # a page of its own: it works without JavaScript
    shown = text_of(page.text)
    assert "Why was this sent?" in shown
    assert answer["summary"] in shown
    assert "Purpose service" in shown
    assert "by the default rule (first_contact)" in shown
    assert f"/customers/{cid}#item-{mid}" in page.text

    fragment = api.client.get(links[0], headers={"X-Requested-With": "fetch"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert f'id="why-{mid}"' in fragment.text
    assert 'data-outcome="sent"' in fragment.text

    missing = api.client.get("/messages/0190d7a2-0000-7000-8000-000000000000/why")
    assert missing.status_code == 404


def test_only_those_who_may_act_see_it(hub: Api) -> None:
    api = hub
    recorded = api.record(channel="email", address="email:lee@example.org", text="Hi")
    path = f"/messages/{recorded['message_id']}/why"
    signed_out = api.client.get(path, follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login")
    assert api.runtime is not None
    _, service = api.runtime.tokens.create("service", "crm")
    assert sign_in(api.client, service).status_code != 303  # the console refuses it
    assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
    answer = api.client.get(path)
    assert answer.status_code == 200
    assert "Not sent by the hub: the customer sent this message." in text_of(answer.text)
