"""Bearer-token authentication and the scopes of each role."""

from __future__ import annotations

import pytest

from tests.support.api import Api, assert_error, interaction


def test_no_authorization_header_is_401(sqlite_api: Api) -> None:
    for method, url in [
        ("POST", "/v1/interactions"),
        ("GET", "/v1/customers?q=maria"),
        ("GET", "/v1/events"),
    ]:
        response = sqlite_api.request(method, url, token=None, json=interaction())
        assert_error(response, 401, "unauthorized")
    assert sqlite_api.store_position() == 0


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", "Bearer ", "Basic dGVzdC1hZG1pbjp4", "test-admin", "Bearer test-admin2"],
)
def test_wrong_credentials_are_401(sqlite_api: Api, header: str) -> None:
    response = sqlite_api.client.post(
        "/v1/interactions", json=interaction(), headers={"Authorization": header}
    )
    assert_error(response, 401, "unauthorized")
    assert sqlite_api.store_position() == 0


def test_revoked_token_is_401(api: Api) -> None:
    assert api.runtime is not None
    token_id, token = api.runtime.tokens.create("service", "billing")
    assert api.get("/v1/events", token=token).status_code == 200

    assert api.runtime.tokens.revoke(token_id) is True

    assert_error(api.get("/v1/events", token=token), 401, "unauthorized")
    assert_error(api.post("/v1/interactions", token=token, json=interaction()), 401, "unauthorized")
    assert api.runtime.tokens.revoke(token_id) is False  # already revoked


def test_agent_token_reads_and_acts_but_cannot_ingest(api: Api) -> None:
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "a")
    recorded = api.record(address="phone:+15550100101", contact_name="Agent Test")
    api.wait_caught_up()
    position = api.store_position()

    error = assert_error(
        api.post("/v1/interactions", token=agent, json=interaction()), 403, "forbidden"
    )
    assert error["details"] == {"scope": "ingest"}
    batch = {"interactions": [interaction()]}
    assert_error(api.post("/v1/interactions/batch", token=agent, json=batch), 403, "forbidden")
    assert_error(
        api.post(
            f"/v1/messages/{recorded['message_id']}/delivery",
            token=agent,
            json={"status": "delivered"},
        ),
        403,
        "forbidden",
    )
    assert_error(api.get("/v1/events", token=agent), 403, "forbidden")
    assert api.store_position() == position  # nothing recorded by the refused calls

    customer = api.get(f"/v1/customers/{recorded['customer_id']}", token=agent)
    assert customer.status_code == 200
    assert customer.json()["display_name"] == "Agent Test"
    found = api.get("/v1/customers", token=agent, params={"address": "phone:+15550100101"})
    assert [c["customer_id"] for c in found.json()["items"]] == [recorded["customer_id"]]
    timeline = api.get(f"/v1/customers/{recorded['customer_id']}/timeline", token=agent)
    assert timeline.status_code == 200
    conversation = api.get(f"/v1/conversations/{recorded['conversation_id']}", token=agent)
    assert conversation.status_code == 200

    note = api.post(
        f"/v1/conversations/{recorded['conversation_id']}/notes",
        token=agent,
        json={"text": "called back"},
    )
    assert note.status_code == 201, note.text
    notes = [i for i in api.timeline(recorded["customer_id"]) if i["kind"] == "note"]
    assert [(n["text"], n["data"]["author"]) for n in notes] == [("called back", "a")]


def test_service_token_ingests_but_cannot_act(api: Api) -> None:
    assert api.runtime is not None
    _, service = api.runtime.tokens.create("service", "crm-sync")
    response = api.post("/v1/interactions", token=service, json=interaction())
    assert response.status_code == 202, response.text
    conversation_id = response.json()["conversation_id"]
    position = api.store_position()

    error = assert_error(
        api.post(f"/v1/conversations/{conversation_id}/notes", token=service, json={"text": "no"}),
        403,
        "forbidden",
    )
    assert error["details"] == {"scope": "act"}
    assert_error(
        api.put(
            f"/v1/conversations/{conversation_id}/status",
            token=service,
            json={"status": "resolved"},
        ),
        403,
        "forbidden",
    )
    assert_error(
        api.put(
            f"/v1/conversations/{conversation_id}/assignee", token=service, json={"assignee": "x"}
        ),
        403,
        "forbidden",
    )
    assert api.store_position() == position
    assert api.get("/v1/events", token=service).status_code == 200


def test_probes_need_no_token(sqlite_api: Api) -> None:
    for url in ("/healthz", "/readyz", "/metrics"):
        assert sqlite_api.client.get(url).status_code == 200, url
