"""The customer simulator (``/sandbox/``): admins only, absent while the sandbox is off, and
writing back as a customer records an inbound message through the sandbox's signed webhook."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.connectors.sandbox import SandboxConnector
from tests.support.api import ADMIN_TOKEN, Api, running_app, wait_for
from tests.support.console import csrf_of, sign_in
from tests.support.processes import free_port
from tests.support.store import SettingsFactory

MARIA = "phone:+15550101001"


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, sandbox=True)
    with running_app(settings) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


def _sandbox(api: Api) -> SandboxConnector:
    assert api.runtime is not None
    connector = api.runtime.gateway.by_name["sandbox"]
    assert isinstance(connector, SandboxConnector)
    return connector


def _item(api: Api, customer_id: str, text: str) -> dict[str, Any] | None:
    """The item of the customer's timeline whose text holds ``text``, once it is there (the
    views may not have caught up with the customer's first message yet: 404)."""
    timeline = api.get(f"/v1/customers/{customer_id}/timeline")
    if timeline.status_code == 404:
        return None
    items: list[dict[str, Any]] = timeline.json()["items"]
    return next((i for i in items if text in (i.get("text") or "")), None)


def test_absent_while_the_sandbox_is_off(make_settings: SettingsFactory) -> None:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        assert api.client.get("/sandbox/").status_code == 404
        assert "sandbox-badge" not in api.client.get("/").text
        ready = api.client.get("/readyz").json()
        assert "sandbox" not in ready
        assert ready["channels"]["sandbox"] == "off"


def test_admins_only_and_said_everywhere(app: Api) -> None:
    _sandbox(app).world.contact(MARIA, "Maria Garcia (demo)")
    page = app.client.get("/sandbox/")
    assert page.status_code == 200
    assert "Sandbox: simulated customers" in page.text
    assert "Maria Garcia (demo)" in page.text
    assert "sandbox-badge" in app.client.get("/").text
    ready = app.client.get("/readyz").json()
    assert ready["sandbox"] is True
    assert ready["channels"]["sandbox"] == "on"

    assert app.runtime is not None
    agent = app.runtime.tokens.create("agent", "ann")[1]
    with httpx.Client(transport=app.client._transport, base_url=str(app.client.base_url)) as other:
        assert sign_in(other, agent).status_code == 303
        csrf = csrf_of(other, "/")
        assert other.get("/sandbox/").status_code == 403
        queue = other.get("/").text
        assert '<span class="sandbox-badge"' in queue  # told, but not linked to the simulator
        assert 'href="/sandbox/"' not in queue
        refused = other.post(
            "/sandbox/reply",
            data={"csrf": csrf, "address": MARIA, "channel": "sms", "text": "not me"},
            follow_redirects=False,
        )
        assert refused.status_code == 403
    assert not _sandbox(app).world.contacts[MARIA].entries


def test_writing_back_records_an_inbound_message(app: Api) -> None:
    recorded = app.record(channel="sms", address=MARIA, text="Where is my order?")
    _sandbox(app).world.contact(MARIA, "Maria Garcia (demo)")
    csrf = csrf_of(app.client, "/sandbox/")
    answer = app.client.post(
        "/sandbox/reply",
        data={"csrf": csrf, "address": MARIA, "channel": "whatsapp", "text": "It came, thanks!"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert "error" not in answer.headers["location"]

    item = wait_for(lambda: _item(app, recorded["customer_id"], "It came, thanks!"))
    assert (item["channel"], item["direction"]) == ("whatsapp", "inbound")
    page = app.client.get("/sandbox/")
    assert "It came, thanks!" in html.unescape(page.text)


def test_a_channel_that_cannot_reach_the_address_is_refused(app: Api) -> None:
    csrf = csrf_of(app.client, "/")
    answer = app.client.post(
        "/sandbox/reply",
        data={"csrf": csrf, "address": MARIA, "channel": "email", "text": "Hi"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "error=" in answer.headers["location"]
    assert MARIA not in _sandbox(app).world.contacts


def test_an_email_reply_is_a_mail_to_the_hubs_smtp_listener(
    make_settings: SettingsFactory,
) -> None:
    """With the email connector's listener on, the customer's email goes to it (the sandbox
    still sends the hub's email), threaded to what the hub sent."""
    email = {
        "from_address": "support@example.com",
        "listen": f"127.0.0.1:{free_port()}",
        "domains": ["example.com"],
    }
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN, sandbox=True, email=email)
    with running_app(settings) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        recorded = api.record(
            channel="email",
            address="email:maria.garcia@example.net",
            provider_message_id="<maria-1@example.net>",
            subject="Order #1042",
            text="Is it on its way?",
        )
        csrf = csrf_of(api.client, "/sandbox/")
        answer = api.client.post(
            "/sandbox/reply",
            data={
                "csrf": csrf,
                "address": "email:maria.garcia@example.net",
                "channel": "email",
                "text": "Never mind, it came!",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "error" not in answer.headers["location"], answer.headers["location"]

        item = wait_for(lambda: _item(api, recorded["customer_id"], "Never mind"))
        assert item["channel"] == "email"
        assert item["provider_message_id"].endswith("@sandbox.invalid>")  # a mail's Message-ID


def test_an_erasure_empties_the_customers_simulated_phone(app: Api) -> None:
    """The sandbox keeps, in memory, what it sent each simulated address and what the
    customer wrote back: an erasure drops it with everything else (``removed``)."""
    recorded = app.record(channel="sms", address=MARIA, text="Where is my order?")
    world = _sandbox(app).world
    world.contact(MARIA, "Maria Garcia (demo)")
    csrf = csrf_of(app.client, "/sandbox/")
    answer = app.client.post(
        "/sandbox/reply",
        data={"csrf": csrf, "address": MARIA, "channel": "sms", "text": "Žinutė iš Marijos"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    wait_for(lambda: world.contacts[MARIA].entries)
    erased = app.post(
        f"/v1/customers/{recorded['customer_id']}/erase", json={"reason": "data_subject_request"}
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["removed"]["connector_memory"] >= 1
    assert MARIA not in world.contacts
    assert "Žinutė" not in html.unescape(app.client.get("/sandbox/").text)
