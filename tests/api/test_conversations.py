"""Agent commands on conversations: notes, status (and reopening), assignment."""

from __future__ import annotations

from uuid import uuid4

from tests.support.api import Api, ago, assert_error


def test_note_is_on_the_timeline(api: Api) -> None:
    recorded = api.record(address="phone:+15550112001")

    response = api.post(
        f"/v1/conversations/{recorded['conversation_id']}/notes",
        json={"text": "Customer prefers a call after 5pm."},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["conversation_id"] == recorded["conversation_id"]
    notes = [i for i in api.timeline(recorded["customer_id"]) if i["kind"] == "note"]
    assert [(n["item_id"], n["text"], n["conversation_id"]) for n in notes] == [
        (body["note_id"], "Customer prefers a call after 5pm.", recorded["conversation_id"])
    ]
    assert notes[0]["data"] == {"author": "admin (HUB_ADMIN_TOKEN)"}
    added = [e for e in api.all_events() if e["type"] == "note.added.v1"]
    assert [e["data"]["note_id"] for e in added] == [body["note_id"]]


def test_resolved_conversation_reopens_on_an_inbound_message(api: Api) -> None:
    first = api.record(address="phone:+15550112002", occurred_at=ago(10))
    url = f"/v1/conversations/{first['conversation_id']}"

    response = api.put(f"{url}/status", json={"status": "resolved"})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "resolved"}
    assert api.conversation(first["conversation_id"])["status"] == "resolved"
    profile = api.get(f"/v1/customers/{first['customer_id']}").json()
    assert profile["open_conversations"] == []

    again = api.record(address="phone:+15550112002", occurred_at=ago(1))

    assert again["conversation_id"] == first["conversation_id"]
    conversation = api.conversation(first["conversation_id"])
    assert (conversation["status"], conversation["message_count"]) == ("open", 2)
    changes = [
        i["data"] for i in api.timeline(first["customer_id"]) if i["kind"] == "status_changed"
    ]
    assert [(c["status"], c["previous_status"], c["reason"]) for c in changes] == [
        ("open", "resolved", "customer_replied"),
        ("resolved", "open", "agent"),
    ]


def test_setting_the_same_status_again_records_nothing(sqlite_api: Api) -> None:
    recorded = sqlite_api.record()
    url = f"/v1/conversations/{recorded['conversation_id']}/status"
    assert sqlite_api.put(url, json={"status": "pending"}).status_code == 200
    position = sqlite_api.store_position()
    assert sqlite_api.put(url, json={"status": "pending"}).status_code == 200
    assert sqlite_api.store_position() == position
    assert_error(sqlite_api.put(url, json={"status": "closed"}), 422, "validation_error")


def test_assign_and_unassign(api: Api) -> None:
    recorded = api.record(address="phone:+15550112003")
    url = f"/v1/conversations/{recorded['conversation_id']}/assignee"

    response = api.put(url, json={"assignee": "agent.kim"})
    assert response.status_code == 200, response.text
    assert response.json() == {"assignee": "agent.kim"}
    assert api.conversation(recorded["conversation_id"])["assignee"] == "agent.kim"

    assert api.put(url, json={"assignee": None}).status_code == 200
    assert api.conversation(recorded["conversation_id"])["assignee"] is None
    assigned = [i["data"] for i in api.timeline(recorded["customer_id"]) if i["kind"] == "assigned"]
    assert [a["assignee"] for a in assigned] == [None, "agent.kim"]


def test_unknown_conversation_is_404(api: Api) -> None:
    unknown = uuid4()
    position = api.store_position()
    assert_error(api.get(f"/v1/conversations/{unknown}"), 404, "not_found")
    assert_error(
        api.post(f"/v1/conversations/{unknown}/notes", json={"text": "x"}), 404, "not_found"
    )
    assert_error(
        api.put(f"/v1/conversations/{unknown}/status", json={"status": "resolved"}),
        404,
        "not_found",
    )
    assert_error(
        api.put(f"/v1/conversations/{unknown}/assignee", json={"assignee": "x"}), 404, "not_found"
    )
    assert api.store_position() == position


def test_empty_note_is_refused(sqlite_api: Api) -> None:
    recorded = sqlite_api.record()
    assert_error(
        sqlite_api.post(
            f"/v1/conversations/{recorded['conversation_id']}/notes", json={"text": ""}
        ),
        422,
        "validation_error",
    )
