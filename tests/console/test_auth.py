"""The console's sign-in, sessions and form protection, over HTTP (the browser tests drive the
pages themselves): who may sign in, what a session is worth, and what a forged form gets."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import ADMIN_TOKEN, Api, interaction, wait_for
from tests.support.console import csrf_of, sign_in


def _client(api: Api) -> TestClient:
    assert isinstance(api.client, TestClient)
    return api.client


def test_pages_need_a_session_and_sign_in_sets_a_safe_cookie(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    client.cookies.clear()
    first = client.get("/customers?q=ab", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/customers%3Fq%3Dab"

    signed = sign_in(client, ADMIN_TOKEN, "/customers?q=ab")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/customers?q=ab"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert ADMIN_TOKEN not in signed.headers["set-cookie"]  # a session id, not the token
    assert client.get("/").status_code == 200


def test_only_agents_and_admins_sign_in_and_next_stays_on_the_site(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    assert sqlite_api.runtime is not None
    _, service = sqlite_api.runtime.tokens.create("service", "billing")
    refused = sign_in(client, service)
    assert refused.status_code == 401
    assert "agent or admin role" in refused.text
    assert sign_in(client, "nope").status_code == 401
    for target in ["//evil.example", "https://evil.example/", "/\\evil.example"]:
        assert sign_in(client, ADMIN_TOKEN, target).headers["location"] == "/"


def test_a_form_without_the_sessions_csrf_token_changes_nothing(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    recorded = sqlite_api.record(**interaction())
    sqlite_api.wait_caught_up()
    sign_in(client, ADMIN_TOKEN)
    before = sqlite_api.store_position()
    forged = client.post(
        f"/conversations/{recorded['conversation_id']}/status",
        data={"status": "resolved", "csrf": "0" * 32},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "stale_form"
    assert sqlite_api.store_position() == before

    csrf = csrf_of(client, f"/customers/{recorded['customer_id']}")
    done = client.post(
        f"/conversations/{recorded['conversation_id']}/status",
        data={"status": "resolved", "csrf": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert sqlite_api.conversation(recorded["conversation_id"])["status"] == "resolved"


def test_revoking_the_token_ends_its_sessions(sqlite_api: Api) -> None:
    client = _client(sqlite_api)
    assert sqlite_api.runtime is not None
    token_id, token = sqlite_api.runtime.tokens.create("agent", "Sam")
    client.cookies.clear()
    assert sign_in(client, token).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    sqlite_api.runtime.tokens.revoke(token_id)
    wait_for(lambda: client.get("/", follow_redirects=False).status_code == 303, timeout=10)

    csrf_source = TestClient(client.app)
    assert sign_in(csrf_source, ADMIN_TOKEN).status_code == 303
    csrf = csrf_of(csrf_source, "/")
    out = csrf_source.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert csrf_source.get("/", follow_redirects=False).status_code == 303
