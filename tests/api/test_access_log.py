"""The access log through the API: every route that reads a customer's personal data leaves
an entry with the principal, the customer, the route and the count; ``GET
/v1/customers/{id}/access-log`` is the admin's, pages newest first and covers the merge group
(also what was read while a member was merged)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app
from tests.support.store import SettingsFactory

CUSTOMER = "GET /v1/customers/{customer_id}"
TIMELINE = "GET /v1/customers/{customer_id}/timeline"
FIND = "GET /v1/customers"
MESSAGE = "GET /v1/messages/{message_id}"
CONVERSATION = "GET /v1/conversations/{conversation_id}"


def access_log(api: Api, customer_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/customers/{customer_id}/access-log", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_every_read_of_personal_data_leaves_an_entry(api: Api) -> None:
    assert api.runtime is not None
    agent_id, agent = api.runtime.tokens.create("agent", "desk 7")
    service_id, service = api.runtime.tokens.create("service", "crm-sync")
    first = api.record(address="phone:+15550142001", contact_name="Vaida Petraitiene")
    api.record(address="phone:+15550142001", text="second")
    other = api.record(address="phone:+15550142002", contact_name="Vaidas Jonaitis")
    api.wait_caught_up()
    customer, message = first["customer_id"], first["message_id"]

    ok(api.get(f"/v1/customers/{customer}", token=agent))
    timeline = ok(api.get(f"/v1/customers/{customer}/timeline", token=service))
    ok(api.get("/v1/customers", params={"address": "phone:+15550142001"}, token=agent))
    found = ok(api.get("/v1/customers", params={"q": "Vaida"}, token=agent))
    ok(api.get(f"/v1/messages/{message}", token=service))
    ok(api.get(f"/v1/conversations/{first['conversation_id']}", token=agent))
    # what is not found or not allowed reads nothing
    assert api.get(f"/v1/customers/{uuid4()}", token=agent).status_code == 404
    assert api.get(f"/v1/customers/{customer}", token=None).status_code == 401

    entries = access_log(api, customer)["items"]
    seen = [
        (e["action"], e["principal_id"], e["principal_name"], e["role"], e["items"])
        for e in entries
    ]
    assert seen == [
        (CONVERSATION, str(agent_id), "desk 7", "agent", 1),
        (MESSAGE, str(service_id), "crm-sync", "service", 1),
        (FIND, str(agent_id), "desk 7", "agent", 1),  # the search hit
        (FIND, str(agent_id), "desk 7", "agent", 1),  # the address lookup
        (TIMELINE, str(service_id), "crm-sync", "service", len(timeline["items"])),
        (CUSTOMER, str(agent_id), "desk 7", "agent", 1),
    ]
    assert timeline["items"]
    assert {e["customer_id"] for e in entries} == {customer}
    assert entries == sorted(entries, key=lambda e: e["at"], reverse=True)
    # the search found both: one entry each; the query itself is kept nowhere
    assert {c["customer_id"] for c in found["items"]} == {customer, other["customer_id"]}
    (hit,) = access_log(api, other["customer_id"])["items"]
    assert (hit["action"], hit["items"]) == (FIND, 1)
    assert "Vaida" not in api.get(f"/v1/customers/{customer}/access-log").text


def test_the_admin_token_reads_as_itself(api: Api) -> None:
    customer = api.record(address="phone:+15550142003")["customer_id"]
    api.wait_caught_up()
    ok(api.get(f"/v1/customers/{customer}"))
    (entry,) = access_log(api, customer)["items"]
    assert entry["principal_id"] is None
    assert entry["role"] == "admin"
    assert entry["principal_name"] == "admin (HUB_ADMIN_TOKEN)"


@pytest.mark.parametrize("role", ["agent", "service"])
def test_only_admins_read_the_access_log(sqlite_api: Api, role: str) -> None:
    assert sqlite_api.runtime is not None
    _, token = sqlite_api.runtime.tokens.create(role, role)  # type: ignore[arg-type]
    customer = sqlite_api.record(address="phone:+15550142004")["customer_id"]
    sqlite_api.wait_caught_up()
    response = sqlite_api.get(f"/v1/customers/{customer}/access-log", token=token)
    assert_error(response, 403, "forbidden")
    response = sqlite_api.get(f"/v1/customers/{customer}/access-log", token=None)
    assert_error(response, 401, "unauthorized")
    assert sqlite_api.get(f"/v1/customers/{customer}/access-log").status_code == 200


def test_pages_newest_first_and_refuses_a_foreign_cursor(api: Api) -> None:
    customer = api.record(address="phone:+15550142005")["customer_id"]
    api.wait_caught_up()
    shown = [
        len(ok(api.get(f"/v1/customers/{customer}/timeline", params={"limit": n}))["items"])
        for n in (1, 2, 1, 2, 1)
    ]
    assert shown == [1, 2, 1, 2, 1]
    counts: list[int] = []
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = access_log(api, customer, **params)
        counts += [e["items"] for e in page["items"]]
        ids += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        params["before"] = page["next_cursor"]
    assert counts == shown[::-1]
    assert len(set(ids)) == 5
    for cursor in ("not-a-cursor", str(uuid4())):
        response = api.get(f"/v1/customers/{customer}/access-log", params={"before": cursor})
        assert_error(response, 400, "invalid_cursor")
    assert_error(api.get(f"/v1/customers/{uuid4()}/access-log"), 404, "not_found")


def test_covers_the_merge_group_and_what_was_read_while_merged(api: Api) -> None:
    survivor = api.record(address="phone:+15550142006")["customer_id"]
    duplicate = api.record(channel="email", address="email:dup@example.org", subject="hi")
    duplicate_id = duplicate["customer_id"]
    api.wait_caught_up()
    ok(api.get(f"/v1/messages/{duplicate['message_id']}"))  # before the merge
    merged = api.post(f"/v1/customers/{survivor}/merge", json={"customer_id": duplicate_id})
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    timeline = ok(api.get(f"/v1/customers/{duplicate_id}/timeline"))  # the group's
    assert timeline["customer_id"] == survivor

    for asked in (survivor, duplicate_id):
        page = access_log(api, asked)
        assert page["customer_ids"] == [survivor, duplicate_id]
        assert [(e["action"], e["customer_id"]) for e in page["items"]] == [
            (TIMELINE, survivor),
            (MESSAGE, duplicate_id),
        ]

    undone = api.post(f"/v1/customers/{duplicate_id}/unmerge", json={"reason": "two people"})
    assert undone.status_code == 200, undone.text
    api.wait_caught_up()
    # on its own again, the duplicate's log still shows that its data was read with the group
    assert [e["action"] for e in access_log(api, duplicate_id)["items"]] == [TIMELINE, MESSAGE]
    assert [e["action"] for e in access_log(api, survivor)["items"]] == [TIMELINE]


def test_entries_survive_a_clean_stop_of_the_hub(make_settings: SettingsFactory) -> None:
    """The runtime writes what is pending when it stops: read back after a restart."""
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        customer = api.record(address="phone:+15550142007")["customer_id"]
        api.wait_caught_up()
        for _ in range(3):
            ok(api.get(f"/v1/customers/{customer}"))
    with running_app(settings) as api:
        assert len(access_log(api, customer)["items"]) == 3


def test_any_cursor_text_is_a_page_or_a_400(sqlite_api: Api) -> None:
    customer = sqlite_api.record(address="phone:+15550142008")["customer_id"]
    sqlite_api.wait_caught_up()
    ok(sqlite_api.get(f"/v1/customers/{customer}"))
    (entry,) = access_log(sqlite_api, customer)["items"]
    url = f"/v1/customers/{customer}/access-log"

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        derandomize=True,
    )
    @given(before=st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
    @example(before=entry["id"])
    @example(before=entry["id"].replace("-", "").upper())
    @example(before=str(uuid4()))
    def check(before: str) -> None:
        response = sqlite_api.get(url, params={"before": before})
        try:
            known = UUID(before) == UUID(entry["id"])
        except ValueError:
            known = False
        if known:  # the oldest entry: nothing is older
            assert ok(response)["items"] == []
        else:
            assert_error(response, 400, "invalid_cursor")

    check()
