"""GET /v1/customers/{id}/timeline?as_of=: the timeline as the hub knew it at a moment, rebuilt
from the log: what was recorded by then (recorded_at decides, not occurred_at), the delivery
states, conversation states and merges of then; paged like today's; 410 for an erased
customer, 404 before it appeared, 4xx for any as_of that is not a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, ago, assert_error

TIMELINE = "GET /v1/customers/{customer_id}/timeline"


def moment(api: Api) -> str:
    """Now, once everything recorded so far is in the views (what comes next is later)."""
    api.wait_caught_up()
    return datetime.now(UTC).isoformat()


def as_of(api: Api, customer_id: str, at: str, **params: Any) -> dict[str, Any]:
    api.wait_caught_up()
    response = api.get(
        f"/v1/customers/{customer_id}/timeline", params={"as_of": at, "limit": 200, **params}
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def texts(page: dict[str, Any]) -> list[str | None]:
    return [i["text"] for i in page["items"] if i["kind"] == "message"]


def test_a_delivered_message_shows_sent_as_of_before_its_delivery_report(api: Api) -> None:
    sent = api.record(direction="outbound", address="phone:+15550160001", text="on its way")
    before_report = moment(api)
    assert api.post(
        f"/v1/messages/{sent['message_id']}/delivery", json={"status": "delivered"}
    ).is_success
    after_report = moment(api)

    def status(at: str) -> str:
        page = as_of(api, sent["customer_id"], at)
        (item,) = [i for i in page["items"] if i["item_id"] == sent["message_id"]]
        return str(item["delivery_status"])

    assert status(before_report) == "sent"
    assert status(after_report) == "delivered"
    assert api.messages(sent["customer_id"])[0]["delivery_status"] == "delivered"


def test_a_conversation_resolved_later_shows_open_as_of_before(api: Api) -> None:
    first = api.record(address="phone:+15550160002", text="where is my parcel")
    while_open = moment(api)
    resolved = api.put(
        f"/v1/conversations/{first['conversation_id']}/status", json={"status": "resolved"}
    )
    assert resolved.status_code == 200, resolved.text
    after = moment(api)

    then = as_of(api, first["customer_id"], while_open)
    assert [
        (c["conversation_id"], c["status"], c["message_count"]) for c in then["conversations"]
    ] == [(first["conversation_id"], "open", 1)]
    assert not [i for i in then["items"] if i["kind"] == "status_changed"]
    now = as_of(api, first["customer_id"], after)
    assert [c["status"] for c in now["conversations"]] == ["resolved"]
    (change,) = [i for i in now["items"] if i["kind"] == "status_changed"]
    assert change["data"]["status"] == "resolved"


def test_a_customer_merged_later_shows_alone_before_and_with_its_group_after(api: Api) -> None:
    phone = api.record(address="phone:+15550160003", text="by sms")
    email = api.record(channel="email", address="email:ona@example.org", text="by email")
    survivor, duplicate = phone["customer_id"], email["customer_id"]
    apart = moment(api)
    merged = api.post(f"/v1/customers/{survivor}/merge", json={"customer_id": duplicate})
    assert merged.status_code == 200, merged.text
    together = moment(api)

    before = as_of(api, survivor, apart)
    assert before["customer_id"] == survivor
    assert texts(before) == ["by sms"]
    assert {i["customer_id"] for i in before["items"]} == {survivor}
    alone = as_of(api, duplicate, apart)
    assert alone["customer_id"] == duplicate
    assert texts(alone) == ["by email"]

    for asked in (survivor, duplicate):
        after = as_of(api, asked, together)
        assert after["customer_id"] == survivor
        assert texts(after) == ["by email", "by sms"]
        assert "merged" in [i["kind"] for i in after["items"]]
        assert {c["channel"] for c in after["conversations"]} == {"sms", "email"}


def test_an_unmerged_customer_shows_its_group_as_of_while_merged(api: Api) -> None:
    phone = api.record(address="phone:+15550160004", text="by sms")
    email = api.record(channel="email", address="email:rasa@example.org", text="by email")
    survivor, duplicate = phone["customer_id"], email["customer_id"]
    assert api.post(f"/v1/customers/{survivor}/merge", json={"customer_id": duplicate}).is_success
    api.record(channel="email", address="email:rasa@example.org", text="while merged")
    while_merged = moment(api)
    assert api.post(f"/v1/customers/{duplicate}/unmerge", json={"reason": "two people"}).is_success
    after = moment(api)

    then = as_of(api, duplicate, while_merged)
    assert then["customer_id"] == survivor
    assert texts(then) == ["while merged", "by email", "by sms"]
    assert "unmerged" not in [i["kind"] for i in then["items"]]
    assert texts(as_of(api, survivor, after)) == ["by sms"]
    assert texts(as_of(api, duplicate, after)) == ["while merged", "by email"]
    assert as_of(api, duplicate, after)["customer_id"] == duplicate


def test_a_message_recorded_later_is_absent_even_when_it_happened_earlier(api: Api) -> None:
    first = api.record(address="phone:+15550160005", text="today", occurred_at=ago(1))
    then = moment(api)
    api.record(address="phone:+15550160005", text="last week, imported", occurred_at=ago(10_080))

    assert texts(as_of(api, first["customer_id"], then)) == ["today"]
    now = as_of(api, first["customer_id"], moment(api))
    assert texts(now) == ["today", "last week, imported"]
    assert now["position"] > as_of(api, first["customer_id"], then)["position"]


def test_pages_of_a_moment_are_the_timeline_of_that_moment(api: Api) -> None:
    customer = ""
    for n in range(5):
        customer = api.record(address="phone:+15550160006", text=f"m{n}", occurred_at=ago(50 - n))[
            "customer_id"
        ]
    live_then = api.timeline(customer)
    then = moment(api)
    for n in range(3):
        api.record(address="phone:+15550160006", text=f"later {n}", occurred_at=ago(60 + n))

    paged: list[dict[str, Any]] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"before": before} if before else {})
        page = as_of(api, customer, then, **params)
        assert len(page["items"]) <= 2
        paged += page["items"]
        before = page["next_cursor"]
        if before is None:
            break
    assert paged == live_then
    assert len(paged) == 6  # five messages and the first contact
    assert len(api.timeline(customer)) == 9


def test_every_read_as_of_is_in_the_access_log(api: Api) -> None:
    first = api.record(address="phone:+15550160007")
    as_of(api, first["customer_id"], moment(api))
    entries = api.get(f"/v1/customers/{first['customer_id']}/access-log").json()["items"]
    assert [(e["action"], e["items"]) for e in entries] == [(TIMELINE, 2)]


def test_an_erased_customer_is_410_as_of_any_moment(api: Api) -> None:
    first = api.record(address="phone:+15550160008", text="forget me")
    then = moment(api)
    erased = api.post(
        f"/v1/customers/{first['customer_id']}/erase", json={"reason": "data_subject_request"}
    )
    assert erased.status_code == 200, erased.text
    url = f"/v1/customers/{first['customer_id']}/timeline"
    assert_error(api.get(url, params={"as_of": then}), 410, "customer_erased")
    assert_error(api.get(url, params={"as_of": moment(api)}), 410, "customer_erased")


def test_before_the_customer_appeared_or_never_is_404(sqlite_api: Api) -> None:
    api = sqlite_api
    too_early = moment(api)
    first = api.record(address="phone:+15550160009")
    url = f"/v1/customers/{first['customer_id']}/timeline"
    api.wait_caught_up()
    assert_error(api.get(url, params={"as_of": too_early}), 404, "not_found")
    assert_error(
        api.get(f"/v1/customers/{uuid4()}/timeline", params={"as_of": moment(api)}),
        404,
        "not_found",
    )


def test_a_moment_to_come_answers_what_is_recorded_so_far(sqlite_api: Api) -> None:
    first = sqlite_api.record(address="phone:+15550160010", text="so far")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    page = as_of(sqlite_api, first["customer_id"], tomorrow)
    assert texts(page) == ["so far"]
    assert page["as_of"] == tomorrow.replace("+00:00", "Z")


def test_a_cursor_the_api_did_not_give_is_400(sqlite_api: Api) -> None:
    first = sqlite_api.record(address="phone:+15550160011")
    response = sqlite_api.get(
        f"/v1/customers/{first['customer_id']}/timeline",
        params={"as_of": moment(sqlite_api), "before": "bm9wZQ=="},
    )
    assert_error(response, 400, "invalid_cursor")


def test_what_is_not_a_time_with_an_offset_is_422(sqlite_api: Api) -> None:
    first = sqlite_api.record(address="phone:+15550160012")
    url = f"/v1/customers/{first['customer_id']}/timeline"
    for value in ("yesterday", "2026-11-20T10:00:00", "1700000000", "2026-13-01T00:00:00Z", ""):
        assert_error(sqlite_api.get(url, params={"as_of": value}), 422, "validation_error")
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        assert_error(sqlite_api.get(url, params={"as_of": value}), 422, "invalid_as_of")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(max_size=40) | st.datetimes(timezones=st.timezones()).map(str))
@example(value="0001-01-01T00:00:00+00:00")
@example(value="9999-12-31T23:59:59.999999+00:00")
def test_any_as_of_text_is_a_page_or_a_4xx(sqlite_api: Api, value: str) -> None:
    customer = _customer(sqlite_api)
    response = sqlite_api.get(f"/v1/customers/{customer}/timeline", params={"as_of": value})
    if response.status_code == 200:
        assert set(response.json()) >= {"items", "as_of", "position", "conversations"}
    else:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] in (
            "validation_error",
            "invalid_as_of",
            "not_found",
        )


def _customer(api: Api) -> str:
    """One customer per app (the property test's examples share it)."""
    found = getattr(api, "_history_customer", None)
    if found is None:
        found = api.record(address="phone:+15550160013")["customer_id"]
        api.wait_caught_up()
        api._history_customer = found  # type: ignore[attr-defined]
    return str(found)
