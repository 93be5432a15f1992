"""Where a customer came from, as each built-in connector tells it (docs/profile.md): the
company endpoint written to (Twilio's ``To``, the mailbox, the WhatsApp number, the Page, the
bot) and, for the web chat, the widget's page (its utm_* parameters and referrer) given in the
``hello``, which the first contact's customer keeps."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hub.connectors.base import WebhookRequest
from hub.connectors.chat.acquisition import page_source
from hub.connectors.email import parse_message
from hub.connectors.meta import MetaConnector, MetaSettings
from hub.connectors.settings import TelegramSettings
from hub.connectors.telegram import TelegramConnector
from hub.connectors.twilio.webhooks import incoming
from hub.events.inbound import endpoint_of
from tests.connectors.chat_widget import Widget, customer_of, message_items
from tests.peers.meta_peer import ACCESS_TOKEN, APP_SECRET, PAGE_ID, VERIFY_TOKEN, whatsapp
from tests.support.api import ADMIN, LiveServer, wait_for


def test_twilio_names_the_number_written_to() -> None:
    fields = {"MessageSid": "SM1", "From": "+15550140001", "To": "+1 (555) 014-9999", "Body": "hi"}
    (item,) = incoming(fields).interactions
    assert item.endpoint == "phone:+15550149999"
    (short_code,) = incoming(fields | {"To": "24273"}).interactions
    assert short_code.endpoint is None  # not a number anyone can map


def test_email_names_the_mailbox_written_to() -> None:
    raw = (
        b"From: Ona <ona@example.org>\r\nTo: Sales Team <Sales@Example.COM>, x@example.com\r\n"
        b"Subject: Hello\r\nMessage-ID: <m1@example.org>\r\n\r\nHi there\r\n"
    )
    (item,) = parse_message(raw, received_at=datetime.now(UTC)).interactions
    assert item.endpoint == "email:sales@example.com"
    delivered = b"Delivered-To: support@example.com\r\n" + raw
    (item,) = parse_message(delivered, received_at=datetime.now(UTC)).interactions
    assert item.endpoint == "email:support@example.com"


def _meta() -> MetaConnector:
    return MetaConnector(
        MetaSettings.model_validate(
            {
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
                "access_token": ACCESS_TOKEN,
                "graph_base_url": "http://127.0.0.1:9",
            }
        )
    )


def _signed(body: dict[str, Any]) -> WebhookRequest:
    raw = json.dumps(body).encode()
    signature = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": f"sha256={signature}"}
    return WebhookRequest("POST", "", "https://hub.example.com/webhooks/meta", headers, {}, raw)


def test_meta_names_the_whatsapp_number_and_the_page_written_to() -> None:
    text = {"from": "16505551234", "id": "wamid.1", "timestamp": "1749416383", "type": "text"}
    body = whatsapp({"messages": [text | {"text": {"body": "hi"}}]})
    (item,) = _meta().handle_webhook(_signed(body)).interactions
    assert item.endpoint == "phone:+15550783881"  # the number's display form, as E.164
    page = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": 1749416383478,
                "messaging": [
                    {
                        "sender": {"id": "6372081836242101"},
                        "recipient": {"id": PAGE_ID},
                        "timestamp": 1749416383478,
                        "message": {"mid": "m_1", "text": "hi"},
                    }
                ],
            }
        ],
    }
    (item,) = _meta().handle_webhook(_signed(page)).interactions
    assert item.endpoint == f"messenger:{PAGE_ID}"


def test_telegram_names_the_bot_written_to() -> None:
    bot = TelegramConnector.__new__(TelegramConnector)  # parsing needs no client
    bot.settings = _telegram_settings()
    update = {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "from": {"id": 4242, "is_bot": False, "first_name": "Ada"},
            "chat": {"id": 4242, "type": "private"},
            "date": 1749416383,
            "text": "hi",
        },
    }
    request = WebhookRequest(
        "POST",
        "",
        "https://hub.example.com/webhooks/telegram",
        {"content-type": "application/json", "x-telegram-bot-api-secret-token": "s3cret-token"},
        {},
        json.dumps(update).encode(),
    )
    (item,) = bot.handle_webhook(request).interactions
    assert item.endpoint == "telegram:7104815527"  # the token's public part, never the secret


def _telegram_settings() -> TelegramSettings:
    return TelegramSettings.model_validate(
        {"bot_token": "7104815527:AAHsecret", "secret_token": "s3cret-token"}
    )


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("phone", "+370 600 00000", "phone:+37060000000"),
        ("email", "Sales@Example.com", "email:sales@example.com"),
        ("messenger", "1234", "messenger:1234"),
        ("phone", "not a number", None),
        ("phone", None, None),
        ("email", "a\x00@example.com", None),
    ],
)
def test_endpoints_are_spelt_as_addresses(
    kind: str, value: str | None, expected: str | None
) -> None:
    assert endpoint_of(kind, value) == expected


# -- the chat widget's page ----------------------------------------------------------------------


def test_the_page_tells_its_utm_parameters_and_the_referrer_without_its_query() -> None:
    source = page_source(
        "https://shop.example/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
        "&other=1",
        "https://blog.example/post/42?token=secret#top",
    )
    assert source is not None
    assert source.model_dump() == {
        "via": "chat_page",
        "source": "newsletter",
        "medium": "email",
        "campaign": "spring",
        "referrer": "https://blog.example/post/42",
    }


@pytest.mark.parametrize(
    ("page", "referrer"),
    [
        ("https://shop.example/", None),  # nothing to tell
        ("https://shop.example/a", "https://shop.example/b?x=1"),  # the site's own page
        ("javascript:alert(1)", "data:text/html,x"),  # no web pages
        (42, ["https://x.example"]),  # not text at all
        ("https://shop.example/?utm_source=" + "x" * 5000, None),  # too long to look at
    ],
)
def test_a_page_that_tells_nothing_usable_gives_no_source(page: object, referrer: object) -> None:
    assert page_source(page, referrer) is None


def test_a_chat_visitors_first_contact_keeps_the_pages_source(
    client: httpx.Client, hub: LiveServer
) -> None:
    tab = Widget(
        hub,
        page="https://shop.example/?utm_source=radio&utm_campaign=spring",
        referrer="https://news.example/story?id=9",
    )
    tab.say("c1", "Hello")
    customer = customer_of(client, f"chat:{tab.welcome['visitor_id']}")

    def source() -> Any:
        found = client.get(f"/v1/customers/{customer['customer_id']}", headers=ADMIN)
        return found.json()["source"]

    assert wait_for(source) == {
        "via": "chat_page",
        "source": "radio",
        "medium": None,
        "campaign": "spring",
        "referrer": "https://news.example/story",
        "endpoint": None,
    }
    tab.close()
    # the same visitor back from another campaign: the first source stays
    again = Widget(hub, token=tab.token, page="https://shop.example/?utm_source=ads")
    again.say("c2", "Me again")
    again.close()
    wait_for(lambda: len(message_items(client, customer["customer_id"])) == 2)
    assert source()["source"] == "radio"
