"""Input that, once recorded, would stop the projections: refused up front, never stalling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from hub.events import InboundInteraction
from tests.api.support import Api, assert_error, interaction

NUL_FIELDS = [
    ("text", "before \u0000 after"),
    ("contact_name", "Nul \u0000 Name"),
    ("subject", "subject \u0000"),
    ("provider_message_id", "id\u0000x"),
    ("thread_ref", "ref\u0000x"),
    ("references", ["<a@x>", "<b\u0000@x>"]),
]


@pytest.mark.parametrize(("field", "value"), NUL_FIELDS)
def test_nul_characters_are_refused(sqlite_api: Api, field: str, value: Any) -> None:
    error = assert_error(
        sqlite_api.post("/v1/interactions", json=interaction(**{field: value})),
        422,
        "validation_error",
    )
    assert error["details"][0]["loc"][:2] == ["body", field]
    assert sqlite_api.store_position() == 0


def test_nul_item_of_a_batch_is_rejected_alone(api: Api) -> None:
    items = [
        interaction(address="phone:+15550170010"),
        interaction(address="phone:+15550170011", text="bad \u0000"),
        interaction(address="phone:+15550170012"),
    ]
    body = api.post("/v1/interactions/batch", json={"interactions": items}).json()
    assert [r["status"] for r in body["results"]] == ["recorded", "rejected", "recorded"]
    assert body["results"][1]["error"]["code"] == "validation_error"
    api.wait_caught_up()


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"],
)
def test_occurred_at_before_1970_is_refused(sqlite_api: Api, occurred_at: str) -> None:
    assert_error(
        sqlite_api.post("/v1/interactions", json=interaction(occurred_at=occurred_at)),
        422,
        "occurred_at_out_of_range",
    )
    assert sqlite_api.store_position() == 0
    sqlite_api.record(occurred_at="1970-01-01T00:00:00Z")


def test_nul_inside_metadata_is_recorded_and_shown(api: Api) -> None:
    recorded = api.record(metadata={"note": "a\u0000b", "k\u0000": "v"})
    (message,) = api.messages(recorded["customer_id"])  # waits for the projections
    assert message["data"]["metadata"] == {"note": "a\u0000b", "k\u0000": "v"}


# -- the same invariant below the API (hub.events contract -> store -> projections) ---------


def _contract_accepts(**fields: Any) -> InboundInteraction | None:
    values = {
        "channel": "sms",
        "direction": "inbound",
        "address": "phone:+15550170020",
        "provider_message_id": "poison",
        "occurred_at": datetime.now(UTC) - timedelta(minutes=1),
        "text": "x",
    } | fields
    try:
        return InboundInteraction(**values)
    except ValidationError:
        return None


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "before \u0000 after"},
        {"contact_name": "Nul \u0000 Name"},
        {"occurred_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))},
    ],
    ids=["nul-text", "nul-name", "year-1-plus-one-hour"],
)
def test_nothing_the_contract_accepts_stalls_the_projections(
    api: Api, fields: dict[str, Any]
) -> None:
    """Connectors hand InboundInteraction straight to the runtime: whatever the contract
    accepts must be projected, or be refused by the contract itself."""
    item = _contract_accepts(**fields)
    if item is None:
        return  # the contract refuses it: nothing can be recorded
    assert api.runtime is not None
    api.runtime.record([item])
    later = api.record(address="phone:+15550170021")

    api.wait_caught_up(timeout=5)  # fails when the follower is stuck on the first event

    assert [m["item_id"] for m in api.messages(later["customer_id"])] == [later["message_id"]]


def test_nul_in_agent_commands_and_delivery_reports_is_refused(api: Api) -> None:
    recorded = api.record(direction="outbound")
    conversation = f"/v1/conversations/{recorded['conversation_id']}"
    position = api.store_position()

    refused = [
        api.post(f"{conversation}/notes", json={"text": "note \u0000"}),
        api.put(f"{conversation}/assignee", json={"assignee": "kim\u0000"}),
        api.post(
            f"/v1/messages/{recorded['message_id']}/delivery",
            json={"status": "failed", "error_code": "30\u00000"},
        ),
        api.post(
            f"/v1/messages/{recorded['message_id']}/delivery",
            json={"status": "failed", "error_message": "bad \u0000"},
        ),
    ]

    for response in refused:
        assert_error(response, 422, "validation_error")
    assert api.store_position() == position
    assert api.post(f"{conversation}/notes", json={"text": "fine"}).status_code == 201
    api.wait_caught_up()
