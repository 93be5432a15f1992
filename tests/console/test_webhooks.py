"""The console's webhooks page (admins): the endpoints with their state, adding one (its secret
shown that once), an endpoint's recent deliveries and its buttons, all plain forms that work
without JavaScript. The browser test (tests/browser/test_webhooks.py) clicks through them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.peers.webhook_receiver import WebhookReceiver
from tests.support.api import ADMIN_TOKEN, Api, running_app, wait_for
from tests.support.console import csrf_of, sign_in
from tests.support.store import SettingsFactory

_SECRET = re.compile(r'<code class="secret" id="webhook-secret">(whsec_[A-Za-z0-9+/=]+)</code>')


#: Loopback receivers are allowed.
WEBHOOKS = {"allow_private_networks": True}


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN, webhooks=WEBHOOKS)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as found:
        yield found


def _text(markup: str) -> str:
    """The page's text as a reader gets it (tags gone, spaces collapsed)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def _add(app: Api, url: str, **fields: str) -> tuple[str, str, httpx.Response]:
    """Post the add form: the new endpoint's id, its secret as the page shows it, the page."""
    csrf = csrf_of(app.client, "/webhook-endpoints")
    added = app.client.post(
        "/webhook-endpoints", data={"csrf": csrf, "url": url, "event_types": "*"} | fields
    )
    assert added.status_code == 200, added.text
    (secret,) = _SECRET.findall(added.text)
    webhook_id = re.search(r'action="/webhook-endpoints/([0-9a-f-]{36})/test"', added.text)
    assert webhook_id
    return webhook_id.group(1), secret, added


def _post(app: Api, path: str, **fields: str) -> httpx.Response:
    csrf = csrf_of(app.client, "/webhook-endpoints")
    return app.client.post(path, data={"csrf": csrf} | fields, follow_redirects=False)


def test_admins_see_the_page_and_agents_do_not(app: Api) -> None:
    assert app.runtime is not None
    home = app.client.get("/")
    assert '<a href="/webhook-endpoints"' in home.text
    page = app.client.get("/webhook-endpoints")
    assert page.status_code == 200
    assert "No endpoints yet." in _text(page.text)
    assert 'href="/webhook-endpoints" aria-current="page"' in page.text
    assert "style=" not in page.text
    assert not re.search(r"\son[a-z]+\s*=", page.text)
    assert "default-src 'self'" in page.headers["content-security-policy"]
    webhook_id, _, _ = _add(app, "http://127.0.0.1:9/hook")

    agent = app.runtime.tokens.create("agent", "ann")[1]
    with httpx.Client(transport=app.client._transport, base_url=str(app.client.base_url)) as other:
        assert sign_in(other, agent).status_code == 303
        assert '<a href="/webhook-endpoints"' not in other.get("/").text
        csrf = csrf_of(other, "/")
        for path in ("/webhook-endpoints", f"/webhook-endpoints/{webhook_id}"):
            assert other.get(path).status_code == 403
        for path in (
            "/webhook-endpoints",
            f"/webhook-endpoints/{webhook_id}",
            f"/webhook-endpoints/{webhook_id}/enabled",
            f"/webhook-endpoints/{webhook_id}/test",
            f"/webhook-endpoints/{webhook_id}/rotate-secret",
            f"/webhook-endpoints/{webhook_id}/redeliver",
            f"/webhook-endpoints/{webhook_id}/delete",
        ):
            refused = other.post(
                path,
                data={"csrf": csrf, "url": "http://127.0.0.1:9/x", "confirm": "yes"},
                follow_redirects=False,
            )
            assert refused.status_code == 403, path
    # nothing changed
    (endpoint,) = app.get("/v1/webhooks").json()["items"]
    assert endpoint["id"] == webhook_id
    assert endpoint["url"] == "http://127.0.0.1:9/hook"
    assert endpoint["enabled"] is True


def test_a_form_without_the_sessions_csrf_token_changes_nothing(app: Api) -> None:
    refused = app.client.post(
        "/webhook-endpoints",
        data={"csrf": "0" * 64, "url": "http://127.0.0.1:9/", "event_types": "*"},
    )
    assert refused.status_code == 403
    assert app.get("/v1/webhooks").json()["items"] == []


def test_add_an_endpoint_and_see_its_secret_once(app: Api) -> None:
    webhook_id, secret, added = _add(
        app,
        "http://127.0.0.1:9/hook",
        event_types="interaction.*, customer.created.v1",
        description="Billing <sync>",
    )
    Webhook(secret)
    assert added.headers["cache-control"] == "no-store"
    assert "copy it now, it is not shown again" in _text(added.text)
    assert "Billing &lt;sync&gt;" in added.text
    endpoint = app.get(f"/v1/webhooks/{webhook_id}").json()
    assert endpoint["event_types"] == ["interaction.*", "customer.created.v1"]
    assert endpoint["description"] == "Billing <sync>"
    # never again: not on its page, not on the list
    for path in (f"/webhook-endpoints/{webhook_id}", "/webhook-endpoints"):
        shown = app.client.get(path)
        assert shown.status_code == 200
        assert secret not in shown.text
        assert "whsec_" not in shown.text
    listed = _text(app.client.get("/webhook-endpoints").text)
    assert "http://127.0.0.1:9/hook Billing <sync> interaction.* customer.created.v1" in listed
    assert "Enabled 0 0 never" in listed


#: Forms the page refuses, with (part of) the reason it gives.
REFUSED: list[tuple[dict[str, str], str]] = [
    ({"url": "ftp://files.example.com/"}, "url: the URL must start with http"),
    ({"url": "https://user:pw@example.com/"}, "credentials"),
    ({"event_types": "nothing.matches.v9"}, "matches no published event type"),
    ({"event_types": " , "}, "name at least one event type"),
    ({"description": "x" * 501}, "description: at most 500 characters"),
    ({"description": "nul \x00"}, "description:"),
]


def test_a_refused_form_comes_back_with_the_reason_and_what_was_typed(app: Api) -> None:
    for fields, reason in REFUSED:
        csrf = csrf_of(app.client, "/webhook-endpoints")
        body = {"csrf": csrf, "url": "http://127.0.0.1:9/typed", "event_types": "*"} | fields
        refused = app.client.post("/webhook-endpoints", data=body)
        assert refused.status_code == 422, refused.text
        (error,) = re.findall(r'<p class="error" role="alert">([^<]*)</p>', refused.text)
        assert reason in html.unescape(error), (fields, error)
        typed = html.escape(fields.get("url", "http://127.0.0.1:9/typed"), quote=True)
        assert f'value="{typed}"' in refused.text
        assert "whsec_" not in refused.text
    assert app.get("/v1/webhooks").json()["items"] == []


def test_ping_rotate_disable_redeliver_and_delete_from_an_endpoints_page(
    app: Api, receiver: WebhookReceiver
) -> None:
    webhook_id, secret, _ = _add(app, receiver.url)
    page = f"/webhook-endpoints/{webhook_id}"

    pinged = _post(app, f"{page}/test")
    assert pinged.status_code == 303
    assert pinged.headers["location"].startswith(f"{page}?ping=")
    shown = _text(app.client.get(pinged.headers["location"]).text)
    assert re.search(r"Test ping: answered 200 in \d+ ms\.", shown), shown
    assert re.search(r"Recent deliveries .* webhook.ping 200 \d+ ms ping", shown), shown
    (request,) = receiver.requests
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    assert Webhook(secret).verify(request.body, headers)["type"] == "webhook.ping"

    rotated = _post(app, f"{page}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    (new_secret,) = _SECRET.findall(rotated.text)
    assert new_secret != secret
    assert "The previous secret also signs until" in _text(rotated.text)
    assert new_secret not in app.client.get(page).text

    disabled = _post(app, f"{page}/enabled", enabled="false")
    assert disabled.status_code == 303
    shown = _text(app.client.get(disabled.headers["location"]).text)
    assert "Disabled: nothing is sent or queued until it is enabled again." in shown
    assert "Status Disabled by an admin since" in shown
    assert "Disabled by an admin" in _text(app.client.get("/webhook-endpoints").text)
    assert app.get(f"/v1/webhooks/{webhook_id}").json()["disabled_reason"] == "admin"
    enabled = _post(app, f"{page}/enabled", enabled="true")
    assert "Status Enabled" in _text(app.client.get(enabled.headers["location"]).text)
    assert app.get(f"/v1/webhooks/{webhook_id}").json()["enabled"] is True

    redelivered = _post(app, f"{page}/redeliver")
    assert redelivered.status_code == 303
    shown = _text(app.client.get(redelivered.headers["location"]).text)
    assert "0 failed events queued again." in shown

    changed = _post(
        app, page, url=receiver.url, event_types="interaction.* conversation.*", description="x"
    )
    assert changed.status_code == 303
    assert "Saved." in _text(app.client.get(changed.headers["location"]).text)
    assert app.get(f"/v1/webhooks/{webhook_id}").json()["event_types"] == [
        "interaction.*",
        "conversation.*",
    ]
    refused = _post(app, page, url="gopher://x", event_types="*")
    assert "error=" in refused.headers["location"]
    assert app.get(f"/v1/webhooks/{webhook_id}").json()["url"] == receiver.url

    unconfirmed = _post(app, f"{page}/delete")
    assert unconfirmed.status_code == 303
    assert "tick the box" in _text(app.client.get(unconfirmed.headers["location"]).text)
    assert app.get(f"/v1/webhooks/{webhook_id}").status_code == 200
    deleted = _post(app, f"{page}/delete", confirm="yes")
    assert deleted.headers["location"] == "/webhook-endpoints?deleted=1"
    assert "The endpoint was deleted" in _text(app.client.get("/webhook-endpoints?deleted=1").text)
    assert app.get(f"/v1/webhooks/{webhook_id}").status_code == 404
    missing = app.client.get(page)
    assert missing.status_code == 404
    assert "No such endpoint" in missing.text


def test_recent_deliveries_show_the_last_attempts(app: Api, receiver: WebhookReceiver) -> None:
    webhook_id, _, _ = _add(app, receiver.url, event_types="interaction.received.v1")
    for _ in range(3):
        app.record(address="phone:+15550190001")

    def attempts() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = app.get(f"/v1/webhooks/{webhook_id}/deliveries").json()[
            "items"
        ]
        return items

    wait_for(lambda: len(attempts()) == 3)
    shown = _text(app.client.get(f"/webhook-endpoints/{webhook_id}").text)
    assert shown.count("interaction.received.v1 200") == 3, shown
    assert "Last success just now" in shown
    listed = _text(app.client.get("/webhook-endpoints").text)
    assert "Enabled 0 0 just now" in listed
