"""POST /v1/interactions: recording, replays, address normalisation and refused input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from tests.support.api import Api, assert_error, interaction


def test_new_interaction_is_202_with_its_ids(api: Api) -> None:
    response = api.post("/v1/interactions", json=interaction(provider_message_id="SM-1"))

    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"message_id", "customer_id", "conversation_id", "status", "duplicate"}
    assert body["status"] == "recorded"
    assert body["duplicate"] is False
    ids = {UUID(body["message_id"]), UUID(body["customer_id"]), UUID(body["conversation_id"])}
    assert len(ids) == 3
    received = [e for e in api.all_events() if e["type"] == "interaction.received.v1"]
    assert [(e["data"]["message_id"], e["customer_id"]) for e in received] == [
        (body["message_id"], body["customer_id"])
    ]


def test_a_message_is_found_by_its_id_once_visible(api: Api) -> None:
    unknown = api.get("/v1/messages/0190f0f0-0000-8000-8000-000000000000")
    assert_error(unknown, 404, "not_found")
    body = api.post("/v1/interactions", json=interaction(provider_message_id="SM-find")).json()
    api.wait_caught_up()

    found = api.get(f"/v1/messages/{body['message_id']}")

    assert found.status_code == 200, found.text
    message = found.json()
    assert (message["item_id"], message["customer_id"], message["conversation_id"]) == (
        body["message_id"],
        body["customer_id"],
        body["conversation_id"],
    )
    assert (message["kind"], message["provider_message_id"]) == ("message", "SM-find")


def test_replay_is_200_with_the_same_ids_and_records_nothing(api: Api) -> None:
    body = interaction(provider_message_id="SM-replayed", text="first")
    first = api.post("/v1/interactions", json=body)
    assert first.status_code == 202
    events = api.all_events()
    position = api.store_position()

    # A provider retry: same (channel, provider_message_id), even with other content.
    again = api.post("/v1/interactions", json=body | {"text": "retried"})

    assert again.status_code == 200, again.text
    assert again.json() == first.json() | {"duplicate": True, "status": "duplicate"}
    assert api.all_events() == events
    assert api.store_position() == position
    messages = api.messages(first.json()["customer_id"])
    assert [m["text"] for m in messages] == ["first"]


def test_same_provider_id_on_another_channel_is_another_message(api: Api) -> None:
    sms = api.record(channel="sms", provider_message_id="shared-id")
    whatsapp = api.record(channel="whatsapp", provider_message_id="shared-id")

    assert whatsapp["duplicate"] is False
    assert whatsapp["message_id"] != sms["message_id"]
    assert whatsapp["customer_id"] == sms["customer_id"]


def test_spellings_of_one_phone_number_are_one_customer(api: Api) -> None:
    first = api.record(address="phone:+1 (555) 010-2000", occurred_at=_ago(3))
    second = api.record(address="phone:+15550102000", occurred_at=_ago(2))
    third = api.record(address="+1 555 010 2000", occurred_at=_ago(1))

    assert first["customer_id"] == second["customer_id"] == third["customer_id"]
    assert first["conversation_id"] == second["conversation_id"] == third["conversation_id"]
    api.wait_caught_up()
    found = api.get("/v1/customers", params={"address": "phone:+1-555-010-2000"}).json()
    assert [c["customer_id"] for c in found["items"]] == [first["customer_id"]]
    assert [i["address"] for i in found["items"][0]["identities"]] == ["phone:+15550102000"]
    created = [e for e in api.all_events() if e["type"] == "customer.created.v1"]
    assert len(created) == 1


def test_email_addresses_are_case_insensitive(sqlite_api: Api) -> None:
    upper = sqlite_api.record(channel="email", address="email:Alice.Doe@Example.COM")
    lower = sqlite_api.record(channel="email", address="email:alice.doe@example.com")
    assert upper["customer_id"] == lower["customer_id"]


# -- refused input: the right code, and nothing recorded ------------------------------------


def _ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def _refused(api: Api, response_status: int, code: str, **post: object) -> dict[str, object]:
    before = api.store_position()
    error = assert_error(api.post("/v1/interactions", **post), response_status, code)
    assert api.store_position() == before
    assert api.all_events() == []
    return error


def test_malformed_json_is_400(sqlite_api: Api) -> None:
    _refused(
        sqlite_api,
        400,
        "malformed_json",
        content=b'{"channel": "sms", "direction": ',
        headers={"Content-Type": "application/json"},
    )


def test_unknown_field_is_422_validation_error(sqlite_api: Api) -> None:
    error = _refused(sqlite_api, 422, "validation_error", json=interaction(priority="high"))
    assert {"loc": ["body", "priority"], "type": "extra_forbidden"}.items() <= error["details"][
        0
    ].items()


def test_missing_field_is_422_validation_error(sqlite_api: Api) -> None:
    body = interaction()
    del body["provider_message_id"]
    error = _refused(sqlite_api, 422, "validation_error", json=body)
    assert [(d["loc"], d["type"]) for d in error["details"]] == [
        (["body", "provider_message_id"], "missing")
    ]


@pytest.mark.parametrize(
    "field",
    [
        {"occurred_at": "2025-01-01T10:00:00"},  # no time zone
        {"direction": "sideways"},
        {"channel": "pigeon"},
        {"text": "x" * (64 * 1024 + 1)},
    ],
)
def test_values_outside_the_schema_are_422(sqlite_api: Api, field: dict[str, str]) -> None:
    _refused(sqlite_api, 422, "validation_error", json=interaction(**field))


@pytest.mark.parametrize(
    ("channel", "address"),
    [("sms", "phone:12"), ("sms", "fax:5550100"), ("email", "email:not-an-email"), ("api", "  ")],
)
def test_unnormalisable_address_is_422_invalid_address(
    sqlite_api: Api, channel: str, address: str
) -> None:
    error = _refused(
        sqlite_api, 422, "invalid_address", json=interaction(channel=channel, address=address)
    )
    assert error["details"]["address"] == address


def test_email_address_on_sms_is_422_address_not_for_channel(sqlite_api: Api) -> None:
    error = _refused(
        sqlite_api,
        422,
        "address_not_for_channel",
        json=interaction(channel="sms", address="email:bob@example.com"),
    )
    assert error["details"] == {"channel": "sms", "address_kind": "email"}


def test_occurred_at_an_hour_ahead_is_422_occurred_at_in_future(sqlite_api: Api) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _refused(sqlite_api, 422, "occurred_at_in_future", json=interaction(occurred_at=future))
    # Within the allowed clock skew (5 minutes) is fine.
    sqlite_api.record(occurred_at=(datetime.now(UTC) + timedelta(minutes=1)).isoformat())


def test_body_over_one_mebibyte_is_413(sqlite_api: Api) -> None:
    body = interaction(metadata={"blob": "x" * (1024 * 1024)})
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    _refused(sqlite_api, 413, "payload_too_large", content=raw, headers=headers)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    _refused(sqlite_api, 413, "payload_too_large", content=chunks(), headers=headers)


def test_rejections_are_counted_by_reason(sqlite_api: Api) -> None:
    sqlite_api.post("/v1/interactions", json=interaction(address="phone:12"))
    sqlite_api.post("/v1/interactions", json=interaction(address="phone:12"))
    metrics = sqlite_api.client.get("/metrics").text
    assert 'hub_interactions_rejected_total{reason="invalid_address"} 2.0' in metrics
