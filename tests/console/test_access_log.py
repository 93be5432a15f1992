"""The access log in the console: the customer page, its older items, its live feed and the
search page each leave an entry with the session's token as the principal (one per page or
feed opened, not per item pushed); admins see the customer's recent entries on the page,
agents do not. Against a real uvicorn server, as a browser reads the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from hub.runtime import Runtime
from tests.console.test_live import feed
from tests.support.api import ADMIN, ADMIN_TOKEN, LiveServer, interaction, wait_for
from tests.support.console import sign_in


@pytest.fixture
def runtime(live_server: LiveServer) -> Runtime:
    found: Runtime = live_server.app.state.runtime
    return found


def _client(server: LiveServer, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert sign_in(client, token).status_code == 303
        yield client


@pytest.fixture
def agent(live_server: LiveServer, runtime: Runtime) -> Iterator[tuple[str, httpx.Client]]:
    """An agent's token id and a client signed in with it."""
    token_id, token = runtime.tokens.create("agent", "desk 3")
    yield from ((str(token_id), c) for c in _client(live_server, token))


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    yield from _client(live_server, ADMIN_TOKEN)


def _record(server: LiveServer, **overrides: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/interactions", json=interaction(**overrides), headers=ADMIN, timeout=10
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _visible(server: LiveServer, customer_id: str) -> None:
    """Wait until the views show the customer (the 200 reads it once, through the API)."""
    url = f"{server.url}/v1/customers/{customer_id}"
    wait_for(lambda: httpx.get(url, headers=ADMIN).status_code == 200)


def _entries(runtime: Runtime, customer_id: str) -> list[tuple[str, str, str, int]]:
    found, _ = runtime.access_log.entries([UUID(customer_id)], limit=100)
    return [
        (e.action, str(e.principal_id), e.principal_name, e.items)
        for e in found
        if e.action.startswith("console:")
    ]


def test_each_console_read_leaves_one_entry(
    live_server: LiveServer, runtime: Runtime, agent: tuple[str, httpx.Client]
) -> None:
    agent_id, client = agent
    first = _record(live_server, address="phone:+15550143001", contact_name="Ruta Kazlauskiene")
    _record(live_server, address="phone:+15550143001", text="and again")
    customer = first["customer_id"]
    _visible(live_server, customer)

    assert client.get("/search", params={"q": "Kazlausk"}).status_code == 200
    page = client.get(f"/customers/{customer}")
    assert page.status_code == 200
    shown = len(re.findall(r'<li id="item-', page.text))
    timeline = httpx.get(
        f"{live_server.url}/v1/customers/{customer}/timeline", params={"limit": 1}, headers=ADMIN
    ).json()
    older = client.get(f"/customers/{customer}/items", params={"before": timeline["next_cursor"]})
    assert older.status_code == 200
    with feed(client, f"/customers/{customer}/live?after=0") as live:
        _record(live_server, address="phone:+15550143001", text="while watching")
        live.wait_for("event: item")
        _record(live_server, address="phone:+15550143001", text="and more")
        live.wait_for("event: item")

    entries = _entries(runtime, customer)
    assert entries == [
        ("console:live_feed", agent_id, "desk 3", 0),
        ("console:older_items", agent_id, "desk 3", len(re.findall(r'<li id="item-', older.text))),
        ("console:customer_page", agent_id, "desk 3", shown),
        ("console:search", agent_id, "desk 3", 1),
    ]
    assert shown >= 2
    assert entries[1][3] >= 2  # the older items: all but the newest
    assert "Kazlausk" not in str(entries)


def test_admins_see_the_customers_access_log_and_agents_do_not(
    live_server: LiveServer, agent: tuple[str, httpx.Client], admin: httpx.Client
) -> None:
    _, agent_client = agent
    customer = _record(live_server, address="phone:+15550143002")["customer_id"]
    _visible(live_server, customer)

    as_agent = agent_client.get(f"/customers/{customer}")
    assert as_agent.status_code == 200
    assert "Access log" not in as_agent.text

    as_admin = admin.get(f"/customers/{customer}").text
    section = as_admin[as_admin.index('<section class="access-log"') :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr><td>.*?</tr>", re.sub(r"\s+", " ", section))
    # the agent's page view, then the API read of _visible (the admin's own view comes after)
    assert 'desk 3 <span class="role">(agent)</span>' in rows[0]
    assert "console:customer_page" in rows[0]
    assert "GET /v1/customers/{customer_id}" in rows[1]
    assert "(admin)" in rows[1]
