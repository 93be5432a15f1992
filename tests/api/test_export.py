"""GET /v1/customers/{id}/export: everything the hub holds about a person, for the whole merge
group (their scheduled messages too), as one JSON document that validates against
docs/export.schema.json; admin only; 404 for an unknown customer, 410 for an erased one; the
export itself is in the access log."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import jsonschema_rs
import pytest

from hub.config import Settings
from hub.events.export import ExportDocument, document_schema
from hub.runtime import export as export_module
from hub.runtime.export import CustomerExport
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    CUSTOMER,
    TwilioPeer,
    incoming_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN_TOKEN, Api, ago, assert_error, running_app, unique, wait_for

PUBLIC = "https://hub.example.test"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "export.schema.json"
EMAIL = "email:ada.export@example.com"


@pytest.fixture
def hub(backend: str, make_settings: Callable[..., Settings], twilio: TwilioPeer) -> Iterator[Api]:
    """The app on each backend, replies going to a Twilio Messages API on loopback."""
    settings = make_settings(
        backend,
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        twilio=twilio_settings(twilio.url),
        dispatch={"quiet_hours_start": None},
    )
    with running_app(settings) as api:
        yield api


def export_of(api: Api, customer_id: str, token: str | None = ADMIN_TOKEN) -> dict[str, Any]:
    response = api.get(f"/v1/customers/{customer_id}/export", token=token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert not re.search(r'"pd\d+:', response.text), "ciphertext in the export"
    document: dict[str, Any] = response.json()
    jsonschema_rs.validator_for(json.loads(SCHEMA_FILE.read_text())).validate(document)
    ExportDocument.model_validate(document)  # the models, strictly (no unknown field)
    return document


def test_the_checked_in_schema_is_the_models_schema() -> None:
    """Regenerate with `hub customers export-schema > docs/export.schema.json`."""
    assert json.loads(SCHEMA_FILE.read_text()) == document_schema()


def _a_person(api: Api, twilio: TwilioPeer) -> dict[str, Any]:
    """A person known by SMS and by email (merged), with a reply delivered, a note, a status
    change, an assignment, a tag and a consent withdrawal."""
    sms = api.record(
        channel="sms",
        address=f"phone:{CUSTOMER}",
        text="Where is my order?",
        contact_name="Ada Lovelace",
        occurred_at=ago(30),
    )
    email = api.record(
        channel="email",
        address=EMAIL,
        subject="Invoice 42",
        text="Please find the invoice attached.",
        occurred_at=ago(20),
        attachments=[
            {
                "name": "invoice-42.pdf",
                "content_type": "application/pdf",
                "size": 12345,
                "url": "https://files.example.com/invoice-42.pdf",
            }
        ],
    )
    conversation = sms["conversation_id"]
    reply = api.post(f"/v1/conversations/{conversation}/messages", json={"text": "It ships today."})
    assert reply.status_code == 202, reply.text
    reply_id = reply.json()["message_id"]
    wait_for(lambda: twilio.messages)

    def dispatched() -> bool:
        api.wait_caught_up()
        found = api.get(f"/v1/messages/{reply_id}").json()
        return not str(found["provider_message_id"]).startswith("hub:")

    wait_for(dispatched)
    delivered = api.post(f"/v1/messages/{reply_id}/delivery", json={"status": "delivered"})
    assert delivered.status_code == 200, delivered.text
    note = api.post(f"/v1/conversations/{conversation}/notes", json={"text": "VIP, be quick"})
    assert note.status_code == 201, note.text
    assert api.put(
        f"/v1/conversations/{conversation}/assignee", json={"assignee": "bob"}
    ).is_success
    assert api.put(
        f"/v1/conversations/{conversation}/status", json={"status": "resolved"}
    ).is_success
    assert api.put(f"/v1/customers/{sms['customer_id']}/tags", json={"tags": ["vip"]}).is_success
    params = incoming_params("STOP", "SM" + "e" * 32)
    stop = api.client.post(
        "/webhooks/twilio/sms",
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(
                AUTH_TOKEN, PUBLIC + "/webhooks/twilio/sms", params
            ),
        },
    )
    assert stop.status_code == 200, stop.text
    merged = api.post(
        f"/v1/customers/{email['customer_id']}/merge",
        json={"customer_id": sms["customer_id"], "reason": "same person, confirmed by phone"},
    )
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    return {
        "sms": sms,
        "email": email,
        "reply_id": reply_id,
        "note_id": note.json()["note_id"],
    }


def test_the_export_holds_everything_about_the_group(hub: Api, twilio: TwilioPeer) -> None:
    person = _a_person(hub, twilio)
    root, member = person["email"]["customer_id"], person["sms"]["customer_id"]
    assert hub.get(f"/v1/customers/{member}").status_code == 200  # a read to find in the log

    document = export_of(hub, member)  # asked by the merged one: the whole group, root first

    assert document["format"] == "interaction-hub.customer-export"
    assert document["version"] == 1
    assert document["customer_id"] == root
    assert document["customer_ids"] == [root, member]
    assert document["profile"]["display_name"] == "Ada Lovelace"
    assert document["profile"]["tags"] == ["vip"]
    members = {m["customer_id"]: m for m in document["members"]}
    assert members[member]["merged_into"] == root
    assert members[root]["merged_into"] is None

    identities = {i["address"]: i for i in document["identities"]}
    assert set(identities) == {f"phone:{CUSTOMER}", EMAIL}
    phone = identities[f"phone:{CUSTOMER}"]
    assert phone["source"] == "first_contact"
    assert phone["customer_id"] == member
    assert phone["first_message_id"] == person["sms"]["message_id"]
    assert phone["verified"] is False

    (withdrawn,) = document["consent"]
    assert withdrawn["customer_id"] == member
    assert withdrawn["channel"] == "sms"
    assert withdrawn["granted"] is False
    assert withdrawn["source"] == "keyword"

    (merge,) = [m for m in document["merges"] if m["kind"] == "merged"]
    assert merge["customer_id"] == member
    assert merge["other_customer_id"] == root
    assert merge["reason"] == "same person, confirmed by phone"
    assert merge["actor"]
    assert [m["kind"] for m in document["merges"] if m["customer_id"] == root] == ["absorbed"]

    conversations = {c["channel"]: c for c in document["conversations"]}
    assert set(conversations) == {"sms", "email"}
    sms = conversations["sms"]
    assert sms["customer_id"] == member
    assert sms["address"] == f"phone:{CUSTOMER}"
    assert sms["status"] == "open"  # the STOP reopened it after it was resolved
    assert sms["assignee"] == "bob"
    assert sms["message_count"] == 3
    kinds = [i["kind"] for i in sms["items"]]
    assert kinds == [
        "message",
        "message",
        "note",
        "assigned",
        "status_changed",
        "message",
        "status_changed",
    ]
    first, reply, note, assigned, resolved, stop, reopened = sms["items"]
    assert (first["direction"], first["text"], first["contact_name"]) == (
        "inbound",
        "Where is my order?",
        "Ada Lovelace",
    )
    assert first["delivery_status"] == "received"
    assert first["delivery"] == []
    assert reply["message_id"] == person["reply_id"]
    assert (reply["direction"], reply["text"]) == ("outbound", "It ships today.")
    assert reply["delivery_status"] == "delivered"
    steps = [s["event"] for s in reply["delivery"]]
    assert steps == ["dispatch_requested", "dispatch_started", "dispatched", "delivery_updated"]
    assert reply["delivery"][0]["author"]
    assert reply["delivery"][2]["provider_message_id"] == twilio.messages[0]["sid"]
    assert reply["delivery"][-1]["status"] == "delivered"
    # What else the hub recorded with a step comes along (the purpose, the decision basis).
    assert reply["delivery"][0]["details"]["purpose"] == "service"
    assert reply["delivery"][1]["details"]["basis"]["decision"] == "send"
    assert note["note_id"] == person["note_id"]
    assert note["text"] == "VIP, be quick"
    assert (assigned["assignee"], resolved["status"]) == ("bob", "resolved")
    assert withdrawn["message_id"] == stop["message_id"]
    assert (stop["text"], reopened["status"], reopened["reason"]) == (
        "STOP",
        "open",
        "customer_replied",
    )

    email = conversations["email"]
    assert email["subject"] == "Invoice 42"
    (message,) = email["items"]
    assert message["subject"] == "Invoice 42"
    assert message["text"] == "Please find the invoice attached."
    assert message["attachments"] == [
        {
            "name": "invoice-42.pdf",
            "content_type": "application/pdf",
            "size": 12345,
            "url": "https://files.example.com/invoice-42.pdf",
        }
    ]

    reads = [(e["action"], e["customer_id"]) for e in document["access_log"]]
    assert ("GET /v1/customers/{customer_id}", root) in reads

    # Asked by the root: the same document (but for the time it was made and the log).
    again = export_of(hub, root)
    for part in ("customer_ids", "profile", "members", "identities", "consent", "merges"):
        assert again[part] == document[part], part
    assert again["conversations"] == document["conversations"]


def test_the_export_is_recorded_in_the_access_log(api: Api) -> None:
    recorded = api.record(text="hello", address="phone:+15550177001")
    customer = recorded["customer_id"]
    api.wait_caught_up()

    document = export_of(api, customer)
    assert not [e for e in document["access_log"] if "export" in e["action"]]

    log = api.get(f"/v1/customers/{customer}/access-log").json()["items"]
    (entry,) = [e for e in log if e["action"] == "GET /v1/customers/{customer_id}/export"]
    assert entry["items"] == 1
    assert entry["role"] == "admin"
    later = export_of(api, customer)
    assert [e["id"] for e in later["access_log"] if "export" in e["action"]] == [entry["id"]]


def test_only_an_admin_may_export(api: Api) -> None:
    assert api.runtime is not None
    customer = api.record(address="phone:+15550177002")["customer_id"]
    url = f"/v1/customers/{customer}/export"
    for role in ("agent", "service"):
        _, token = api.runtime.tokens.create(role, role)
        assert_error(api.get(url, token=token), 403, "forbidden")
    assert_error(api.get(url, token=None), 401, "unauthorized")
    assert export_of(api, customer)["customer_id"] == customer


def test_an_unknown_customer_is_404_and_an_erased_one_410(api: Api) -> None:
    recorded = api.record(address="phone:+15550177003", provider_message_id=unique())
    assert_error(api.get(f"/v1/customers/{uuid4()}/export"), 404, "not_found")
    for other in (recorded["conversation_id"], recorded["message_id"]):
        assert_error(api.get(f"/v1/customers/{other}/export"), 404, "not_found")

    erased = api.post(
        f"/v1/customers/{recorded['customer_id']}/erase", json={"reason": "data_subject_request"}
    )
    assert erased.status_code == 200, erased.text
    assert_error(api.get(f"/v1/customers/{recorded['customer_id']}/export"), 410, "customer_erased")


def test_a_customer_with_no_conversation_projected_yet_still_exports(sqlite_api: Api) -> None:
    """The views only say which conversations exist: a customer the views have not seen is
    exported from the store (profile, identities), without conversations."""
    assert sqlite_api.runtime is not None
    outcome = sqlite_api.runtime.commands.identity.link_address(
        "chat:visitor-export",
        "email:visitor.export@example.com",
        verified=True,
        reason="verification",
    )
    document = export_of(sqlite_api, str(outcome.customer_id))
    identities = {i["address"]: i for i in document["identities"]}
    assert identities["chat:visitor-export"]["source"] == "first_contact"
    assert identities["chat:visitor-export"]["first_message_id"] is None
    linked = identities["email:visitor.export@example.com"]
    assert (linked["source"], linked["reason"], linked["verified"]) == (
        "linked",
        "verification",
        True,
    )
    assert linked["verification_reason"] == "verification"
    assert document["conversations"] == []


def _schedule(api: Api, customer_id: str, text: str, channels: list[str], **body: Any) -> str:
    response = api.post(
        f"/v1/customers/{customer_id}/scheduled-messages",
        json={
            "text": text,
            "channels": channels,
            "send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        }
        | body,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_export_holds_the_scheduled_messages_and_an_erasure_leaves_no_text(
    hub: Api, twilio: TwilioPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending, cancelled, skipped and queued scheduled messages of the whole group, with
    their text; once the person is erased there is no export, and what the writer reads holds
    no text."""
    api = hub
    runtime = api.runtime
    assert runtime is not None
    sms = api.record(channel="sms", address="phone:+15550177010", occurred_at=ago(30))
    email = api.record(channel="email", address="email:grace.export@example.com")
    member, root = sms["customer_id"], email["customer_id"]
    pending = _schedule(api, member, "Your appointment is tomorrow at 10:00", ["sms"])
    cancelled = _schedule(api, member, "Your parcel arrives on Friday", ["sms"])
    skipped = _schedule(
        api, member, "Your invoice is attached", ["email"], subject="Invoice 43"
    )  # the SMS customer has no email address (yet): skipped when it comes due
    path = f"/v1/customers/{member}/scheduled-messages/{cancelled}"
    assert api.request("DELETE", path).status_code == 204
    outcome = runtime.commands.schedules.fire(
        UUID(skipped), now=datetime.now(UTC) + timedelta(days=2), policy=runtime.policy
    )
    assert outcome.code == "no_channel"
    sent = _schedule(api, member, "We are open on Sunday", ["sms"])
    queued = runtime.commands.schedules.fire(
        UUID(sent), now=datetime.now(UTC) + timedelta(days=2), policy=runtime.policy
    )
    assert (queued.decision, queued.channel) == ("send", "sms")
    merged = api.post(f"/v1/customers/{root}/merge", json={"customer_id": member, "reason": "x"})
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()

    document = export_of(api, root)  # the merged record's scheduled messages are the group's
    assert document["customer_id"] == root

    assert list(document)[-3:] == ["conversations", "scheduled_messages", "access_log"]
    found = {m["id"]: m for m in document["scheduled_messages"]}
    assert list(found) == [pending, cancelled, skipped, sent]  # by due time
    first = found[pending]
    assert first["customer_id"] == member
    assert first["status"] == "scheduled"
    assert (first["action"], first["purpose"], first["channels"]) == ("send", "service", ["sms"])
    assert (first["text"], first["subject"], first["template"]) == (
        "Your appointment is tomorrow at 10:00",
        None,
        None,
    )
    assert first["source"] == {"kind": "api", "id": "api", "name": None}
    assert first["scheduled_by"] == "admin (HUB_ADMIN_TOKEN)"
    assert datetime.fromisoformat(first["due_at"]) > datetime.fromisoformat(first["scheduled_at"])
    assert (first["reason_code"], first["message_id"], first["channel"]) == (None, None, None)
    assert found[cancelled]["status"] == "cancelled"
    assert found[cancelled]["text"] == "Your parcel arrives on Friday"
    late = found[skipped]
    assert (late["status"], late["reason_code"]) == ("skipped", "no_channel")
    assert late["reason"] == "email: no address"
    assert (late["text"], late["subject"]) == ("Your invoice is attached", "Invoice 43")
    assert late["message_id"] is None
    out = found[sent]
    assert (out["status"], out["channel"]) == ("queued", "sms")
    assert out["message_id"] == str(queued.message_id)
    assert out["text"] == "We are open on Sunday"
    assert out["reason_code"] is None
    # The message it became is in its conversation, with the same text.
    (conversation,) = [c for c in document["conversations"] if c["channel"] == "sms"]
    (message,) = [i for i in conversation["items"] if i.get("message_id") == out["message_id"]]
    assert message["text"] == "We are open on Sunday"

    monkeypatch.setattr(export_module, "SCHEDULED_PAGE", 1)  # a page at a time: the same
    assert export_of(api, root)["scheduled_messages"] == document["scheduled_messages"]

    log = api.get(f"/v1/customers/{root}/access-log").json()["items"]
    exports = [e for e in log if e["action"] == "GET /v1/customers/{customer_id}/export"]
    # Three messages (one the queued scheduled one became) and four scheduled messages.
    assert [e["items"] for e in exports] == [3 + 4] * 2

    erased = api.post(f"/v1/customers/{root}/erase", json={"reason": "data_subject_request"})
    assert erased.status_code == 200, erased.text
    assert_error(api.get(f"/v1/customers/{member}/export"), 410, "customer_erased")
    # Past the refusal, the writer still finds no text to write: keys destroyed, views purged.
    writer = CustomerExport(runtime, [UUID(root), UUID(member)], datetime.now(UTC))
    written = b"".join(writer.chunks()).decode()
    for text in ("appointment", "parcel", "invoice", "Invoice 43", "Sunday"):
        assert text not in written, text
    assert json.loads(written)["scheduled_messages"] == []
    # And were a lagging view to list them, their texts no longer decrypt.
    schedules = runtime.commands.schedules
    for oid in (pending, cancelled, skipped, sent):
        assert schedules.text_of(schedules.get(UUID(oid))) == (None, None)
