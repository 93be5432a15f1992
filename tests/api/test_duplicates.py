"""Duplicate suggestions through the API on both backends: a customer's suggestions and the
review queue with evidence, the merge preview, "not the same person" and its undo (recorded
once), the identity blocklist (admins set it, it takes effect at once), the merge group size
limit, and the access log of every read."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app
from tests.support.hostile import HOSTILE_TEXT, as_utf8_wire
from tests.support.store import SettingsFactory

JONAS_PHONE = "phone:+37061234567"
JONAS_MAIL = "email:jonas.kazlauskas@gmail.com"


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _jonas(api: Api) -> tuple[str, str]:
    """One person as two customers: an SMS and an email that mentions the number."""
    sms = api.record(address=JONAS_PHONE, contact_name="Jonas Kazlauskas", text="labas")
    mail = api.record(
        channel="email",
        address=JONAS_MAIL,
        contact_name="Jonas K.",
        subject="Užsakymas",
        text="Mano telefonas +370 612 34567",
    )
    api.record(channel="whatsapp", address=JONAS_PHONE, text="ar gavote?")
    api.wait_caught_up()
    return sms["customer_id"], mail["customer_id"]


def test_a_customer_shows_its_possible_duplicates_with_evidence(api: Api) -> None:
    sms, mail = _jonas(api)

    found = ok(api.get(f"/v1/customers/{sms}/duplicates"))
    assert found["customer_id"] == sms
    [suggestion] = found["items"]
    assert suggestion["customer"]["customer_id"] == mail
    assert suggestion["customer"]["display_name"] == "Jonas K."
    assert suggestion["customer"]["addresses"] == [JONAS_MAIL]
    assert suggestion["band"] == "high"
    kinds = {e["kind"] for e in suggestion["evidence"]}
    assert "mentioned_address" in kinds
    mentioned = next(e for e in suggestion["evidence"] if e["kind"] == "mentioned_address")
    assert "+37061234567" in mentioned["detail"]
    assert mentioned["weight"] > 0
    other_side = ok(api.get(f"/v1/customers/{mail}/duplicates"))["items"]
    assert [s["customer"]["customer_id"] for s in other_side] == [sms]


def test_the_review_queue_pages_highest_score_first(api: Api) -> None:
    sms, mail = _jonas(api)
    api.record(address="phone:+447700900111", contact_name="John Smith")
    api.record(address="phone:+447700900222", contact_name="John Smith")
    api.wait_caught_up()

    first = ok(api.get("/v1/duplicates", params={"limit": 1}))
    assert len(first["items"]) == 1
    assert first["items"][0]["band"] == "high"
    assert {c["customer_id"] for c in first["items"][0]["customers"]} == {sms, mail}
    assert first["next_cursor"]
    second = ok(api.get("/v1/duplicates", params={"limit": 1, "cursor": first["next_cursor"]}))
    assert [p["band"] for p in second["items"]] == ["low"]
    assert second["items"][0]["score"] <= first["items"][0]["score"]
    assert second["next_cursor"] is None
    assert [p["band"] for p in ok(api.get("/v1/duplicates", params={"band": "low"}))["items"]] == [
        "low"
    ]
    assert_error(api.get("/v1/duplicates", params={"cursor": "nonsense"}), 400, "invalid_cursor")
    assert_error(api.get("/v1/duplicates", params={"band": "huge"}), 422, "validation_error")


def test_the_merge_preview_counts_channels_and_says_which_value_wins(api: Api) -> None:
    sms, mail = _jonas(api)

    preview = ok(api.get(f"/v1/customers/{sms}/duplicates/{mail}/preview"))
    assert preview["survivor"]["customer_id"] == sms
    assert preview["merged"]["customer_id"] == mail
    channels = {c["channel"]: (c["survivor"], c["merged"], c["total"]) for c in preview["channels"]}
    assert channels == {"sms": (1, 0, 1), "whatsapp": (1, 0, 1), "email": (0, 1, 1)}
    name = next(f for f in preview["fields"] if f["name"] == "display_name")
    assert name == {
        "name": "display_name",
        "survivor": "Jonas Kazlauskas",
        "merged": "Jonas K.",
        "result": "Jonas Kazlauskas",
        "source": "survivor",
        "conflict": True,
    }
    assert "display_name" in preview["conflicts"]
    reverse = ok(api.get(f"/v1/customers/{mail}/duplicates/{sms}/preview"))
    assert next(f for f in reverse["fields"] if f["name"] == "display_name")["result"] == "Jonas K."

    merged = api.post(f"/v1/customers/{sms}/merge", json={"customer_id": mail})
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    assert ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"] == []
    assert_error(api.get(f"/v1/customers/{sms}/duplicates/{mail}/preview"), 409, "same_group")
    assert_error(api.get(f"/v1/customers/{sms}/duplicates/{sms}/preview"), 422, "invalid_command")


def test_not_the_same_person_is_recorded_once_and_undone(api: Api) -> None:
    sms, mail = _jonas(api)
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "desk 3")

    dismissed = api.post(f"/v1/customers/{sms}/duplicates/{mail}/dismiss", token=agent)
    assert ok(dismissed) == {
        "customer_id": sms,
        "other_customer_id": mail,
        "dismissed": True,
        "changed": True,
    }
    position = api.store_position()
    again = ok(api.post(f"/v1/customers/{mail}/duplicates/{sms}/dismiss", token=agent))
    assert again["changed"] is False
    assert api.store_position() == position
    api.wait_caught_up()
    assert ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"] == []
    assert ok(api.get("/v1/duplicates"))["items"] == []
    events = [e for e in api.all_events() if e["type"] == "customer.duplicate_dismissed.v1"]
    assert {(e["customer_id"], e["data"]["other_customer_id"]) for e in events} == {
        (sms, mail),
        (mail, sms),
    }
    assert {e["data"]["actor"] for e in events} == {"desk 3"}

    restored = ok(api.post(f"/v1/customers/{mail}/duplicates/{sms}/restore", token=agent))
    assert (restored["dismissed"], restored["changed"]) == (False, True)
    position = api.store_position()
    assert ok(api.post(f"/v1/customers/{sms}/duplicates/{mail}/restore"))["changed"] is False
    assert api.store_position() == position
    api.wait_caught_up()
    assert len(ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"]) == 1
    types = [e["type"] for e in api.all_events()]
    assert types.count("customer.duplicate_restored.v1") == 2


def test_decisions_need_the_act_scope_and_refuse_what_cannot_be(api: Api) -> None:
    sms, mail = _jonas(api)
    assert api.runtime is not None
    _, service = api.runtime.tokens.create("service", "crm")
    assert_error(
        api.post(f"/v1/customers/{sms}/duplicates/{mail}/dismiss", token=service), 403, "forbidden"
    )
    assert_error(api.post(f"/v1/customers/{sms}/duplicates/{sms}/dismiss"), 422, "invalid_command")
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(api.post(f"/v1/customers/{sms}/duplicates/{missing}/dismiss"), 404, "not_found")
    assert_error(api.get(f"/v1/customers/{missing}/duplicates"), 404, "not_found")
    assert_error(api.get(f"/v1/customers/{sms}/duplicates/{missing}/preview"), 404, "not_found")
    ok(api.post(f"/v1/customers/{sms}/merge", json={"customer_id": mail}))
    assert_error(api.post(f"/v1/customers/{sms}/duplicates/{mail}/dismiss"), 409, "same_group")


def test_an_erased_customer_has_no_suggestions(api: Api) -> None:
    sms, mail = _jonas(api)
    ok(api.post(f"/v1/customers/{mail}/erase", json={"reason": "data_subject_request"}))
    api.wait_caught_up()
    assert_error(api.get(f"/v1/customers/{mail}/duplicates"), 410, "customer_erased")
    assert ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"] == []
    assert_error(api.get(f"/v1/customers/{sms}/duplicates/{mail}/preview"), 410, "customer_erased")
    assert_error(api.post(f"/v1/customers/{sms}/duplicates/{mail}/dismiss"), 410, "customer_erased")


def test_the_blocklist_is_admins_and_takes_effect_at_once(api: Api) -> None:
    sms, _ = _jonas(api)
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "desk 4")

    start = ok(api.get("/v1/identity-blocklist", token=agent))
    assert start["entries"] == []
    assert "email:info@*" in start["builtin"]
    assert_error(
        api.put("/v1/identity-blocklist", json={"entries": [JONAS_PHONE]}, token=agent),
        403,
        "forbidden",
    )
    put = ok(api.put("/v1/identity-blocklist", json={"entries": ["phone:+370 612 34567"]}))
    assert put["entries"] == [JONAS_PHONE]
    # no event needs projecting: the next read leaves the evidence out
    assert ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"] == []
    assert ok(api.get("/v1/duplicates"))["items"] == []
    position = api.store_position()
    assert ok(api.put("/v1/identity-blocklist", json={"entries": [JONAS_PHONE]}))["entries"]
    assert api.store_position() == position, "the same list again records nothing"

    ok(api.put("/v1/identity-blocklist", json={"entries": []}))
    assert len(ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"]) == 1
    bad = api.put("/v1/identity-blocklist", json={"entries": ["office"]})
    assert_error(bad, 422, "invalid_command")
    assert_error(
        api.put("/v1/identity-blocklist", json={"entries": ["email:*"]}), 422, "invalid_command"
    )
    too_many = {"entries": [f"phone:+3706000{n:04d}" for n in range(1001)]}
    assert_error(api.put("/v1/identity-blocklist", json=too_many), 422, "validation_error")
    assert ok(api.get("/v1/identity-blocklist"))["entries"] == []


def test_the_configured_blocklist_applies_to_reads(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, identity={"blocklist": ["phone:+370 612 34567"]}
    )
    with running_app(settings) as api:
        sms, _ = _jonas(api)
        assert ok(api.get(f"/v1/customers/{sms}/duplicates"))["items"] == []
        blocklist = ok(api.get("/v1/identity-blocklist"))
        assert (blocklist["entries"], blocklist["configured"]) == ([], [JONAS_PHONE])


def test_a_merge_that_would_make_a_group_too_large_is_refused(api: Api) -> None:
    assert api.runtime is not None
    api.runtime.commands.identity.configure(max_group_size=3)
    ids = [
        api.record(address=f"phone:+3706100010{n}", contact_name="Ona")["customer_id"]
        for n in range(5)
    ]
    for other in ids[1:3]:
        ok(api.post(f"/v1/customers/{ids[0]}/merge", json={"customer_id": other}))
    ok(api.post(f"/v1/customers/{ids[3]}/merge", json={"customer_id": ids[4]}))

    position = api.store_position()
    refused = api.post(f"/v1/customers/{ids[0]}/merge", json={"customer_id": ids[3]})
    error = assert_error(refused, 409, "merge_group_too_large")
    assert "5" in error["message"]
    assert "3" in error["message"]
    assert error["details"]["limit"] == 3
    assert error["details"]["size"] == 5
    assert api.store_position() == position, "nothing half-written"
    alone = api.record(address="phone:+37061000199")["customer_id"]
    assert_error(
        api.post(f"/v1/customers/{ids[0]}/merge", json={"customer_id": alone}),
        409,
        "merge_group_too_large",
    )


def test_every_read_of_suggestions_is_access_logged(api: Api) -> None:
    sms, mail = _jonas(api)
    assert api.runtime is not None
    ok(api.get(f"/v1/customers/{sms}/duplicates"))
    ok(api.get("/v1/duplicates"))
    ok(api.get(f"/v1/customers/{sms}/duplicates/{mail}/preview"))
    api.runtime.access_log.flush()
    for customer in (sms, mail):
        entries = ok(api.get(f"/v1/customers/{customer}/access-log"))["items"]
        actions = {e["action"] for e in entries}
        assert {
            "GET /v1/customers/{customer_id}/duplicates",
            "GET /v1/duplicates",
            "GET /v1/customers/{customer_id}/duplicates/{other_id}/preview",
        } <= actions, actions


@given(entries=st.lists(HOSTILE_TEXT, max_size=4))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
def test_any_blocklist_text_is_a_clear_4xx_or_kept_and_readable(
    sqlite_api: Api, entries: list[str]
) -> None:
    response = sqlite_api.put(  # ASCII-escaped JSON: lone surrogates travel as \udXXX
        "/v1/identity-blocklist",
        content=json.dumps({"entries": entries}),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] in ("validation_error", "invalid_command")
        return
    stored = response.json()["entries"]
    assert len(stored) <= len(entries)
    assert ok(sqlite_api.get("/v1/identity-blocklist"))["entries"] == stored


@given(cursor=HOSTILE_TEXT)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
def test_any_cursor_text_is_a_page_or_a_clear_4xx(sqlite_api: Api, cursor: str) -> None:
    response = sqlite_api.get("/v1/duplicates", params={"cursor": as_utf8_wire(cursor)})
    if response.status_code == 200:
        assert response.json()["items"] == []
        return
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("invalid_cursor", "validation_error")
