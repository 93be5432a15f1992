"""Merging duplicate customers and undoing it: POST /v1/customers/{id}/merge and /unmerge.

A merge moves nothing, so an unmerge gives back exactly what each customer had; while merged,
every read (profile, lookup by any address, search, timeline, conversations) shows one customer.
"""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, assert_error


def _two_customers(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    phone = api.record(address="phone:+15550109001", contact_name="Ana Silva", text="by sms")
    email = api.record(channel="email", address="email:ana.silva@example.org", text="by email")
    assert phone["customer_id"] != email["customer_id"]
    return phone, email


def test_merge_shows_one_customer_everywhere_and_unmerge_restores_both(api: Api) -> None:
    phone, email = _two_customers(api)
    survivor, duplicate = phone["customer_id"], email["customer_id"]

    merged = api.post(
        f"/v1/customers/{survivor}/merge",
        json={"customer_id": duplicate, "reason": "same person, said so on the phone"},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json() == {
        "customer_id": survivor,
        "merged_customer_id": duplicate,
        "changed": True,
    }
    api.wait_caught_up()

    profile = api.get(f"/v1/customers/{duplicate}").json()  # either id gives the group
    assert profile["customer_id"] == survivor
    assert profile["merged_customer_ids"] == [duplicate]
    assert profile["display_name"] == "Ana Silva"
    assert {i["address"] for i in profile["identities"]} == {
        "phone:+15550109001",
        "email:ana.silva@example.org",
    }
    assert {c["channel"] for c in profile["open_conversations"]} == {"sms", "email"}
    by_email = api.get("/v1/customers", params={"address": "email:ana.silva@example.org"})
    assert [c["customer_id"] for c in by_email.json()["items"]] == [survivor]
    found = api.get("/v1/customers", params={"q": "ana"}).json()["items"]
    assert [c["customer_id"] for c in found] == [survivor]

    texts = [m["text"] for m in api.messages(survivor)]
    assert texts == ["by email", "by sms"]
    assert [m["text"] for m in api.messages(duplicate)] == texts
    merge_item = next(i for i in api.timeline(survivor) if i["kind"] == "merged")
    assert merge_item["customer_id"] == duplicate
    assert merge_item["data"]["into_customer_id"] == survivor
    assert merge_item["data"]["actor"].startswith("admin")
    assert merge_item["data"]["reason"] == "same person, said so on the phone"

    # While merged, a new email joins the group's timeline; it stays with its address's owner.
    api.record(channel="email", address="email:ana.silva@example.org", text="while merged")
    assert next(m["text"] for m in api.messages(survivor)) == "while merged"

    undone = api.post(f"/v1/customers/{duplicate}/unmerge", json={"reason": "two Anas"})
    assert undone.status_code == 200, undone.text
    assert undone.json()["changed"] is True
    api.wait_caught_up()
    assert [m["text"] for m in api.messages(survivor)] == ["by sms"]
    assert [m["text"] for m in api.messages(duplicate)] == ["while merged", "by email"]
    assert api.get(f"/v1/customers/{duplicate}").json()["customer_id"] == duplicate
    assert api.get(f"/v1/customers/{survivor}").json()["merged_customer_ids"] == []
    assert any(i["kind"] == "unmerged" for i in api.timeline(survivor))
    assert any(i["kind"] == "unmerged" for i in api.timeline(duplicate))

    types = [e["type"] for e in api.all_events() if e["customer_id"] == duplicate]
    assert types.count("customer.merged.v1") == 1
    assert types.count("customer.unmerged.v1") == 1
    merged_event = next(e for e in api.all_events() if e["type"] == "customer.merged.v1")
    assert merged_event["data"]["into_customer_id"] == survivor


def test_merges_are_idempotent_and_refuse_what_cannot_be(api: Api) -> None:
    phone, email = _two_customers(api)
    chat = api.record(channel="chat", address="chat:visitor-merge-1", text="by chat")
    a, b, c = phone["customer_id"], email["customer_id"], chat["customer_id"]

    assert api.post(f"/v1/customers/{a}/merge", json={"customer_id": b}).json()["changed"]
    again = api.post(f"/v1/customers/{a}/merge", json={"customer_id": b})
    assert again.status_code == 200
    assert again.json()["changed"] is False
    # Into a merged customer: into its group's root. The reverse is already one group.
    into_member = api.post(f"/v1/customers/{b}/merge", json={"customer_id": c}).json()
    assert into_member == {"customer_id": a, "merged_customer_id": c, "changed": True}
    assert api.post(f"/v1/customers/{b}/merge", json={"customer_id": a}).json()["changed"] is False

    third = api.record(address="phone:+15550109002", text="someone else")
    conflict = api.post(f"/v1/customers/{third['customer_id']}/merge", json={"customer_id": b})
    assert_error(conflict, 409, "already_merged")
    assert_error(
        api.post(f"/v1/customers/{a}/merge", json={"customer_id": a}), 422, "invalid_command"
    )
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(
        api.post(f"/v1/customers/{a}/merge", json={"customer_id": missing}), 404, "not_found"
    )
    assert_error(api.post(f"/v1/customers/{a}/merge", json={}), 422, "validation_error")

    alone = api.post(f"/v1/customers/{a}/unmerge", json={})
    assert alone.status_code == 200
    assert alone.json()["changed"] is False
    api.wait_caught_up()
    assert len(api.get(f"/v1/customers/{a}").json()["merged_customer_ids"]) == 2
    assert [m["text"] for m in api.messages(a)] == ["by chat", "by email", "by sms"]


def test_merging_needs_the_act_scope(api: Api) -> None:
    phone, email = _two_customers(api)
    assert api.runtime is not None
    _, token = api.runtime.tokens.create("service", "billing")
    refused = api.post(
        f"/v1/customers/{phone['customer_id']}/merge",
        json={"customer_id": email["customer_id"]},
        token=token,
    )
    assert_error(refused, 403, "forbidden")
