"""Writing to a customer where they can be reached, in the console: a reply's "Reply on" offers
the channels that reach the conversation's address (its own channel chosen when usable), and the
customer page's "New conversation" form starts one on a channel an address of theirs reaches."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest

from hub.config import Settings
from tests.console.test_pages import META
from tests.support.api import ADMIN_TOKEN, Api, ago, running_app
from tests.support.console import csrf_of, sign_in


@pytest.fixture
def whatsapp_on(make_settings: Callable[..., Settings]) -> Iterator[Api]:
    """WhatsApp on (its Graph API unreachable: nothing here waits for a send), no quiet hours."""
    settings = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, meta=META, dispatch={"quiet_hours_start": None}
    )
    with running_app(settings) as api:
        yield api


def _select(markup: str, select_id: str) -> list[str]:
    """The options of a select: their tags, one per option."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', markup, re.S)
    assert found, f"no select {select_id}"
    return re.findall(r"<option [^>]*>[^<]*", found.group(1))


def _signed_in_page(api: Api, customer_id: str) -> str:
    assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
    page = api.client.get(f"/customers/{customer_id}")
    assert page.status_code == 200, page.text
    return re.sub(r"\s+", " ", page.text)


def test_an_email_conversation_offers_no_web_chat(whatsapp_on: Api) -> None:
    api = whatsapp_on
    mail = api.record(channel="email", address="email:maria@example.com", subject="Order")
    api.wait_caught_up()
    markup = _signed_in_page(api, mail["customer_id"])
    options = _select(markup, f"channel-{mail['conversation_id']}")
    # Email alone (no connector here, so disabled with its reason); no web chat default.
    assert options == ['<option value="email" disabled>Email (unavailable)']
    assert "Email</strong>: no connector sends on 'email'" in html.unescape(markup)


def test_the_conversations_own_channel_is_the_default(whatsapp_on: Api) -> None:
    api = whatsapp_on
    chat = api.record(channel="whatsapp", address="phone:+4915112340001", occurred_at=ago(5))
    api.wait_caught_up()
    markup = _signed_in_page(api, chat["customer_id"])
    options = _select(markup, f"channel-{chat['conversation_id']}")
    assert options[0].startswith('<option value="whatsapp" selected>')
    assert options[1] == '<option value="sms" disabled>SMS (unavailable)'


def test_a_new_conversation_from_the_customer_page(whatsapp_on: Api) -> None:
    api = whatsapp_on
    first = api.record(channel="whatsapp", address="phone:+4915112340002", occurred_at=ago(5))
    cid = first["customer_id"]
    api.wait_caught_up()
    markup = _signed_in_page(api, cid)
    options = _select(markup, "new-conversation-channel")
    assert options[0].startswith('<option value="sms" disabled>')  # no SMS connector
    assert any(o.startswith('<option value="whatsapp" selected>') for o in options)
    assert "SMS</strong>: no connector sends on 'sms'" in html.unescape(markup)

    path = f"/customers/{cid}"
    refused = api.client.post(
        f"{path}/conversations",
        data={"csrf": csrf_of(api.client, path), "channel": "email", "text": "hi"},
        headers={"x-requested-with": "fetch"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_command"

    started = api.client.post(
        f"{path}/conversations",
        data={
            "csrf": csrf_of(api.client, path),
            "channel": "whatsapp",
            "text": "Your table is ready",
            "key": "k1",
        },
        follow_redirects=False,
    )
    assert started.status_code == 303
    assert started.headers["location"] == path
    api.wait_caught_up()
    [sent] = [m for m in api.messages(cid) if m["direction"] == "outbound"]
    assert sent["text"] == "Your table is ready"
    assert sent["conversation_id"] != first["conversation_id"]
    assert "Your table is ready" in api.client.get(path).text
