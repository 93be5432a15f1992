"""The end-to-end story of the connectors issue, on the embedded hub served by uvicorn:

one person writes by SMS (a Twilio webhook), then by WhatsApp from the same phone (a Meta
webhook), then by email (to the hub's SMTP listener), then in the chat widget, giving that
email and proving it with the code mailed to it. The agent, who reads in her email that the
phone is hers too, merges the two customers the traffic alone could not prove to be one. Then
every address leads to one customer with one timeline of all of it, and the agent's email
reply reaches the SMTP sink threaded to her last email.

Every peer is real and on loopback; every webhook is signed as the provider signs it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from hub.config import Settings
from tests.api.test_email_replies import mail
from tests.connectors.chat_widget import Widget
from tests.peers.email_peers import SmtpSink
from tests.peers.meta_peer import APP_SECRET, VERIFY_TOKEN, WA_PHONE_ID, whatsapp
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    incoming_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, serving, smtp_to, wait_for
from tests.support.processes import free_port, wait_for_port

PUBLIC = "https://hub.example.test"
DOMAIN = "support.example.com"
PHONE = "+14155552671"
EMAIL = "alice@example.org"


@pytest.fixture(params=["sqlite", "postgres"])
def hub(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], sink: SmtpSink
) -> Iterator[tuple[LiveServer, int]]:
    smtp_port = free_port()
    settings = make_settings(
        request.param,
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        dispatch={"quiet_hours_start": None},
        twilio=twilio_settings("http://127.0.0.1:9"),  # nothing is sent by SMS in the story
        meta={
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "access_token": "EAAGm0PX4ZCpsBAstory",
            "graph_base_url": "http://127.0.0.1:9",
            "whatsapp_phone_number_id": WA_PHONE_ID,
        },
        email=smtp_to(sink.port, DOMAIN, listen=f"127.0.0.1:{smtp_port}", domains=[DOMAIN]),
    )
    with serving(settings) as server:
        wait_for_port("127.0.0.1", smtp_port, timeout=10)
        yield server, smtp_port


def _customer(client: httpx.Client, address: str) -> dict[str, Any] | None:
    found = client.get("/v1/customers", params={"address": address}, headers=ADMIN)
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items[0] if items else None


def _messages(client: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/customers/{customer_id}/timeline", params={"limit": 200}, headers=ADMIN)
    assert page.status_code == 200, page.text
    return [i for i in page.json()["items"] if i["kind"] == "message"]


def test_one_person_on_four_channels_is_one_customer_with_one_timeline(
    hub: tuple[LiveServer, int], sink: SmtpSink
) -> None:
    server, smtp_port = hub
    client = httpx.Client(base_url=server.url)
    try:
        _story(server, smtp_port, client, sink)
    finally:
        client.close()


def _story(server: LiveServer, smtp_port: int, client: httpx.Client, sink: SmtpSink) -> None:
    # 1. An SMS, through Twilio's webhook.
    params = incoming_params("Hi, my parcel has not arrived", "SM" + "1" * 32, sender=PHONE)
    sms = client.post(
        "/webhooks/twilio/sms",
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(
                AUTH_TOKEN, PUBLIC + "/webhooks/twilio/sms", params
            ),
        },
    )
    assert sms.status_code == 200, sms.text

    # 2. WhatsApp from the same phone, through Meta's webhook (its times are in whole
    # seconds: a second later, so that it sorts after the SMS).
    time.sleep(1.0)
    body = json.dumps(
        whatsapp(
            {
                "contacts": [{"profile": {"name": "Alice"}, "wa_id": PHONE[1:]}],
                "messages": [
                    {
                        "from": PHONE[1:],
                        "id": "wamid.HBgLMTQxNTU1NTI2NzEVAgASGBQzQTk5",
                        "timestamp": str(int(time.time())),
                        "type": "text",
                        "text": {"body": "Any news on my parcel?"},
                    }
                ],
            }
        )
    ).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    wa = client.post(
        "/webhooks/meta",
        content=body,
        headers={"content-type": "application/json", "x-hub-signature-256": f"sha256={signature}"},
    )
    assert wa.status_code == 200, wa.text
    phone_customer = wait_for(lambda: _customer(client, f"phone:{PHONE}"))

    # 3. Two emails in one thread, to the hub's SMTP listener.
    with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
        smtp.sendmail(
            EMAIL,
            [f"help@{DOMAIN}"],
            mail("<a1@mail.example.org>", "Parcel 1234 is late.\n\nAlice\n+1 415 555 2671"),
        )
        smtp.sendmail(
            EMAIL,
            [f"help@{DOMAIN}"],
            mail(
                "<a2@mail.example.org>",
                "Still nothing today.",
                subject="Re: Order 1234",
                In_Reply_To="<a1@mail.example.org>",
                References="<a1@mail.example.org>",
            ),
        )
    email_customer = wait_for(lambda: _customer(client, f"email:{EMAIL}"))
    assert email_customer["customer_id"] != phone_customer["customer_id"]

    # 4. The chat widget: a message, then the email, proven by the mailed code.
    tab = Widget(server, origin=PUBLIC)  # a page of the hub's own public origin
    visitor = tab.welcome["visitor_id"]
    tab.say("m1", "I wrote to you by email as well")
    tab.send(type="identify", email=EMAIL, name="Alice")
    assert tab.next("identity")["code_sent"] is True
    code_mail = wait_for(lambda: [m for m in sink.requests if "code" in m.message["Subject"]])[0]
    code = re.search(r"\b(\d{6})\b", code_mail.message["Subject"]).group(1)  # type: ignore[union-attr]
    tab.send(type="verify", code=code)
    assert tab.next("identity")["merged"] is True
    tab.close()

    # 5. The agent merges the phone's customer into the email's.
    merge = client.post(
        f"/v1/customers/{email_customer['customer_id']}/merge",
        json={
            "customer_id": phone_customer["customer_id"],
            "reason": "her email signature gives this phone number",
        },
        headers=ADMIN,
    )
    assert merge.status_code == 200, merge.text

    # One customer, whichever address the agent looks up, with one timeline of everything.
    def one_customer() -> dict[str, Any] | None:
        found = [
            _customer(client, a) for a in (f"phone:{PHONE}", f"email:{EMAIL}", f"chat:{visitor}")
        ]
        ids = {f["customer_id"] for f in found if f}
        return found[0] if ids == {email_customer["customer_id"]} else None

    customer = wait_for(one_customer)
    identities = {i["address"]: i["verified"] for i in customer["identities"]}
    assert identities == {f"phone:{PHONE}": False, f"email:{EMAIL}": True, f"chat:{visitor}": False}
    timeline = wait_for(
        lambda: ((m := _messages(client, customer["customer_id"])) and len(m) == 5 and m) or None
    )
    assert [(m["channel"], m["text"]) for m in reversed(timeline)] == [
        ("sms", "Hi, my parcel has not arrived"),
        ("whatsapp", "Any news on my parcel?"),
        ("email", "Parcel 1234 is late.\n\nAlice\n+1 415 555 2671"),
        ("email", "Still nothing today."),
        ("chat", "I wrote to you by email as well"),
    ]

    # 6. The agent replies by email: threaded to her last email at the SMTP sink.
    conversation = next(m for m in timeline if m["channel"] == "email")["conversation_id"]
    reply = client.post(
        f"/v1/conversations/{conversation}/messages",
        json={"text": "Your parcel is with the courier; it arrives tomorrow."},
        headers={**ADMIN, "Idempotency-Key": "story-reply"},
    )
    assert reply.status_code == 202, reply.text
    (delivered,) = wait_for(lambda: [m for m in sink.requests if m.message["In-Reply-To"]])
    assert delivered.rcpt_tos == [EMAIL]
    assert delivered.message["In-Reply-To"] == "<a2@mail.example.org>"
    assert delivered.message["References"].split() == [
        "<a1@mail.example.org>",
        "<a2@mail.example.org>",
    ]
    assert "arrives tomorrow" in delivered.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
