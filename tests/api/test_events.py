"""GET /v1/events: the published event feed, its envelope and its paging."""

from __future__ import annotations

from uuid import UUID

from hub.events import EVENT_TYPES, decode_event
from tests.support.api import Api, assert_error, interaction

ENVELOPE = {
    "id",
    "type",
    "occurred_at",
    "recorded_at",
    "customer_id",
    "position",
    "causation_id",
    "correlation_id",
    "erased",
    "data",
}


def _activity(api: Api) -> dict[str, str]:
    first = api.record(address="phone:+15550114001", contact_name="Feed Person")
    api.record(address="phone:+15550114001", channel="whatsapp")
    api.record(channel="email", address="email:feed@example.com", direction="outbound")
    api.post(f"/v1/conversations/{first['conversation_id']}/notes", json={"text": "n"})
    api.put(f"/v1/conversations/{first['conversation_id']}/status", json={"status": "pending"})
    api.put(f"/v1/conversations/{first['conversation_id']}/assignee", json={"assignee": "kim"})
    return first


def test_events_list_published_events_with_their_envelope(api: Api) -> None:
    first = _activity(api)

    response = api.get("/v1/events", params={"after": 0})

    assert response.status_code == 200, response.text
    page = response.json()
    events = page["events"]
    assert page["next_after"] == api.store_position()
    assert [e["type"] for e in events] == [
        "customer.created.v1",
        "conversation.opened.v1",
        "interaction.received.v1",
        "conversation.opened.v1",
        "interaction.received.v1",
        "customer.created.v1",
        "conversation.opened.v1",
        "interaction.sent.v1",
        "note.added.v1",
        "conversation.status_changed.v1",
        "conversation.assigned.v1",
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))
    assert len({e["id"] for e in events}) == len(events)
    for event in events:
        assert set(event) == ENVELOPE, event
        assert event["type"] in EVENT_TYPES
        decoded = decode_event(event)
        assert decoded.type == event["type"]
        assert decoded.model_dump(mode="json") == event
        assert UUID(event["id"]).version == 7
    assert events[0]["customer_id"] == first["customer_id"]
    assert events[0]["data"] == {
        "display_name": "Feed Person",
        "address": "phone:+15550114001",
        "source": None,  # no acquisition source: not a first contact to a named endpoint
    }
    received = events[2]
    assert received["data"]["message_id"] == first["message_id"]
    assert received["correlation_id"] == first["message_id"]
    # Ids are stable: reading again gives the same events.
    assert api.get("/v1/events", params={"after": 0}).json() == page


def test_paging_with_next_after_sees_every_event_once(api: Api) -> None:
    _activity(api)
    everything = api.get("/v1/events", params={"after": 0, "limit": 1000}).json()["events"]

    paged: list[dict[str, object]] = []
    after = 0
    while True:
        page = api.get("/v1/events", params={"after": after, "limit": 2}).json()
        assert len(page["events"]) <= 2
        paged += page["events"]
        if page["next_after"] == after:
            break
        assert page["next_after"] > after
        after = page["next_after"]
    assert paged == everything
    assert after == api.store_position()

    tail = api.get("/v1/events", params={"after": everything[-3]["position"]}).json()
    assert tail["events"] == everything[-2:]


def test_nothing_after_the_end(sqlite_api: Api) -> None:
    sqlite_api.record()
    end = sqlite_api.store_position()
    assert sqlite_api.get("/v1/events", params={"after": end}).json() == {
        "events": [],
        "next_after": end,
    }


def test_bad_paging_parameters_are_422(sqlite_api: Api) -> None:
    for params in ({"after": -1}, {"after": "x"}, {"limit": 0}, {"limit": 1001}):
        assert_error(sqlite_api.get("/v1/events", params=params), 422, "validation_error")


def test_batch_events_keep_item_order(sqlite_api: Api) -> None:
    items = [
        interaction(address=f"phone:+1555011420{n}", provider_message_id=f"o{n}") for n in range(5)
    ]
    sqlite_api.post("/v1/interactions/batch", json={"interactions": items})
    received = [
        e["data"]["provider_message_id"]
        for e in sqlite_api.all_events()
        if e["type"] == "interaction.received.v1"
    ]
    assert received == ["o0", "o1", "o2", "o3", "o4"]
