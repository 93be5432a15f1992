"""Unsubscribe links (RFC 8058) end to end on a live hub: an agent's email reaches the SMTP
sink with ``List-Unsubscribe`` and ``List-Unsubscribe-Post``; a plain HTTP client (no login)
opens the link (a page, nothing changed) and posts the one-click body, which withdraws email
consent for the purpose the mail was sent for, once; a later send for that purpose is refused,
one for another purpose is not. A tampered token is a 4xx page; without a public URL no header
is sent; any string as a token is a 4xx."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from tests.peers.email_peers import SmtpSink
from tests.support.api import (
    ADMIN_TOKEN,
    Api,
    LiveServer,
    assert_error,
    interaction,
    running_app,
    serving,
    smtp_to,
    wait_for,
)

PUBLIC = "https://hub.example.test"
ALICE = "alice@example.org"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def email_hub_settings(
    make_settings: Callable[..., Settings], sink: SmtpSink, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "public_url": PUBLIC,
        "dispatch": {"quiet_hours_start": None},
        "email": smtp_to(sink.port),
        **extra,
    }
    return make_settings("sqlite", **values)


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    with serving(email_hub_settings(make_settings, sink)) as server:
        yield server


@pytest.fixture
def client(hub: LiveServer) -> Iterator[httpx.Client]:
    """A plain HTTP client of the live hub: no token, as a mail client or a browser."""
    with httpx.Client(base_url=hub.url, timeout=10) as plain:
        yield plain


def admin(client: httpx.Client) -> Api:
    return Api(client)


def conversation_with_alice(api: Api) -> tuple[UUID, str]:
    recorded = api.record(
        **interaction(channel="email", address=f"email:{ALICE}", subject="Order", text="Hi")
    )
    return UUID(recorded["customer_id"]), recorded["conversation_id"]


def send(api: Api, sink: SmtpSink, conversation: str, **body: Any) -> tuple[str, EmailMessage]:
    """Reply on the conversation; the message id and the mail the sink received."""
    seen = len(sink.requests)
    response = api.post(
        f"/v1/conversations/{conversation}/messages", json={"text": "Hello", **body}
    )
    assert response.status_code == 202, response.text
    received = wait_for(lambda: sink.requests[seen:])
    return response.json()["message_id"], received[0].message


def link_of(mail: EmailMessage) -> str:
    """The path of the mail's unsubscribe link (its host is the hub's public URL)."""
    header = mail["List-Unsubscribe"]
    assert header is not None
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(https://hub\.example\.test)(/unsubscribe/[A-Za-z0-9_.-]+)>", header)
    assert match is not None, header
    return match.group(2)


def ledger(api: Api) -> list[dict[str, Any]]:
    api.wait_caught_up()
    return [e for e in api.all_events() if e["type"] == "customer.consent_changed.v1"]


def test_one_click_unsubscribe_withdraws_the_purpose_of_the_mail(
    hub: LiveServer, client: httpx.Client, sink: SmtpSink
) -> None:
    api = admin(client)
    cid, conversation = conversation_with_alice(api)
    assert api.runtime is None  # the live hub: everything below goes over HTTP
    mid, mail = send(api, sink, conversation)
    path = link_of(mail)
    assert ALICE not in path

    page = client.get(path)  # a mail scanner or the customer opening the link
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert '<form method="post">' in page.text
    assert "<button" in page.text
    assert "service" in page.text
    assert ALICE not in page.text
    assert ledger(api) == []  # opening it changed nothing

    done = client.post(path, headers=FORM, **ONE_CLICK)  # RFC 8058 one-click
    assert done.status_code == 200, done.text
    assert "Unsubscribed" in done.text
    again = client.post(path, headers=FORM, **ONE_CLICK)
    assert again.status_code == 200
    (line,) = ledger(api)  # once, however often the mail client posts
    assert line["customer_id"] == str(cid)
    assert line["data"]["channel"] == "email"
    assert line["data"]["purposes"] == ["service"]
    assert line["data"]["granted"] is False
    assert line["data"]["message_id"] == mid
    assert line["data"]["reason"] == "unsubscribe_link"

    refused = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "Still?"})
    assert_error(refused, 409, "consent_revoked")


def test_a_marketing_unsubscribe_refuses_later_marketing_but_not_replies(
    make_settings: Callable[..., Settings], sink: SmtpSink
) -> None:
    settings = email_hub_settings(make_settings, sink)
    with running_app(settings) as api:
        cid, conversation = conversation_with_alice(api)
        assert api.runtime is not None
        # An opt-in brought from another system (no double opt-in for imports).
        api.runtime.commands.outbound.change_consent(
            cid, "email", True, purposes=["marketing"], source="import"
        )
        _, mail = send(api, sink, conversation, text="Our spring sale", purpose="marketing")
        path = link_of(mail)
        _, reply_mail = send(api, sink, conversation, text="About your order")
        assert link_of(reply_mail) != path  # each link names its purpose

        # Through the button of the page (a form post, whatever its body).
        done = api.client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200, done.text
        assert "marketing" in done.text

        later = api.post(
            f"/v1/conversations/{conversation}/messages",
            json={"text": "Another sale", "purpose": "marketing"},
        )
        error = assert_error(later, 409, "consent_revoked")
        assert "marketing" in error["message"]
        send(api, sink, conversation, text="Your order shipped")  # service still goes
        lines = [e for e in ledger(api) if e["data"]["reason"] == "unsubscribe_link"]
        assert [line["data"]["purposes"] for line in lines] == [["marketing"]]


def test_a_tampered_or_foreign_token_is_a_4xx_page(
    hub: LiveServer, client: httpx.Client, sink: SmtpSink
) -> None:
    api = admin(client)
    _, conversation = conversation_with_alice(api)
    _, mail = send(api, sink, conversation)
    path = link_of(mail)
    body, _, mac = path.removeprefix("/unsubscribe/").partition(".")
    swapped = "A" if mac[0] != "A" else "B"
    for bad in (
        f"/unsubscribe/{body}.{swapped}{mac[1:]}",  # the signature altered
        f"/unsubscribe/{body[:-2]}.{mac}",  # the payload cut short
        f"/unsubscribe/{body}",  # no signature
        "/unsubscribe/%F0%9F%92%A5",
    ):
        for response in (client.get(bad), client.post(bad, headers=FORM, **ONE_CLICK)):
            assert response.status_code == 400, (bad, response.status_code)
            assert response.headers["content-type"].startswith("text/html")
            assert "not valid" in response.text
    assert ledger(api) == []


def test_an_erased_customer_has_nothing_left_to_unsubscribe(
    hub: LiveServer, client: httpx.Client, sink: SmtpSink
) -> None:
    api = admin(client)
    cid, conversation = conversation_with_alice(api)
    _, mail = send(api, sink, conversation)
    path = link_of(mail)
    erased = api.post(f"/v1/customers/{cid}/erase", json={"reason": "data_subject_request"})
    assert erased.status_code == 200, erased.text
    gone = client.post(path, headers=FORM, **ONE_CLICK)
    assert gone.status_code == 410
    assert "no longer hold" in gone.text


def test_without_a_public_url_no_link_is_sent(
    make_settings: Callable[..., Settings], sink: SmtpSink
) -> None:
    with running_app(email_hub_settings(make_settings, sink, public_url=None)) as api:
        _, conversation = conversation_with_alice(api)
        _, mail = send(api, sink, conversation)
        assert mail["List-Unsubscribe"] is None
        assert mail["List-Unsubscribe-Post"] is None


_PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@_PROPERTY
@given(token=st.text(min_size=1, max_size=300))
@example(token="." * 3)
@example(token="a" * 3000)
@example(token="eyJjIjoiMSJ9.")
def test_any_token_is_a_4xx_never_an_error(sqlite_api: Api, token: str) -> None:
    before = sqlite_api.store_position()
    path = f"/unsubscribe/{quote(token, safe='')}"
    for response in (
        sqlite_api.client.get(path),
        sqlite_api.client.post(path, headers=FORM, **ONE_CLICK),
    ):
        assert 400 <= response.status_code < 500, (token, response.status_code)
    assert sqlite_api.store_position() == before  # nothing recorded
