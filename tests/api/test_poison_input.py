"""Input that, once recorded, would stop the projections: refused up front, never stalling."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from hub.events import InboundInteraction
from hub.runtime.group_commit import Unrecorded
from tests.support.api import Api, assert_error, interaction

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


@pytest.mark.parametrize(
    "metadata",
    [{"note": "a\u0000b"}, {"k\u0000": "v"}, {"deep": [{"x": ["\u0000"]}]}],
    ids=["value", "key", "nested"],
)
def test_nul_inside_metadata_is_refused(sqlite_api: Api, metadata: dict[str, Any]) -> None:
    """Metadata is published as JSON: a NUL would break every downstream PostgreSQL jsonb."""
    error = assert_error(
        sqlite_api.post("/v1/interactions", json=interaction(metadata=metadata)),
        422,
        "validation_error",
    )
    assert error["details"][0]["loc"][:2] == ["body", "metadata"]
    assert sqlite_api.store_position() == 0


# -- lone UTF-16 surrogates: valid JSON escapes, not valid text --------------------------------

SURROGATE_FIELDS = [
    ("text", "x\ud800"),
    ("contact_name", "x\ud800"),
    ("subject", "\udfff subject"),
    ("thread_ref", "ref\udc80"),
    ("provider_message_id", "id\ud800"),
    ("references", ["<a@x>", "<b\ud800@x>"]),
    ("metadata", {"note": "\ud800"}),
    ("metadata", {"\ud800": "key"}),
    ("metadata", {"deep": {"list": [1, "\udbff"]}}),
    ("attachments", [{"name": "a\ud800.pdf", "content_type": "application/pdf", "size": 1}]),
]


def post_raw(api: Api, url: str, body: Any) -> Any:
    """POST ``body`` as JSON with non-ASCII escaped, as any JSON client may send a lone
    surrogate (``"\\ud800"``); httpx's own encoder would refuse to send it."""
    return api.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("field", "value"), SURROGATE_FIELDS)
def test_lone_surrogates_are_refused(sqlite_api: Api, field: str, value: Any) -> None:
    error = assert_error(
        post_raw(sqlite_api, "/v1/interactions", interaction(**{field: value})),
        422,
        "validation_error",
    )
    assert error["details"][0]["loc"][:2] == ["body", field]
    assert sqlite_api.store_position() == 0


@pytest.mark.parametrize(
    "metadata",
    [{"n": 2**64}, {"n": -(2**63) - 1}, {"deep": json.loads("[" * 40 + "]" * 40)}],
    ids=["int-over-64-bits", "int-under-64-bits", "too-deep"],
)
def test_metadata_no_encoder_can_publish_is_refused(
    sqlite_api: Api, metadata: dict[str, Any]
) -> None:
    assert_error(
        post_raw(sqlite_api, "/v1/interactions", interaction(metadata=metadata)),
        422,
        "validation_error",
    )
    assert sqlite_api.store_position() == 0


def test_a_poisoned_batch_item_is_rejected_alone(api: Api) -> None:
    """The reproducer: a batch of valid items and one with a lone surrogate answered 500 for
    the whole batch. Now the poisoned item is rejected and every other one recorded."""
    items = [interaction(address=f"phone:+1555017{i:04d}") for i in range(300)]
    items.insert(150, interaction(address="phone:+15550179999", contact_name="x\ud800"))
    response = post_raw(api, "/v1/interactions/batch", {"interactions": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["recorded"], body["rejected"]) == (300, 1)
    assert body["results"][150]["status"] == "rejected"
    assert body["results"][150]["error"]["code"] == "validation_error"
    api.wait_caught_up()
    events = api.get("/v1/events", params={"after": 0, "limit": 1000})
    assert events.status_code == 200, events.text


def test_concurrent_valid_requests_succeed_beside_a_poisoned_one(sqlite_api: Api) -> None:
    """The reproducer: 60 valid requests and one poisoned one, written in one group commit,
    gave valid requests 500s. Each request now stands alone."""
    bodies = [interaction(address=f"phone:+1555018{i:04d}") for i in range(60)]
    bodies.insert(30, interaction(contact_name="x\ud800"))
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda b: post_raw(sqlite_api, "/v1/interactions", b).status_code, bodies)
        )
    assert statuses.count(202) == 60
    assert statuses[30] == 422


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
    api.runtime.record_now([item])
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


async def test_an_item_that_fails_in_the_store_fails_alone(api: Api) -> None:
    """Below the contract (a connector's bug, a rule the validators miss): an item whose
    recording raises is retried alone, and the requests grouped with it are recorded."""
    assert api.runtime is not None
    now = datetime.now(UTC) - timedelta(minutes=1)
    good = [
        InboundInteraction(
            channel="sms",
            direction="inbound",
            address=f"phone:+1555019{i:04d}",
            provider_message_id=f"group-{i}",
            occurred_at=now,
            text="fine",
        )
        for i in range(20)
    ]
    # model_construct skips validation: the surrogate reaches encryption, which raises.
    poisoned = InboundInteraction.model_construct(
        **(good[0].model_dump() | {"provider_message_id": "poisoned", "contact_name": "x\ud800"})
    )
    requests = [[g] for g in good[:10]] + [[poisoned]] + [good[10:]]
    outcomes = await asyncio.gather(*(api.runtime.submit(r) for r in requests))

    assert all(not isinstance(o[0], Unrecorded) for o in outcomes[:10])
    (failed,) = outcomes[10]
    assert isinstance(failed, Unrecorded)
    assert not any(isinstance(r, Unrecorded) for r in outcomes[11])
    api.wait_caught_up()
    events = api.get("/v1/events", params={"after": 0, "limit": 1000}).json()["events"]
    recorded = {e["data"].get("provider_message_id") for e in events}
    assert {f"group-{i}" for i in range(20)} <= recorded
    assert "poisoned" not in recorded
