"""The `hub` command against a data directory, beside or instead of a running server."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.events import EVENT_TYPES
from hub.projections import default_projections
from tests.support.hub_process import HubProcess, ago, child_env, interaction, run_hub

pytestmark = pytest.mark.e2e

Server = Callable[..., HubProcess]


def _get_as(hub: HubProcess, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{hub.url}/v1/customers", params={"q": "anyone"}, headers=headers)


def test_tokens_created_and_revoked_by_the_cli_work_against_a_running_server(
    hub_server: Server, data_dir: Path
) -> None:
    hub = hub_server().start()
    assert _get_as(hub, None).status_code == 401
    assert _get_as(hub, "hub_agent_not-a-real-token").status_code == 401

    created = run_hub(
        "tokens", "create", "--role", "agent", "--name", "x", "--data-dir", str(data_dir)
    )

    assert created.returncode == 0, created.stderr
    match = re.fullmatch(r"id:\s+(\S+)\ntoken: (\S+)\n", created.stdout)
    assert match, created.stdout
    token_id, token = match.groups()
    assert token.startswith("hub_agent_")
    assert _get_as(hub, token).status_code == 200
    refused = httpx.post(
        f"{hub.url}/v1/interactions",
        json=interaction(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 403
    listed = run_hub("tokens", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0
    assert re.search(rf"^{token_id}\s+agent\s+active\s+x$", listed.stdout, re.MULTILINE)
    assert token not in listed.stdout

    revoked = run_hub("tokens", "revoke", token_id, "--data-dir", str(data_dir))

    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked {token_id}"
    started = time.monotonic()
    while _get_as(hub, token).status_code != 401:
        assert time.monotonic() - started < 6.5, "the revoked token still works after 6 s"
        time.sleep(0.2)
    assert re.search(
        rf"^{token_id}\s+agent\s+revoked ",
        run_hub("tokens", "list", "--data-dir", str(data_dir)).stdout,
        re.MULTILINE,
    )
    again = run_hub("tokens", "revoke", token_id, "--data-dir", str(data_dir))
    assert again.returncode == 1
    assert f"no active token {token_id}" in again.stderr


def test_tokens_create_refuses_an_unknown_role(data_dir: Path) -> None:
    result = run_hub("tokens", "create", "--role", "root", "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert "role must be one of admin, agent, service" in result.stderr


def test_config_show_masks_secrets() -> None:
    result = run_hub(
        "config",
        "show",
        env=child_env(
            HUB_ADMIN_TOKEN="supersecret",
            HUB_STORE_URL="postgresql://u:pw@127.0.0.1/db",
            HUB_MASTER_KEY="bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=",
        ),
    )

    assert result.returncode == 0, result.stderr
    assert "supersecret" not in result.stdout
    assert "pw" not in result.stdout
    assert "bWFzdGVy" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["admin_token"] == "**********"
    assert shown["master_key"] == "**********"
    assert shown["address_pepper"] is None
    assert shown["store_url"] == "postgresql://u:***@127.0.0.1/db"
    assert shown["resolved_store_url"] == "postgresql://u:***@127.0.0.1/db"
    assert shown["resolved_views_url"] == "postgresql://u:***@127.0.0.1/db"


def test_config_show_says_which_channels_are_on() -> None:
    result = run_hub(
        "config",
        "show",
        env=child_env(
            HUB_TELEGRAM__BOT_TOKEN="123456:very-secret-bot-token",
            HUB_TELEGRAM__SECRET_TOKEN="hook-secret",
            HUB_TWILIO__ACCOUNT_SID="AC123",  # no token: twilio stays off
        ),
    )

    assert result.returncode == 0, result.stderr
    assert "very-secret-bot-token" not in result.stdout
    assert "hook-secret" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["channels"] == {
        "sandbox": "off",  # only with HUB_SANDBOX or hub serve --demo
        "twilio": "off",
        "email": "off",
        "meta": "off",
        "telegram": "on",
        "chat": "on",  # the hub's own channel: on unless HUB_CHAT__ENABLED=false
    }
    assert shown["telegram"]["bot_token"] == "**********"
    off = run_hub("config", "show", env=child_env(HUB_CHAT__ENABLED="false"))
    assert json.loads(off.stdout)["channels"]["chat"] == "off"


def test_schema_export_writes_one_json_schema_per_event_type(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    result = run_hub("schema", "export", str(out))

    assert result.returncode == 0, result.stderr
    files = sorted(out.iterdir())
    assert [Path(line).name for line in result.stdout.split()] == [
        f"{t}.json" for t in [*EVENT_TYPES, "interaction.inbound.v1"]
    ]
    assert {f.name for f in files} == {
        f"{t}.json" for t in [*EVENT_TYPES, "interaction.inbound.v1"]
    }
    for path in files:
        schema = json.loads(path.read_text())
        event_type = path.name.removesuffix(".json")
        assert schema["$id"] == f"urn:interaction-hub:event:{event_type}"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"
        assert schema["properties"]["type"]["const"] == event_type
        if event_type != "interaction.inbound.v1":
            assert {"id", "customer_id", "position", "data"} <= set(schema["required"])


def _record_activity(hub: HubProcess) -> set[str]:
    """A little of everything the timeline shows; returns the customer ids."""
    http = hub.http
    first = http.post(
        "/v1/interactions",
        json=interaction(address="phone:+15550140001", occurred_at=ago(30), contact_name="Rae"),
    ).json()
    http.post(
        "/v1/interactions",
        json=interaction(address="phone:+15550140001", channel="whatsapp", occurred_at=ago(20)),
    )
    sent = http.post(
        "/v1/interactions",
        json=interaction(address="phone:+15550140001", direction="outbound", occurred_at=ago(10)),
    ).json()
    http.post(f"/v1/messages/{sent['message_id']}/delivery", json={"status": "delivered"})
    conversation = f"/v1/conversations/{first['conversation_id']}"
    http.post(f"{conversation}/notes", json={"text": "VIP"})
    http.put(f"{conversation}/assignee", json={"assignee": "kim"})
    http.put(f"{conversation}/status", json={"status": "resolved"})
    other = http.post(
        "/v1/interactions",
        json=interaction(channel="email", address="email:sol@example.com", subject="Hi"),
    ).json()
    return {first["customer_id"], other["customer_id"]}


def _views(hub: HubProcess, customers: set[str]) -> dict[str, Any]:
    hub.wait_caught_up()
    return {c: {"profile": hub.customer(c), "timeline": hub.timeline(c)} for c in sorted(customers)}


def test_projections_rebuild_restores_the_views_from_the_events(
    hub_server: Server, data_dir: Path
) -> None:
    hub = hub_server().start()
    customers = _record_activity(hub)
    before = _views(hub, customers)
    kinds = {i["kind"] for c in before.values() for i in c["timeline"]}
    assert kinds == {"message", "note", "status_changed", "assigned", "identity_linked"}
    assert hub.terminate()[0] == 0

    # Damage the views behind the hub's back; only a replay from the events repairs this.
    with sqlite3.connect(data_dir / "views.db") as db:
        assert db.execute("UPDATE timeline_items SET text = 'damaged'").rowcount > 0
        db.execute("DELETE FROM directory_customers")
    db.close()

    result = run_hub("projections", "rebuild", "--data-dir", str(data_dir))

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        rf"rebuilt {', '.join(p.name for p in default_projections())}: \d+ events applied in "
        r"[\d.]+s, position \d+\n",
        result.stdout,
    ), result.stdout
    hub.start()
    assert _views(hub, customers) == before

    unknown = run_hub("projections", "rebuild", "nosuch", "--data-dir", str(data_dir))
    assert unknown.returncode == 2
    assert "unknown projection 'nosuch'" in unknown.stderr


def test_status_reports_positions(hub_server: Server, data_dir: Path) -> None:
    hub = hub_server().start()
    hub.http.post("/v1/interactions", json=interaction())
    hub.wait_caught_up()
    assert hub.terminate()[0] == 0

    result = run_hub("status", "--data-dir", str(data_dir))

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["store_position"] == 4
    assert status["projections"] == {p.name: 4 for p in default_projections()}
    assert status["lag"] == 0
