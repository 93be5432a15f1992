"""GET /v1/customers/{id}/timeline: visibility, order, channels interleaved, pagination."""

from __future__ import annotations

from uuid import uuid4

from tests.support.api import Api, ago, assert_error, interaction

PHONE = "phone:+15550111000"


def _record_mixed(api: Api) -> tuple[str, list[str]]:
    """Six messages of one phone number on three channels, posted out of time order;
    returns the customer id and the provider ids newest first."""
    plan = [  # (minutes ago, channel, direction, provider id)
        (30, "sms", "inbound", "t-sms-30"),
        (5, "whatsapp", "inbound", "t-wa-5"),
        (25, "whatsapp", "outbound", "t-wa-25"),
        (15, "api", "inbound", "t-api-15"),
        (20, "sms", "outbound", "t-sms-20"),
        (10, "sms", "inbound", "t-sms-10"),
    ]
    customers = set()
    for minutes, channel, direction, provider_id in plan:
        body = api.record(
            address=PHONE,
            channel=channel,
            direction=direction,
            provider_message_id=provider_id,
            occurred_at=ago(minutes),
            text=f"{channel} {minutes}",
        )
        customers.add(body["customer_id"])
    assert len(customers) == 1
    newest_first = [p for _, _, _, p in sorted(plan)]
    return customers.pop(), newest_first


def test_recorded_interactions_become_visible_newest_first(api: Api) -> None:
    customer_id, newest_first = _record_mixed(api)

    items = api.timeline(customer_id)  # polls /readyz until the projections caught up

    messages = [i for i in items if i["kind"] == "message"]
    assert [m["provider_message_id"] for m in messages] == newest_first
    assert [m["channel"] for m in messages] == ["whatsapp", "sms", "api", "sms", "whatsapp", "sms"]
    assert [m["direction"] for m in messages] == [
        "inbound",
        "inbound",
        "inbound",
        "outbound",
        "outbound",
        "inbound",
    ]
    assert messages[0]["text"] == "whatsapp 5"
    assert messages[0]["data"]["address"] == PHONE
    assert messages[-1]["delivery_status"] == "received"
    assert messages[-2]["delivery_status"] == "sent"
    times = [i["occurred_at"] for i in items]
    assert times == sorted(times, reverse=True)
    # The customer's first contact is on the timeline too, at the time of the first message.
    (linked,) = [i for i in items if i["kind"] == "identity_linked"]
    assert linked["data"] == {"address": PHONE, "first": True}
    assert linked["occurred_at"] == messages[-1]["occurred_at"]
    assert len(items) == 7


def test_pages_with_before_cursor_cover_the_timeline_once(api: Api) -> None:
    customer_id, _ = _record_mixed(api)
    everything = api.timeline(customer_id)

    paged: list[dict[str, object]] = []
    before = None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        response = api.get(f"/v1/customers/{customer_id}/timeline", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["customer_id"] == customer_id
        assert len(page["items"]) <= 2
        paged += page["items"]
        before = page["next_cursor"]
        if before is None:
            break
    assert paged == everything
    assert len({i["item_id"] for i in paged}) == 7


def test_invalid_cursor_is_400(sqlite_api: Api) -> None:
    customer = sqlite_api.record()["customer_id"]
    for cursor in ("not-a-cursor", "bm9wZQ==", "%%%"):
        assert_error(
            sqlite_api.get(f"/v1/customers/{customer}/timeline", params={"before": cursor}),
            400,
            "invalid_cursor",
        )


def test_unknown_customer_timeline_is_404(sqlite_api: Api) -> None:
    assert_error(sqlite_api.get(f"/v1/customers/{uuid4()}/timeline"), 404, "not_found")


def test_timelines_of_customers_stay_apart(sqlite_api: Api) -> None:
    a = sqlite_api.record(address="phone:+15550111001", provider_message_id="apart-a")
    b = sqlite_api.post(
        "/v1/interactions",
        json=interaction(channel="email", address="email:b@example.com", provider_message_id="b"),
    ).json()
    assert [m["provider_message_id"] for m in sqlite_api.messages(a["customer_id"])] == ["apart-a"]
    assert [m["provider_message_id"] for m in sqlite_api.messages(b["customer_id"])] == ["b"]


def test_times_with_offsets_are_ordered_by_instant(api: Api) -> None:
    plan = [  # provider id, occurred_at in different offsets
        ("tz-a", "2026-01-10T10:00:00+02:00"),  # 08:00Z
        ("tz-b", "2026-01-10T09:00:00+00:00"),  # 09:00Z
        ("tz-c", "2026-01-10T03:30:00-05:00"),  # 08:30Z
    ]
    customer = None
    for provider_id, at in plan:
        customer = api.record(
            address="phone:+15550111500", provider_message_id=provider_id, occurred_at=at
        )["customer_id"]
    assert customer is not None

    messages = api.messages(customer)

    assert [(m["provider_message_id"], m["occurred_at"]) for m in messages] == [
        ("tz-b", "2026-01-10T09:00:00Z"),
        ("tz-c", "2026-01-10T08:30:00Z"),
        ("tz-a", "2026-01-10T08:00:00Z"),
    ]
    first = api.get(f"/v1/customers/{customer}/timeline", params={"limit": 1}).json()
    second = api.get(
        f"/v1/customers/{customer}/timeline", params={"limit": 1, "before": first["next_cursor"]}
    ).json()
    assert [
        first["items"][0]["provider_message_id"],
        second["items"][0]["provider_message_id"],
    ] == [
        "tz-b",
        "tz-c",
    ]
