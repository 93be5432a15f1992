"""A customer's profile beyond identities: agents' tags (PUT /v1/customers/{id}/tags) and the
language the customer last wrote in, when the channel said."""

from __future__ import annotations

from tests.support.api import Api, assert_error


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
