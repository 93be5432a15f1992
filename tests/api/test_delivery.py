"""POST /v1/messages/{id}/delivery: statuses move forward only and show on the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tests.support.api import Api, assert_error


def _status_on_timeline(api: Api, customer_id: str, message_id: str) -> dict[str, object]:
    (item,) = [i for i in api.timeline(customer_id) if i["item_id"] == message_id]
    return item


def test_delivered_then_late_sent_does_not_regress(api: Api) -> None:
    sent = api.record(direction="outbound", address="phone:+15550113001")
    url = f"/v1/messages/{sent['message_id']}/delivery"
    assert (
        _status_on_timeline(api, sent["customer_id"], sent["message_id"])["delivery_status"]
        == "sent"
    )

    delivered = api.post(url, json={"status": "delivered"})
    assert delivered.status_code == 200, delivered.text
    assert delivered.json() == {"message_id": sent["message_id"], "delivery_status": "delivered"}
    assert (
        _status_on_timeline(api, sent["customer_id"], sent["message_id"])["delivery_status"]
        == "delivered"
    )
    position = api.store_position()

    late = api.post(url, json={"status": "sent", "occurred_at": "2020-01-01T00:00:00Z"})
    assert late.status_code == 200
    assert late.json()["delivery_status"] == "delivered"
    assert api.store_position() == position
    assert (
        _status_on_timeline(api, sent["customer_id"], sent["message_id"])["delivery_status"]
        == "delivered"
    )

    read = api.post(url, json={"status": "read"})
    assert read.json()["delivery_status"] == "read"
    assert (
        _status_on_timeline(api, sent["customer_id"], sent["message_id"])["delivery_status"]
        == "read"
    )
    updates = [
        e["data"] for e in api.all_events() if e["type"] == "interaction.delivery_updated.v1"
    ]
    assert [(u["message_id"], u["status"]) for u in updates] == [
        (sent["message_id"], "delivered"),
        (sent["message_id"], "read"),
    ]


def test_failure_keeps_its_error_details(sqlite_api: Api) -> None:
    sent = sqlite_api.record(direction="outbound")
    response = sqlite_api.post(
        f"/v1/messages/{sent['message_id']}/delivery",
        json={"status": "failed", "error_code": "30006", "error_message": "landline"},
    )
    assert response.json()["delivery_status"] == "failed"
    item = _status_on_timeline(sqlite_api, sent["customer_id"], sent["message_id"])
    assert item["delivery_status"] == "failed"
    assert item["data"]["error_code"] == "30006"  # type: ignore[index]
    assert item["data"]["error_message"] == "landline"  # type: ignore[index]


def test_unknown_message_is_404(sqlite_api: Api) -> None:
    assert_error(
        sqlite_api.post(f"/v1/messages/{uuid4()}/delivery", json={"status": "delivered"}),
        404,
        "not_found",
    )
    assert sqlite_api.store_position() == 0


def test_unknown_status_is_422(sqlite_api: Api) -> None:
    sent = sqlite_api.record(direction="outbound")
    assert_error(
        sqlite_api.post(f"/v1/messages/{sent['message_id']}/delivery", json={"status": "lost"}),
        422,
        "validation_error",
    )


def test_report_times_out_of_range_are_refused(sqlite_api: Api) -> None:
    sent = sqlite_api.record(direction="outbound")
    url = f"/v1/messages/{sent['message_id']}/delivery"
    position = sqlite_api.store_position()
    for occurred_at, code in [
        ("0001-01-01T00:00:00+01:00", "occurred_at_out_of_range"),
        ("1969-12-31T23:59:59Z", "occurred_at_out_of_range"),
        ("9999-12-31T23:59:59-01:00", "occurred_at_in_future"),
        ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "occurred_at_in_future"),
    ]:
        response = sqlite_api.post(url, json={"status": "delivered", "occurred_at": occurred_at})
        assert_error(response, 422, code)
    assert sqlite_api.store_position() == position
    accepted = sqlite_api.post(
        url, json={"status": "delivered", "occurred_at": "2020-01-01T00:00:00Z"}
    )
    assert accepted.json()["delivery_status"] == "delivered"
