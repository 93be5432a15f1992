"""POST /v1/activities and /v1/activities/batch on both backends: recorded once per (source,
source_id), the customer found by id, address or external id, refusals with their codes,
one bad item of a batch among good ones, the activity on the timeline among the messages by
the time it happened, and in GET /v1/events. A property: any text in the title, reference
or description is refused with a 4xx and a code, or recorded and read back as it was."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from tests.support.api import ADMIN_TOKEN, Api, ago, assert_error, running_app, unique
from tests.support.hostile import HOSTILE_TEXT


def activity(**overrides: Any) -> dict[str, Any]:
    """A valid body: an order placed 30 minutes ago, by address."""
    body: dict[str, Any] = {
        "type": "order.placed",
        "source": "shop",
        "source_id": unique("order"),
        "occurred_at": ago(30),
        "address": "email:alice@example.com",
        "amount": "129.00",
        "currency": "EUR",
        "reference": "#1042",
        "title": "2 x running shoes",
        "url": "https://shop.example.com/orders/1042",
    }
    return body | overrides


def test_an_activity_is_recorded_once_and_shown_among_the_messages(api: Api) -> None:
    older = api.record(address="phone:+15550107001", occurred_at=ago(60))
    cid = older["customer_id"]
    api.record(address="phone:+15550107001", occurred_at=ago(10))
    body = activity(address=None, customer_id=cid, description="Pick-up point Vilnius")

    first = api.post("/v1/activities", json=body)
    again = api.post("/v1/activities", json=body | {"title": "changed"})

    assert first.status_code == 201, first.text
    assert first.json() == {
        "activity_id": first.json()["activity_id"],
        "customer_id": cid,
        "duplicate": False,
    }
    assert again.status_code == 200
    assert again.json() | {"duplicate": False} == first.json()
    assert again.json()["duplicate"] is True
    items = api.timeline(cid)
    assert [i["kind"] for i in items if i["kind"] in ("message", "activity")] == [
        "message",
        "activity",
        "message",
    ]
    [shown] = [i for i in items if i["kind"] == "activity"]
    assert shown["item_id"] == first.json()["activity_id"]
    assert (shown["subject"], shown["text"]) == ("2 x running shoes", "Pick-up point Vilnius")
    assert shown["data"] | {"metadata": None} == {
        "type": "order.placed",
        "name": None,
        "amount": "129.00",
        "currency": "EUR",
        "reference": "#1042",
        "url": "https://shop.example.com/orders/1042",
        "source": "shop",
        "metadata": None,
    }
    [event] = [e for e in api.all_events() if e["type"] == "activity.recorded.v1"]
    assert event["customer_id"] == cid
    assert event["data"]["activity_id"] == shown["item_id"]
    assert event["data"]["amount"] == "129.00"
    assert datetime.fromisoformat(event["occurred_at"]) == datetime.fromisoformat(
        shown["occurred_at"]
    )


def test_an_unknown_address_registers_the_customer(api: Api) -> None:
    response = api.post("/v1/activities", json=activity(address="email:New.Buyer@example.com"))
    assert response.status_code == 201, response.text
    cid = response.json()["customer_id"]
    found = api.record(channel="email", address="email:new.buyer@example.com", subject="Hi")
    assert found["customer_id"] == cid


def test_an_external_id_finds_the_customer_once_mapped(api: Api) -> None:
    ref = {"system": "shop", "id": "C-1042"}
    alone = activity(address=None, external_id=ref)
    unknown = assert_error(api.post("/v1/activities", json=alone), 404, "not_found")
    assert "C-1042" in unknown["message"]
    cid = api.record(address="phone:+15550107002")["customer_id"]

    mapped = api.post(
        "/v1/activities", json=activity(address=None, customer_id=cid, external_id=ref)
    )
    found = api.post("/v1/activities", json=alone)

    assert mapped.status_code == found.status_code == 201
    assert found.json()["customer_id"] == cid
    other = api.record(address="phone:+15550107003")["customer_id"]
    taken = activity(address=None, customer_id=other, external_id=ref)
    assert_error(api.post("/v1/activities", json=taken), 409, "external_id_taken")


def test_refusals_have_their_codes(api: Api) -> None:
    missing = activity(address=None, customer_id=str(UUID(int=3)))
    assert_error(api.post("/v1/activities", json=missing), 404, "not_found")
    no_currency = assert_error(
        api.post("/v1/activities", json=activity(currency=None)), 422, "invalid_command"
    )
    assert no_currency["details"]["field"] == "currency"
    custom = assert_error(
        api.post("/v1/activities", json=activity(type="custom")), 422, "invalid_command"
    )
    assert custom["details"]["field"] == "name"
    future = assert_error(
        api.post("/v1/activities", json=activity(occurred_at=ago(-600))), 422, "invalid_command"
    )
    assert future["details"]["field"] == "occurred_at"
    assert_error(
        api.post("/v1/activities", json=activity(amount="1.23456")), 422, "validation_error"
    )
    cid = api.record(address="phone:+15550107004")["customer_id"]
    erase = api.post(f"/v1/customers/{cid}/erase", json={"reason": "data_subject_request"})
    assert erase.status_code == 200, erase.text
    erased = activity(address=None, customer_id=cid)
    assert_error(api.post("/v1/activities", json=erased), 410, "customer_erased")
    service = api.post("/v1/activities", json=activity(), token=None)
    assert service.status_code == 401


def test_a_batch_records_the_good_items_and_rejects_the_bad_one_by_one(api: Api) -> None:
    cid = api.record(address="phone:+15550107005")["customer_id"]
    good = activity(address=None, customer_id=cid)
    items = [
        good,
        activity(amount="12", currency="eur"),
        activity(address=None, customer_id=str(UUID(int=4))),
        activity(type="custom", name="trial.extended", amount=None, currency=None),
        activity(mood="angry"),
        good,
    ]
    response = api.post("/v1/activities/batch", json={"activities": items})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["recorded"], body["duplicates"], body["rejected"]) == (2, 1, 3)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "recorded",
        "rejected",
        "rejected",
        "recorded",
        "rejected",
        "duplicate",
    ]
    assert [r["error"]["code"] for r in results if r["error"]] == [
        "validation_error",
        "not_found",
        "validation_error",
    ]
    assert results[4]["error"]["details"]["errors"][0]["loc"] == ["mood"]
    assert results[5]["activity_id"] == results[0]["activity_id"]
    recorded = [e for e in api.all_events() if e["type"] == "activity.recorded.v1"]
    assert sorted(e["data"]["type"] for e in recorded) == ["custom", "order.placed"]
    assert_error(api.post("/v1/activities/batch", json={"activities": []}), 422, "empty_batch")
    too_many = {"activities": [good] * 501}
    assert_error(api.post("/v1/activities/batch", json=too_many), 413, "batch_too_large")


# -- any text, both ways -------------------------------------------------------------------

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
_customers = itertools.count(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("activity-text")
    with running_app(Settings(data_dir=data, admin_token=ADMIN_TOKEN)) as client:
        yield client


@given(
    field=st.sampled_from(("title", "reference", "description")),
    value=st.one_of(st.text(max_size=300), HOSTILE_TEXT),
)
@example(field="title", value="\u202eevil\u202c")
@example(field="reference", value="\x00")
@example(field="description", value="\ud800")
@_SETTINGS
def test_any_text_is_refused_with_a_code_or_read_back_as_it_was(
    app: Api, field: str, value: str
) -> None:
    address = f"chat:activity-text-{next(_customers)}"
    # json.dumps escapes a lone surrogate as JSON may (httpx would fail to encode it).
    body = json.dumps(activity(address=address, **{field: value}))
    response = app.post(
        "/v1/activities", content=body, headers={"Content-Type": "application/json"}
    )
    if response.status_code != 201:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"]
        return
    recorded = response.json()
    [item] = [i for i in app.timeline(recorded["customer_id"]) if i["kind"] == "activity"]
    shown = {"title": item["subject"], "description": item["text"]}
    shown["reference"] = item["data"]["reference"]
    assert shown[field] == value
    [event] = [
        e
        for e in app.all_events()
        if e["type"] == "activity.recorded.v1" and e["customer_id"] == recorded["customer_id"]
    ]
    assert event["data"][field] == value
