"""Custom attributes (PUT /v1/attributes/{key}, GET /v1/attributes): admins define them with a
type and a label, a key keeps its type, the same definition again records nothing, and
profile values are checked against them (docs/profile.md)."""

from __future__ import annotations

from tests.support.api import Api, assert_error


def test_admins_define_attributes_and_everyone_reads_them(api: Api) -> None:
    done = api.put(
        "/v1/attributes/plan", json={"type": "enum", "label": "Plan", "values": ["free", "gold"]}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "key": "plan",
        "type": "enum",
        "label": "Plan",
        "values": ["free", "gold"],
        "changed": True,
    }
    api.put("/v1/attributes/renewal", json={"type": "date", "label": "Renewal date"})
    assert api.runtime is not None
    agent = api.runtime.tokens.create("agent", "ann")[1]
    service = api.runtime.tokens.create("service", "crm-sync")[1]
    for token in (agent, service):
        listed = api.get("/v1/attributes", token=token)
        assert listed.status_code == 200, listed.text
        assert [(a["key"], a["type"], a["values"]) for a in listed.json()["items"]] == [
            ("plan", "enum", ["free", "gold"]),
            ("renewal", "date", []),
        ]
        refused = api.put(
            "/v1/attributes/tier", json={"type": "string", "label": "Tier"}, token=token
        )
        assert_error(refused, 403, "forbidden")


def test_the_same_definition_records_nothing_and_a_key_keeps_its_type(api: Api) -> None:
    body = {"type": "enum", "label": "Plan", "values": ["free", "gold"]}
    api.put("/v1/attributes/plan", json=body)
    api.wait_caught_up()
    position = api.store_position()
    again = api.put("/v1/attributes/plan", json=body)
    assert again.json()["changed"] is False
    assert api.store_position() == position
    relabelled = api.put("/v1/attributes/plan", json=body | {"label": "Plan (2027)"})
    assert relabelled.json()["changed"] is True
    error = assert_error(
        api.put("/v1/attributes/plan", json={"type": "string", "label": "Plan"}),
        409,
        "attribute_type_change",
    )
    assert error["details"] == {"key": "plan", "type": "enum"}
    # attribute definitions are the hub's configuration, not published events
    assert not [e for e in api.all_events() if "attribute" in e["type"]]


def test_definitions_the_rules_refuse(api: Api) -> None:
    for body in (
        {"type": "enum", "label": "Plan"},
        {"type": "enum", "label": "Plan", "values": ["a", "a"]},
        {"type": "string", "label": "Plan", "values": ["a"]},
        {"type": "string", "label": "   "},
    ):
        assert_error(api.put("/v1/attributes/plan", json=body), 422, "invalid_attribute_definition")
    for key in ("Plan", "1plan", "plan-b", "p" * 41):
        assert_error(
            api.put(f"/v1/attributes/{key}", json={"type": "string", "label": "x"}),
            422,
            "validation_error",
        )
    assert_error(
        api.put("/v1/attributes/plan", json={"type": "colour", "label": "x"}),
        422,
        "validation_error",
    )
    assert api.get("/v1/attributes").json()["items"] == []


def test_values_are_checked_against_their_type(api: Api) -> None:
    customer = api.record(address="phone:+15550107201")["customer_id"]
    for key, kind in (("seats", "number"), ("vip", "boolean"), ("renewal", "date")):
        api.put(f"/v1/attributes/{key}", json={"type": kind, "label": key})
    api.put("/v1/attributes/plan", json={"type": "enum", "label": "Plan", "values": ["gold"]})
    good = {"seats": 12.5, "vip": False, "renewal": "2027-01-31", "plan": "gold"}
    done = api.request("PATCH", f"/v1/customers/{customer}", json={"attributes": good})
    assert done.status_code == 200, done.text
    assert done.json()["attributes"] == good
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{customer}").json()["attributes"] == good
    for bad in (
        {"seats": "12"},
        {"seats": True},
        {"vip": "yes"},
        {"renewal": "31/01/2027"},
        {"plan": "silver"},
    ):
        refused = api.request("PATCH", f"/v1/customers/{customer}", json={"attributes": bad})
        error = assert_error(refused, 422, "invalid_attribute")
        assert error["details"] == {"field": f"attributes.{next(iter(bad))}"}
