"""Email end to end through the embedded hub: a customer's mail arrives at the hub's SMTP
listener, the agent replies, the reply reaches an SMTP sink threaded to the customer's mail,
and the customer's answer to the reply joins the same conversation. A hub that only sends
email (no listener, no mailbox) is ready."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import ADMIN_TOKEN, running_app, smtp_to, wait_for
from tests.support.processes import free_port, wait_for_port

DOMAIN = "support.example.com"


def email_settings(
    make_settings: Callable[..., Settings], sink: SmtpSink, **email: Any
) -> Settings:
    return make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        dispatch={"quiet_hours_start": None},
        email=smtp_to(sink.port, DOMAIN, **email),
    )


def mail(message_id: str, text: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.org>"
    message["To"] = f"help@{DOMAIN}"
    message["Subject"] = headers.pop("subject", "Order 1234")
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


def test_a_reply_by_email_is_threaded_and_the_answer_joins_the_conversation(
    make_settings: Callable[..., Settings], sink: SmtpSink
) -> None:
    port = free_port()
    settings = email_settings(make_settings, sink, listen=f"127.0.0.1:{port}", domains=[DOMAIN])
    with running_app(settings) as api:
        wait_for_port("127.0.0.1", port, timeout=10)  # the listener binds once the app started
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "alice@example.org",
                [f"help@{DOMAIN}"],
                mail("<first@mail.example.org>", "Where is my order?"),
            )
        api.wait_caught_up()
        customer = api.get("/v1/customers", params={"address": "email:alice@example.org"})
        (found,) = customer.json()["items"]
        (first,) = api.messages(found["customer_id"])
        conversation = first["conversation_id"]

        reply = api.post(
            f"/v1/conversations/{conversation}/messages", json={"text": "It ships today."}
        )
        assert reply.status_code == 202, reply.text
        received = wait_for(lambda: sink.requests)[0]
        headers = received.message
        assert received.rcpt_tos == ["alice@example.org"]
        assert headers["In-Reply-To"] == "<first@mail.example.org>"
        assert "<first@mail.example.org>" in headers["References"]
        assert headers["Subject"] == "Order 1234"
        sent_id = headers["Message-ID"]

        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "alice@example.org",
                [f"help@{DOMAIN}"],
                mail(
                    "<second@mail.example.org>",
                    "Thanks!",
                    subject="Re: Order 1234",
                    In_Reply_To=sent_id,
                    References=f"<first@mail.example.org> {sent_id}",
                ),
            )
        api.wait_caught_up()
        messages = api.messages(found["customer_id"])
        assert len(messages) == 3
        assert {m["conversation_id"] for m in messages} == {conversation}
        ours = next(m for m in messages if m["direction"] == "outbound")
        assert ours["provider_message_id"] == sent_id


def test_a_hub_that_only_sends_email_is_ready(
    make_settings: Callable[..., Settings], sink: SmtpSink
) -> None:
    with running_app(email_settings(make_settings, sink)) as api:
        api.wait_caught_up()
        assert api.readiness()["channels"]["email"] == "on"
