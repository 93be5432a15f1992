"""Segments through the API, on SQLite and PostgreSQL: define, list, read, change and delete
(names unique, the same command again recording nothing, scopes), a segment's customers paged
with the total and a cursor, previews, what a filter may not say, merged groups and erased
customers, and the access log."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, assert_error

VIP = {"tag": "vip"}


def _define(api: Api, name: str, tree: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/segments", json={"name": name, "filter": tree, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _customers(api: Api, segment_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/segments/{segment_id}/customers", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _preview(api: Api, tree: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = api.post("/v1/segments/preview", json={"filter": tree}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_define_list_read_change_and_delete(api: Api) -> None:
    vip = _define(api, " VIP ", VIP, description="Our best customers")
    assert vip["name"] == "VIP"
    assert vip["filter"] == VIP
    assert vip["created_by"] == vip["updated_by"] == "admin (HUB_ADMIN_TOKEN)"
    tree = {"all": [VIP, {"not": {"channel": "sms"}}, {"last_contact": {"within_days": 30}}]}
    other = _define(api, "Quiet VIPs", tree)
    assert other["filter"] == tree
    listed = api.get("/v1/segments").json()["items"]
    assert [s["name"] for s in listed] == ["Quiet VIPs", "VIP"]
    assert api.get(f"/v1/segments/{vip['segment_id']}").json() == vip

    changed = api.put(
        f"/v1/segments/{vip['segment_id']}",
        json={"name": "VIPs", "filter": {"any": [VIP, {"tag": "gold"}]}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["filter"] == {"any": [VIP, {"tag": "gold"}]}
    assert changed.json()["description"] is None

    api.wait_caught_up()
    position = api.store_position()
    again = api.put(f"/v1/segments/{vip['segment_id']}", json=changed.json() | {"name": "VIPs "})
    assert again.status_code == 422  # the answer's own fields are not a body (extra keys)
    same = {"name": "VIPs", "filter": {"any": [VIP, {"tag": "gold"}]}}
    assert api.put(f"/v1/segments/{vip['segment_id']}", json=same).status_code == 200
    assert api.store_position() == position  # nothing new

    assert api.request("DELETE", f"/v1/segments/{other['segment_id']}").status_code == 204
    api.wait_caught_up()
    position = api.store_position()
    assert api.request("DELETE", f"/v1/segments/{other['segment_id']}").status_code == 204
    assert api.store_position() == position
    assert_error(api.get(f"/v1/segments/{other['segment_id']}"), 404, "not_found")
    assert_error(api.get(f"/v1/segments/{other['segment_id']}/customers"), 404, "not_found")
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(api.request("DELETE", f"/v1/segments/{missing}"), 404, "not_found")
    assert_error(api.get("/v1/segments/not-an-id"), 404, "not_found")
    assert_error(api.put("/v1/segments/preview", json=same), 405, "method_not_allowed")
    assert_error(api.put(f"/v1/segments/{missing}", json=same), 404, "not_found")
    assert [s["name"] for s in api.get("/v1/segments").json()["items"]] == ["VIPs"]


def test_names_are_unique_whatever_the_case(api: Api) -> None:
    first = _define(api, "Lithuanian speakers", {"language": "lt"})
    taken = assert_error(
        api.post("/v1/segments", json={"name": "LITHUANIAN SPEAKERS", "filter": VIP}),
        409,
        "segment_name_taken",
    )
    assert taken["details"]["segment_id"] == first["segment_id"]
    second = _define(api, "Others", VIP)
    assert_error(
        api.put(
            f"/v1/segments/{second['segment_id']}",
            json={"name": "lithuanian speakers", "filter": VIP},
        ),
        409,
        "segment_name_taken",
    )


def test_agents_define_and_services_only_read(api: Api) -> None:
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "desk 1")
    _, service = api.runtime.tokens.create("service", "crm")
    made = api.post("/v1/segments", json={"name": "By agent", "filter": VIP}, token=agent)
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "desk 1"
    segment = made.json()["segment_id"]
    assert_error(
        api.post("/v1/segments", json={"name": "By service", "filter": VIP}, token=service),
        403,
        "forbidden",
    )
    assert_error(api.request("DELETE", f"/v1/segments/{segment}", token=service), 403, "forbidden")
    assert api.get("/v1/segments", token=service).status_code == 200
    assert api.get(f"/v1/segments/{segment}/customers", token=service).status_code == 200
    assert_error(api.get("/v1/segments", token=None), 401, "unauthorized")


def _people(api: Api) -> dict[str, str]:
    """Ana (SMS, vip, lt), Ben (email, vip), Cat (Telegram, lt-LT), Dan (SMS), Eve (email,
    vip) merged into Dan."""
    ana = api.record(address="phone:+37060010001", contact_name="Ana")["customer_id"]
    ben = api.record(channel="email", address="email:ben@example.org")["customer_id"]
    cat = api.record(
        channel="telegram", address="telegram:7001", metadata={"language_code": "lt-LT"}
    )["customer_id"]
    dan = api.record(address="phone:+37060010004", contact_name="Dan")["customer_id"]
    eve = api.record(channel="email", address="email:eve@example.org")["customer_id"]
    for who in (ana, ben, eve):
        assert api.put(f"/v1/customers/{who}/tags", json={"tags": ["vip"]}).status_code == 200
    patched = api.request("PATCH", f"/v1/customers/{ana}", json={"language": "lt"})
    assert patched.status_code == 200, patched.text
    merged = api.post(f"/v1/customers/{dan}/merge", json={"customer_id": eve})
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    return {"ana": ana, "ben": ben, "cat": cat, "dan": dan, "eve": eve}


def _names(people: dict[str, str], page: dict[str, Any]) -> list[str]:
    by_id = {v: k for k, v in people.items()}
    return [by_id[c["customer_id"]] for c in page["items"]]


def test_a_segments_customers_page_by_cursor_with_the_total(api: Api) -> None:
    people = _people(api)
    vip = _define(api, "VIP", VIP)
    first = _customers(api, vip["segment_id"], limit=2)
    assert first["segment_id"] == vip["segment_id"]
    assert first["total"] == 3  # Eve counts as Dan's group
    assert _names(people, first) == ["dan", "ben"]  # newest customer first
    group = first["items"][0]
    assert group["merged_customer_ids"] == [people["eve"]]
    assert {i["address"] for i in group["identities"]} == {
        "phone:+37060010004",
        "email:eve@example.org",
    }
    second = _customers(api, vip["segment_id"], limit=2, cursor=first["next_cursor"])
    assert _names(people, second) == ["ana"]
    assert second["next_cursor"] is None
    assert second["total"] == 3
    assert_error(
        api.get(f"/v1/segments/{vip['segment_id']}/customers", params={"cursor": "nope"}),
        422,
        "validation_error",  # a cursor is the last id of a page
    )
    assert_error(
        api.get(f"/v1/segments/{vip['segment_id']}/customers", params={"limit": 0}),
        422,
        "validation_error",
    )

    lithuanian = _preview(api, {"language": "lt"})
    assert lithuanian["segment_id"] is None
    assert sorted(_names(people, lithuanian)) == ["ana", "cat"]
    assert lithuanian["total"] == 2
    sms_vips = _preview(api, {"all": [VIP, {"channel": "sms"}]})
    assert _names(people, sms_vips) == ["dan", "ana"]


def test_an_erased_customer_leaves_every_segment(api: Api) -> None:
    people = _people(api)
    vip = _define(api, "VIP", VIP)
    erased = api.post(f"/v1/customers/{people['ben']}/erase", json={"reason": "objection"})
    assert erased.status_code == 200, erased.text
    api.wait_caught_up()
    page = _preview(api, VIP)  # a new filter: counted afresh
    assert sorted(_names(people, page)) == ["ana", "dan"]
    assert page["total"] == 2
    assert people["ben"] not in str(_customers(api, vip["segment_id"])["items"])


def test_every_customer_listed_is_in_the_access_log(api: Api) -> None:
    people = _people(api)
    vip = _define(api, "VIP", VIP)
    _customers(api, vip["segment_id"])
    _preview(api, {"tag": "vip"})
    log = api.get(f"/v1/customers/{people['dan']}/access-log").json()["items"]
    actions = [e["action"] for e in log]
    assert actions[:2] == ["POST /v1/segments/preview", "GET /v1/segments/{segment_id}/customers"]
    cat = api.get(f"/v1/customers/{people['cat']}/access-log").json()["items"]
    assert [e["action"] for e in cat if "segments" in e["action"]] == []  # not listed


_DEEP: dict[str, Any] = VIP
for _ in range(8):
    _DEEP = {"not": _DEEP}
_WIDE = {"any": [{"all": [VIP] * 60}, {"all": [VIP] * 41}]}


@pytest.mark.parametrize(
    ("tree", "code"),
    [
        # What the published schema says (validation_error, with each problem)
        ({"color": "red"}, "validation_error"),
        ({"tag": ""}, "validation_error"),
        ({"tag": "vip", "channel": "sms"}, "validation_error"),
        ({"channel": "fax"}, "validation_error"),
        ({"attribute": "Tier", "value": 1}, "validation_error"),
        ({"language": "lithuanian!"}, "validation_error"),
        ({"last_contact": {"within_days": 0}}, "validation_error"),
        ({"last_contact": {"after": "2024-05-01T00:00:00"}}, "validation_error"),  # no zone
        ({"open_conversations": "yes"}, "validation_error"),
        ({"any": []}, "validation_error"),
        ({"all": [VIP] * 101}, "validation_error"),
        ({"consent": {"channel": "voice", "purpose": "service"}}, "validation_error"),
        ([VIP], "validation_error"),
        # What no schema can say (invalid_filter, with a message)
        ({"attribute": "tier", "op": "lt", "value": True}, "invalid_filter"),
        ({"attribute": "tier", "op": "in", "value": []}, "invalid_filter"),
        ({"attribute": "tier", "op": "exists", "value": 1}, "invalid_filter"),
        ({"attribute": "tier", "op": "eq"}, "invalid_filter"),
        ({"time_zone": "Mars/Olympus"}, "invalid_filter"),
        ({"first_contact": {}}, "invalid_filter"),
        ({"last_contact": {"after": "1969-12-31T23:59:59Z"}}, "invalid_filter"),
        (
            {"last_contact": {"after": "2024-05-02T00:00:00Z", "before": "2024-05-01T00:00:00Z"}},
            "invalid_filter",
        ),
        ({"source": {"via": None}}, "invalid_filter"),
        (_DEEP, "invalid_filter"),
        (_WIDE, "invalid_filter"),
        ({"consent": {"channel": "email", "purpose": "surveys"}}, "invalid_filter"),
    ],
)
def test_what_a_filter_may_not_say(sqlite_api: Api, tree: Any, code: str) -> None:
    api = sqlite_api
    assert_error(api.post("/v1/segments/preview", json={"filter": tree}), 422, code)
    assert_error(api.post("/v1/segments", json={"name": "x", "filter": tree}), 422, code)
    assert api.get("/v1/segments").json()["items"] == []


def test_limits_are_named_in_the_answer(sqlite_api: Api) -> None:
    deep = assert_error(
        sqlite_api.post("/v1/segments/preview", json={"filter": _DEEP}), 422, "invalid_filter"
    )
    assert deep["message"] == "the filter nests deeper than 8 levels"
    wide = assert_error(
        sqlite_api.post("/v1/segments/preview", json={"filter": _WIDE}), 422, "invalid_filter"
    )
    assert wide["message"] == "the filter has more than 100 conditions"
    schema = assert_error(
        sqlite_api.post("/v1/segments/preview", json={"filter": {"channel": "fax"}}),
        422,
        "validation_error",
    )
    assert schema["details"][0]["loc"][:2] == ["body", "filter"]


def test_defined_attributes_are_compared_as_their_type(api: Api) -> None:
    defined = api.put(
        "/v1/attributes/tier", json={"type": "enum", "label": "Tier", "values": ["gold", "silver"]}
    )
    assert defined.status_code == 200, defined.text
    ana = api.record(address="phone:+37060010011")["customer_id"]
    api.record(address="phone:+37060010012")
    patched = api.request("PATCH", f"/v1/customers/{ana}", json={"attributes": {"tier": "gold"}})
    assert patched.status_code == 200, patched.text
    api.wait_caught_up()
    found = _preview(api, {"attribute": "tier", "value": "gold"})
    assert [c["customer_id"] for c in found["items"]] == [ana]
    error = assert_error(
        api.post("/v1/segments/preview", json={"filter": {"attribute": "tier", "value": "bronze"}}),
        422,
        "invalid_filter",
    )
    assert "gold, silver" in error["message"]
    assert_error(
        api.post(
            "/v1/segments",
            json={"name": "t", "filter": {"attribute": "tier", "op": "gt", "value": "gold"}},
        ),
        422,
        "invalid_filter",
    )
