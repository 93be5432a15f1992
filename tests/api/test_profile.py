"""A customer's profile beyond identities: agents' tags (PUT /v1/customers/{id}/tags), the
language the customer last wrote in, when the channel said, and what agents edit (PATCH
/v1/customers/{id}: name, birthday, time zone, language, company, custom attributes) with the
acquisition source of the first contact (docs/profile.md)."""

from __future__ import annotations

from httpx import Response

from tests.support.api import ADMIN_TOKEN, Api, assert_error, interaction


def test_tags_are_set_as_a_whole_and_the_same_set_records_nothing(api: Api) -> None:
    customer = api.record(address="phone:+15550107001", contact_name="Ines")["customer_id"]
    done = api.put(f"/v1/customers/{customer}/tags", json={"tags": [" vip ", "wholesale", "vip"]})
    assert done.status_code == 200, done.text
    assert done.json() == {"tags": ["vip", "wholesale"]}
    api.wait_caught_up()
    position = api.store_position()
    again = api.put(f"/v1/customers/{customer}/tags", json={"tags": ["wholesale", "vip"]})
    assert again.status_code == 200
    assert api.store_position() == position  # nothing new
    assert api.get(f"/v1/customers/{customer}").json()["tags"] == ["vip", "wholesale"]

    assert (
        api.put(f"/v1/customers/{customer}/tags", json={"tags": ["wholesale"]}).status_code == 200
    )
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{customer}").json()["tags"] == ["wholesale"]
    (event,) = [e for e in api.all_events() if e["type"] == "customer.tags_changed.v1"][-1:]
    assert (event["data"]["added"], event["data"]["removed"]) == ([], ["vip"])

    assert_error(
        api.put(f"/v1/customers/{customer}/tags", json={"tags": [""]}), 422, "validation_error"
    )
    assert_error(
        api.put(f"/v1/customers/{customer}/tags", json={"tags": ["x" * 51]}),
        422,
        "validation_error",
    )
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(api.put(f"/v1/customers/{missing}/tags", json={"tags": ["a"]}), 404, "not_found")


def test_a_merged_group_shows_every_members_tags(api: Api) -> None:
    a = api.record(address="phone:+15550107002")["customer_id"]
    b = api.record(channel="email", address="email:tagged@example.org")["customer_id"]
    api.put(f"/v1/customers/{a}/tags", json={"tags": ["vip"]})
    api.put(f"/v1/customers/{b}/tags", json={"tags": ["late-payer"]})
    api.post(f"/v1/customers/{a}/merge", json={"customer_id": b})
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{b}").json()["tags"] == ["late-payer", "vip"]


def test_the_language_comes_from_what_the_channel_said(api: Api) -> None:
    plain = api.record(address="phone:+15550107003")["customer_id"]
    told = api.record(
        channel="telegram",
        address="telegram:81273",
        metadata={"language_code": "pt-BR", "username": "ana"},
    )["customer_id"]
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{plain}").json()["language"] is None
    assert api.get(f"/v1/customers/{told}").json()["language"] == "pt-BR"
    api.record(channel="telegram", address="telegram:81273", metadata={"language": "es"})
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{told}").json()["language"] == "es"


# -- PATCH /v1/customers/{id} (issue 16) -------------------------------------------------------


def patch(api: Api, customer: str, body: object, token: str | None = ADMIN_TOKEN) -> Response:
    return api.request("PATCH", f"/v1/customers/{customer}", json=body, token=token)


def test_a_patch_edits_what_it_names_and_get_shows_the_profile(api: Api) -> None:
    customer = api.record(address="phone:+15550107101", contact_name="Ines")["customer_id"]
    api.put(
        "/v1/attributes/plan", json={"type": "enum", "label": "Plan", "values": ["free", "gold"]}
    )
    done = patch(
        api,
        customer,
        {
            "birthday": "--02-29",
            "time_zone": "asia/tokyo",
            "language": "PT-br",
            "company": "  Acme UAB ",
            "attributes": {"plan": "gold"},
        },
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "customer_id": customer,
        "display_name": "Ines",
        "birthday": "--02-29",
        "time_zone": "Asia/Tokyo",
        "language": "pt-BR",
        "company": "Acme UAB",
        "attributes": {"plan": "gold"},
        "changed": ["birthday", "time_zone", "language", "company", "attributes.plan"],
    }
    api.wait_caught_up()
    shown = api.get(f"/v1/customers/{customer}").json()
    assert {
        k: shown[k] for k in ("birthday", "time_zone", "language", "company", "attributes")
    } == {
        "birthday": "--02-29",
        "time_zone": "Asia/Tokyo",
        "language": "pt-BR",
        "company": "Acme UAB",
        "attributes": {"plan": "gold"},
    }
    # null clears; left out stays
    cleared = patch(api, customer, {"company": None, "attributes": {"plan": None}})
    assert cleared.json()["changed"] == ["company", "attributes.plan"]
    api.wait_caught_up()
    shown = api.get(f"/v1/customers/{customer}").json()
    assert (shown["company"], shown["attributes"], shown["time_zone"]) == (None, {}, "Asia/Tokyo")


def test_the_same_patch_again_records_nothing(api: Api) -> None:
    customer = api.record(address="phone:+15550107102")["customer_id"]
    body = {"display_name": "Rasa", "time_zone": "Europe/Vilnius"}
    assert patch(api, customer, body).json()["changed"] == ["display_name", "time_zone"]
    api.wait_caught_up()
    position = api.store_position()
    again = patch(api, customer, body | {"birthday": None})
    assert again.status_code == 200
    assert again.json()["changed"] == []
    assert api.store_position() == position


def test_every_change_is_an_event_with_the_actor_and_on_the_timeline(api: Api) -> None:
    customer = api.record(address="phone:+15550107103", contact_name="Jonas")["customer_id"]
    patch(api, customer, {"company": "Jonas & Co", "display_name": "Jonas P."})
    api.record(address="phone:+15550107104", contact_name="Learnt Name")  # the hub learns a name
    events = [e for e in api.all_events() if e["type"] == "customer.profile_updated.v1"]
    [edit] = [e for e in events if e["customer_id"] == customer]
    assert edit["data"]["actor"] == "admin (HUB_ADMIN_TOKEN)"
    assert edit["data"]["changed"] == ["display_name", "company"]
    assert (edit["data"]["display_name"], edit["data"]["company"]) == ("Jonas P.", "Jonas & Co")
    [item] = [i for i in api.timeline(customer) if i["kind"] == "profile_updated"]
    assert item["data"] == {
        "changes": [
            {"field": "display_name", "value": "Jonas P."},
            {"field": "company", "value": "Jonas & Co"},
        ],
        "actor": "admin (HUB_ADMIN_TOKEN)",
    }


def test_the_set_language_comes_before_the_channels(api: Api) -> None:
    told = api.record(
        channel="telegram", address="telegram:81274", metadata={"language_code": "es"}
    )["customer_id"]
    patch(api, told, {"language": "lt"})
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{told}").json()["language"] == "lt"
    patch(api, told, {"language": None})
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{told}").json()["language"] == "es"


def test_a_merged_customers_patch_edits_its_group(api: Api) -> None:
    root = api.record(address="phone:+15550107105")["customer_id"]
    member = api.record(channel="email", address="email:member7105@example.org")["customer_id"]
    patch(api, member, {"company": "Member Co", "time_zone": "Europe/Riga"})
    api.post(f"/v1/customers/{root}/merge", json={"customer_id": member})
    done = patch(api, member, {"time_zone": "Europe/Vilnius"})
    assert done.json()["customer_id"] == root
    api.wait_caught_up()
    shown = api.get(f"/v1/customers/{member}").json()
    assert (shown["customer_id"], shown["time_zone"], shown["company"]) == (
        root,
        "Europe/Vilnius",
        "Member Co",
    )


def test_who_may_patch_and_what_is_refused(api: Api) -> None:
    customer = api.record(address="phone:+15550107106")["customer_id"]
    assert api.runtime is not None
    service = api.runtime.tokens.create("service", "ingest-bot")[1]
    agent = api.runtime.tokens.create("agent", "ann")[1]
    assert_error(patch(api, customer, {"company": "X"}, token=service), 403, "forbidden")
    assert patch(api, customer, {"company": "X"}, token=agent).status_code == 200
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(patch(api, missing, {"company": "X"}), 404, "not_found")
    error = assert_error(patch(api, customer, {"birthday": "1999-02-30"}), 422, "invalid_profile")
    assert error["details"] == {"field": "birthday"}
    assert "birthday" in error["message"]
    assert_error(patch(api, customer, {"attributes": {"nope": 1}}), 422, "unknown_attribute")
    assert_error(patch(api, customer, {"nickname": "x"}), 422, "validation_error")
    erased = api.record(address="phone:+15550107107")["customer_id"]
    api.post(f"/v1/customers/{erased}/erase", json={"reason": "test_data"})
    assert_error(patch(api, erased, {"company": "X"}), 410, "customer_erased")


def test_the_first_contacts_source_is_shown_and_later_ones_never_change_it(api: Api) -> None:
    first = api.record(
        address="phone:+15550107108",
        source={"source": "newsletter", "medium": "email", "campaign": "spring"},
        endpoint="phone:+1 (555) 010-9999",
    )
    api.record(address="phone:+15550107108", source={"source": "later"})
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{first['customer_id']}").json()["source"] == {
        "via": "api",
        "source": "newsletter",
        "medium": "email",
        "campaign": "spring",
        "referrer": None,
        "endpoint": "phone:+15550109999",
    }
    assert_error(
        api.post("/v1/interactions", json=interaction(endpoint="phone:not a number")),
        422,
        "invalid_endpoint",
    )


def test_an_endpoint_mapped_in_settings_names_the_source(api: Api) -> None:
    assert api.runtime is not None
    # The settings' mapping (HUB_ACQUISITION__ENDPOINTS), as the store applies it at start.
    api.runtime.store.app.inbound.use_endpoint_sources({"phone:+15550109000": "radio-spring"})
    customer = api.record(address="phone:+15550107109", endpoint="phone:+15550109000")
    api.wait_caught_up()
    source = api.get(f"/v1/customers/{customer['customer_id']}").json()["source"]
    assert (source["via"], source["source"], source["endpoint"]) == (
        "endpoint",
        "radio-spring",
        "phone:+15550109000",
    )
