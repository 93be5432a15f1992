"""The profile in a person's export (GET /v1/customers/{id}/export, docs/export.md): each
record's birthday, time zone, language, company, custom attributes and acquisition source, and
the group's (the root's value where set, else the first member's)."""

from __future__ import annotations

from tests.api.test_export import export_of
from tests.support.api import Api


def test_the_export_has_each_records_profile_and_the_groups(api: Api) -> None:
    api.put("/v1/attributes/plan", json={"type": "enum", "label": "Plan", "values": ["gold"]})
    root = api.record(
        address="phone:+15550107301",
        source={"source": "newsletter", "referrer": "https://blog.example/a"},
    )["customer_id"]
    member = api.record(channel="email", address="email:export7301@example.org")["customer_id"]
    api.request(
        "PATCH",
        f"/v1/customers/{member}",
        json={"company": "Member Co", "language": "lt", "attributes": {"plan": "gold"}},
    )
    api.request("PATCH", f"/v1/customers/{root}", json={"birthday": "--04-21"})
    api.post(f"/v1/customers/{root}/merge", json={"customer_id": member})
    api.request("PATCH", f"/v1/customers/{root}", json={"time_zone": "Asia/Tokyo"})
    api.wait_caught_up()

    document = export_of(api, root)
    profile = document["profile"]
    assert (profile["birthday"], profile["time_zone"], profile["company"], profile["language"]) == (
        "--04-21",
        "Asia/Tokyo",
        "Member Co",
        "lt",
    )
    assert profile["attributes"] == {"plan": "gold"}
    assert profile["source"] == {
        "via": "api",
        "source": "newsletter",
        "medium": None,
        "campaign": None,
        "referrer": "https://blog.example/a",
        "endpoint": None,
    }
    members = {m["customer_id"]: m for m in document["members"]}
    assert (members[root]["time_zone"], members[root]["company"]) == ("Asia/Tokyo", None)
    assert (members[member]["language"], members[member]["attributes"]) == ("lt", {"plan": "gold"})
    assert members[member]["source"] is None
