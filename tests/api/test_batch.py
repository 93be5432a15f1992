"""POST /v1/interactions/batch: per-item results, replays, and the batch limits."""

from __future__ import annotations

from tests.support.api import Api, ago, assert_error, interaction


def test_mixed_batch_records_the_good_items_and_reports_each(api: Api) -> None:
    items = [
        interaction(address="phone:+15550103001", provider_message_id="b-0", occurred_at=ago(5)),
        interaction(address="phone:12", provider_message_id="b-1"),
        interaction(
            channel="email",
            address="email:carol@example.com",
            provider_message_id="b-2",
            subject="Refund",
        ),
        interaction(provider_message_id="b-3", mood="angry"),
        interaction(address="phone:+15550103001", provider_message_id="b-4", occurred_at=ago(4)),
    ]
    response = api.post("/v1/interactions/batch", json={"interactions": items})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["recorded"], body["duplicates"], body["rejected"]) == (3, 0, 2)
    results = body["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "recorded"),
        (1, "rejected"),
        (2, "recorded"),
        (3, "rejected"),
        (4, "recorded"),
    ]
    assert results[1]["error"]["code"] == "invalid_address"
    assert results[3]["error"]["code"] == "validation_error"
    assert results[3]["error"]["details"]["errors"][0]["loc"] == ["mood"]
    for rejected in (results[1], results[3]):
        assert rejected["message_id"] is None
    for recorded in (results[0], results[2], results[4]):
        assert recorded["error"] is None
    assert results[0]["customer_id"] == results[4]["customer_id"] != results[2]["customer_id"]
    assert results[0]["conversation_id"] == results[4]["conversation_id"]

    phone = api.messages(results[0]["customer_id"])
    assert [(m["provider_message_id"], m["item_id"]) for m in phone] == [
        ("b-4", results[4]["message_id"]),
        ("b-0", results[0]["message_id"]),
    ]
    email = api.messages(results[2]["customer_id"])
    assert [(m["provider_message_id"], m["subject"]) for m in email] == [("b-2", "Refund")]
    received = [e for e in api.all_events() if e["type"] == "interaction.received.v1"]
    assert sorted(e["data"]["provider_message_id"] for e in received) == ["b-0", "b-2", "b-4"]


def test_batch_sent_again_is_all_duplicates(api: Api) -> None:
    items = [
        interaction(address=f"phone:+1555010400{n}", provider_message_id=f"again-{n}")
        for n in range(4)
    ]
    first = api.post("/v1/interactions/batch", json={"interactions": items}).json()
    assert first["recorded"] == 4
    events = api.all_events()

    again = api.post("/v1/interactions/batch", json={"interactions": items})

    assert again.status_code == 200
    body = again.json()
    assert (body["recorded"], body["duplicates"], body["rejected"]) == (0, 4, 0)
    assert [r["status"] for r in body["results"]] == ["duplicate"] * 4
    for before, after in zip(first["results"], body["results"], strict=True):
        assert after["message_id"] == before["message_id"]
        assert after["customer_id"] == before["customer_id"]
        assert after["conversation_id"] == before["conversation_id"]
    assert api.all_events() == events
    # A single POST of an item of the batch is a duplicate too.
    single = api.post("/v1/interactions", json=items[2])
    assert single.status_code == 200
    assert single.json()["message_id"] == first["results"][2]["message_id"]


def test_the_same_item_twice_in_one_batch_is_recorded_once(sqlite_api: Api) -> None:
    item = interaction(provider_message_id="twice")
    body = sqlite_api.post("/v1/interactions/batch", json={"interactions": [item, item]}).json()

    assert [r["status"] for r in body["results"]] == ["recorded", "duplicate"]
    assert body["results"][0]["message_id"] == body["results"][1]["message_id"]
    received = [e for e in sqlite_api.all_events() if e["type"] == "interaction.received.v1"]
    assert len(received) == 1


def test_batch_of_1001_is_413_batch_too_large(sqlite_api: Api) -> None:
    items = [interaction(provider_message_id=f"big-{n}") for n in range(1001)]
    error = assert_error(
        sqlite_api.post("/v1/interactions/batch", json={"interactions": items}),
        413,
        "batch_too_large",
    )
    assert error["details"] == {"items": 1001}
    assert sqlite_api.store_position() == 0

    accepted = sqlite_api.post("/v1/interactions/batch", json={"interactions": items[:1000]})
    assert accepted.status_code == 200
    assert accepted.json()["recorded"] == 1000


def test_empty_batch_is_422_empty_batch(sqlite_api: Api) -> None:
    assert_error(
        sqlite_api.post("/v1/interactions/batch", json={"interactions": []}), 422, "empty_batch"
    )
    assert sqlite_api.store_position() == 0


def test_malformed_batch_envelope_is_refused(sqlite_api: Api) -> None:
    assert_error(
        sqlite_api.post("/v1/interactions/batch", json={"items": []}), 422, "validation_error"
    )
    assert_error(
        sqlite_api.post("/v1/interactions/batch", json={"interactions": ["not an object"]}),
        422,
        "validation_error",
    )
    assert_error(
        sqlite_api.post(
            "/v1/interactions/batch",
            content=b'{"interactions": [',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "malformed_json",
    )
    assert sqlite_api.store_position() == 0
