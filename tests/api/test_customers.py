"""GET /v1/customers: lookup by address, search, cursor pagination, the customer profile."""

from __future__ import annotations

from uuid import uuid4

from tests.support.api import Api, ago, assert_error, interaction


def test_lookup_by_address(api: Api) -> None:
    maria = api.record(address="phone:+15550105001", contact_name="Maria Lopez")
    api.wait_caught_up()

    found = api.get("/v1/customers", params={"address": "phone:+1 555 010 5001"})
    assert found.status_code == 200, found.text
    items = found.json()["items"]
    assert [(c["customer_id"], c["display_name"]) for c in items] == [
        (maria["customer_id"], "Maria Lopez")
    ]
    assert found.json()["next_cursor"] is None

    missing = api.get("/v1/customers", params={"address": "phone:+15550105999"})
    assert missing.status_code == 200
    assert missing.json() == {"items": [], "next_cursor": None}

    assert_error(api.get("/v1/customers", params={"address": "phone:12"}), 422, "invalid_address")


def test_search_by_name_email_and_phone_digits(api: Api) -> None:
    zelda = api.record(
        channel="email", address="email:zelda.q@example.org", contact_name="Zelda Quintero"
    )
    omar = api.record(address="phone:+15550107777", contact_name="Omar Haddad")
    api.record(address="phone:+15550108888", contact_name="Someone Else")
    api.wait_caught_up()

    def search(q: str) -> list[str]:
        response = api.get("/v1/customers", params={"q": q})
        assert response.status_code == 200, response.text
        return [c["customer_id"] for c in response.json()["items"]]

    assert search("quint") == [zelda["customer_id"]]
    assert search("ZELDA") == [zelda["customer_id"]]
    assert search("zelda.q@exam") == [zelda["customer_id"]]
    assert search("0107777") == [omar["customer_id"]]
    assert search("555-010-7777") == [omar["customer_id"]]
    assert search("haddad") == [omar["customer_id"]]
    assert search("nobody-like-this") == []


def test_search_pages_through_every_match_once(api: Api) -> None:
    items = [
        interaction(
            address=f"phone:+155501060{n:02d}",
            contact_name=f"Pagetest Person {n:02d}",
            provider_message_id=f"page-{n}",
        )
        for n in range(30)
    ]
    items.append(interaction(address="phone:+15550106999", contact_name="Not Matching"))
    recorded = api.post("/v1/interactions/batch", json={"interactions": items}).json()
    assert recorded["recorded"] == 31
    expected = {r["customer_id"] for r in recorded["results"][:30]}
    api.wait_caught_up()

    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"q": "pagetest", "limit": 7} | ({"cursor": cursor} if cursor else {})
        response = api.get("/v1/customers", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        seen += [c["customer_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 7
    assert pages == 5
    assert len(seen) == len(set(seen)) == 30
    assert set(seen) == expected


def test_search_needs_exactly_one_of_address_and_q(sqlite_api: Api) -> None:
    assert_error(sqlite_api.get("/v1/customers"), 422, "invalid_query")
    assert_error(
        sqlite_api.get("/v1/customers", params={"address": "phone:+15550105001", "q": "maria"}),
        422,
        "invalid_query",
    )
    assert_error(sqlite_api.get("/v1/customers", params={"q": "m"}), 422, "validation_error")
    assert_error(
        sqlite_api.get("/v1/customers", params={"q": "maria", "cursor": "not-a-uuid"}),
        400,
        "invalid_cursor",
    )


def test_customer_profile_with_identities_and_open_conversations(api: Api) -> None:
    first = api.record(
        address="phone:+15550109001", contact_name="Ines Ortega", occurred_at=ago(30)
    )
    api.record(address="phone:+15550109001", channel="whatsapp", occurred_at=ago(20))
    api.record(address="phone:+15550109001", channel="sms", occurred_at=ago(10))
    api.wait_caught_up()

    response = api.get(f"/v1/customers/{first['customer_id']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == first["customer_id"]
    assert body["display_name"] == "Ines Ortega"
    assert [(i["address"], i["kind"], i["verified"]) for i in body["identities"]] == [
        ("phone:+15550109001", "phone", False)
    ]
    conversations = {c["channel"]: c for c in body["open_conversations"]}
    assert set(conversations) == {"sms", "whatsapp"}
    sms = conversations["sms"]
    assert sms["conversation_id"] == first["conversation_id"]
    assert (sms["status"], sms["message_count"], sms["customer_id"]) == (
        "open",
        2,
        first["customer_id"],
    )
    assert conversations["whatsapp"]["message_count"] == 1


def test_unknown_customer_is_404(sqlite_api: Api) -> None:
    assert_error(sqlite_api.get(f"/v1/customers/{uuid4()}"), 404, "not_found")
    assert_error(sqlite_api.get("/v1/customers/not-a-uuid"), 422, "validation_error")


def test_blank_or_one_character_search_is_refused(sqlite_api: Api) -> None:
    sqlite_api.record(address="phone:+15550150002", contact_name="Ann")
    sqlite_api.wait_caught_up()
    for q in ("  ", " a ", "\t\t"):
        assert_error(sqlite_api.get("/v1/customers", params={"q": q}), 422, "invalid_query")
    found = sqlite_api.get("/v1/customers", params={"q": " ann "}).json()["items"]
    assert [c["display_name"] for c in found] == ["Ann"]


def test_search_treats_wildcards_literally(api: Api) -> None:
    api.record(address="phone:+15550150003", contact_name="50% off_guy")
    api.record(address="phone:+15550150004", contact_name="Plain Name")
    api.wait_caught_up()

    def names(q: str) -> list[str]:
        return [
            c["display_name"] for c in api.get("/v1/customers", params={"q": q}).json()["items"]
        ]

    assert names("__") == []
    assert names("%%") == []
    assert names("50%") == ["50% off_guy"]
    assert names("f_g") == ["50% off_guy"]


def test_name_learned_from_a_later_message(sqlite_api: Api) -> None:
    first = sqlite_api.record(address="phone:+15550150005")
    sqlite_api.wait_caught_up()
    assert sqlite_api.get(f"/v1/customers/{first['customer_id']}").json()["display_name"] is None
    sqlite_api.record(address="phone:+15550150005", contact_name="Late Name")
    sqlite_api.record(address="phone:+15550150005", contact_name="Another Name")
    sqlite_api.wait_caught_up()
    profile = sqlite_api.get(f"/v1/customers/{first['customer_id']}").json()
    assert profile["display_name"] == "Late Name"
    found = sqlite_api.get("/v1/customers", params={"q": "late name"}).json()["items"]
    assert [c["customer_id"] for c in found] == [first["customer_id"]]
