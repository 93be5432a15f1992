"""What protects the console in the browser (issue 13, item 7): the security headers of its
responses, the sign-in form's CSRF token, and attachment links limited to http and https."""

from __future__ import annotations

import hashlib
import hmac
import re
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.console.shared import LOGIN_COOKIE, SESSION_COOKIE
from hub.projections.timeline import timeline_items
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import csrf_of, sign_in


def _client(api: Api) -> TestClient:
    assert isinstance(api.client, TestClient)
    return api.client


def _csp(value: str) -> dict[str, str]:
    directives = (d.strip().partition(" ") for d in value.split(";"))
    return {name: rest for name, _, rest in directives}


def _assert_secured(headers: object, what: str) -> None:
    assert hasattr(headers, "get")
    csp = _csp(headers.get("content-security-policy") or "")
    assert csp.get("default-src") == "'self'", what
    assert csp.get("script-src") == "'self'", what  # no 'unsafe-inline', no other origin
    assert csp.get("style-src") == "'self'", what
    assert csp.get("frame-ancestors") == "'none'", what
    assert csp.get("base-uri") == "'none'", what
    assert csp.get("form-action") == "'self'", what
    assert csp.get("object-src") == "'none'", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "same-origin", what


def test_every_console_response_carries_the_security_headers(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    client.cookies.clear()
    customer = sqlite_api.record()["customer_id"]
    sqlite_api.wait_caught_up()
    _assert_secured(client.get("/", follow_redirects=False).headers, "the sign-in redirect")
    _assert_secured(client.get("/login").headers, "the sign-in page")
    assert sign_in(client, ADMIN_TOKEN).status_code == 303
    for path in (
        "/",
        "/customers?q=ab",
        f"/customers/{customer}",
        "/customers/00000000-0000-7000-8000-000000000000",  # the 404 page
        "/?before=nope",  # the 400 error answer
        "/console/static/console.js",
        "/console/static/console.css",
        "/console/static/favicon.svg",
    ):
        response = client.get(path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
        _assert_secured(response.headers, path)
    with client.stream("GET", f"/customers/{customer}/live") as live:
        _assert_secured(live.headers, "the live feed")


def test_console_pages_have_no_inline_script_or_style(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    customer = sqlite_api.record()["customer_id"]
    sqlite_api.wait_caught_up()
    pages = [client.get("/login").text]
    assert sign_in(client, ADMIN_TOKEN).status_code == 303
    pages += [client.get(p).text for p in ("/", "/customers?q=ab", f"/customers/{customer}")]
    for page in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # only <script src=...>
        assert not re.search(r"\son[a-z]+\s*=", page)  # no onclick=...
        assert "style=" not in page
        assert "<style" not in page
        assert "javascript:" not in page
        assert 'href="data:' not in page


# -- signing in needs the form's CSRF token -----------------------------------------------------


def _login_form(client: TestClient) -> str:
    return csrf_of(client, "/login")


@pytest.mark.parametrize("csrf", [None, "", "0" * 32, "wrong"])
def test_a_sign_in_without_the_forms_csrf_token_is_refused(
    sqlite_api: Api, csrf: str | None
) -> None:
    client = _client(sqlite_api)
    client.cookies.clear()
    _login_form(client)  # the pre-session cookie is there; the token sent is not its one
    data = {"token": ADMIN_TOKEN, "next": "/"} | ({"csrf": csrf} if csrf is not None else {})
    refused = client.post("/login", data=data, follow_redirects=False)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "This sign-in form has expired or came from another site" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    assert client.get("/", follow_redirects=False).status_code == 303  # still signed out
    # The page it answers with is a working form: signing in from it goes through.
    retry = re.search(r'name="csrf" value="([0-9a-f]+)"', refused.text)
    assert retry
    signed = client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "next": "/", "csrf": retry.group(1)},
        follow_redirects=False,
    )
    assert signed.status_code == 303


def test_a_cross_site_sign_in_without_the_pre_session_cookie_is_refused(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    csrf = _login_form(client)  # a token the attacker read from their own copy of the form
    client.cookies.clear()  # the victim's browser holds no (or another) pre-session cookie
    forged = client.post(
        "/login", data={"token": ADMIN_TOKEN, "csrf": csrf}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert SESSION_COOKIE not in forged.cookies


def test_a_planted_pre_session_cookie_does_not_give_away_its_token(sqlite_api: Api) -> None:
    """Someone who can set a cookie on the hub's origin (a sibling subdomain, plain http)
    chooses the pre-session value; the form's token is keyed by the hub's own key too, so
    they still cannot compute it."""
    client = _client(sqlite_api)
    client.cookies.clear()
    planted = "attacker-chosen-pre-session"
    client.cookies.set(LOGIN_COOKIE, planted, path="/login")
    guessed = hmac.new(planted.encode(), b"console-csrf", hashlib.sha256).hexdigest()[:32]
    forged = client.post(
        "/login", data={"token": ADMIN_TOKEN, "csrf": guessed}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert SESSION_COOKIE not in forged.cookies
    # The hub's own form for that same cookie carries a token the attacker did not guess.
    assert _login_form(client) != guessed


def test_the_pre_session_cookie_is_scoped_and_replaced_by_the_session(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    client.cookies.clear()
    form = client.get("/login")
    cookie = form.headers["set-cookie"].lower()
    assert cookie.startswith(f"{LOGIN_COOKIE}=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/login" in cookie
    signed = sign_in(client, ADMIN_TOKEN)
    assert signed.status_code == 303
    assert any(
        c.startswith(f"{LOGIN_COOKIE}=") and "max-age=0" in c.lower()
        for c in signed.headers.get_list("set-cookie")
    )


# -- attachment links ---------------------------------------------------------------------------


def test_an_attachment_url_that_is_not_http_is_shown_but_not_linked(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    recorded = sqlite_api.record(
        attachments=[
            {
                "name": "safe.pdf",
                "content_type": "application/pdf",
                "size": 10,
                "url": "https://files.example.com/safe.pdf",
            },
            {
                "name": "evil.html",
                "content_type": "text/html",
                "size": 10,
                "url": "https://files.example.com/evil.html",
            },
            {
                "name": "data.html",
                "content_type": "text/html",
                "size": 10,
                "url": "https://files.example.com/data.html",
            },
        ]
    )
    sqlite_api.wait_caught_up()
    # Intake refuses such URLs now; events recorded before it did still hold them, and the
    # timeline shows what the events say.
    assert sqlite_api.runtime is not None
    t, message_id = timeline_items, UUID(recorded["message_id"])
    with sqlite_api.runtime.store.views_engine.begin() as conn:
        data = conn.scalar(select(t.c.data).where(t.c.item_id == message_id))
        assert data is not None
        data["attachments"][1]["url"] = "javascript:alert(document.cookie)"
        data["attachments"][2]["url"] = "data:text/html,<script>alert(1)</script>"
        conn.execute(t.update().where(t.c.item_id == message_id).values(data=data))
    assert sign_in(client, ADMIN_TOKEN).status_code == 303
    page = client.get(f"/customers/{recorded['customer_id']}").text
    assert '<a href="https://files.example.com/safe.pdf"' in page
    assert "javascript:" not in page
    assert "data:text/html" not in page
    assert "evil.html" in page
    assert "data.html" in page
