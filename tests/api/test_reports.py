"""Service reports through the API (``GET /v1/reports/{name}``) on SQLite and PostgreSQL:
conversations with known message times give known medians and 90th percentiles, in
business and wall-clock seconds; grouped by day, week, month, channel, tag and policy, every
period of the range a row; filtered; as CSV with a header and a total row; ranges and zones
that cannot be reported refused; and a changed calendar or target measured again by a
rebuild of the service projection, while a rebuild without changes gives the same bytes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.embedded.follower import LogFollower
from hub.projections import service_reports
from hub.runtime.views import open_views
from tests.support.api import Api, assert_error

MONDAY = datetime(2024, 5, 6, tzinfo=UTC)
RANGE = {"from": "2024-05-06", "to": "2024-05-12", "tz": "UTC"}
OFFICE_HOURS = {
    "time_zone": "UTC",
    "hours": {
        day: [{"start": "09:00", "end": "17:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    },
}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def at(day: int, hh: int, mm: int) -> str:
    return (MONDAY + timedelta(days=day, hours=hh, minutes=mm)).isoformat()


def _seed(api: Api) -> dict[str, dict[str, Any]]:
    """Four conversations (first responses 600, 1800, 3600 and 300 s wall-clock; one next
    response of 1200 s); a VIP on policy ``vip`` (5 min), the others on ``standard``
    (15 min); two of them resolved."""
    ok(api.put("/v1/sla-policies/standard", json={"first_response_minutes": 15}), 201)
    vip = {"first_response_minutes": 5, "tags": ["vip"], "priority": 1}
    ok(api.put("/v1/sla-policies/vip", json=vip), 201)

    def message(address: str, when: str, direction: str = "inbound", **extra: Any) -> Any:
        return api.record(address=address, occurred_at=when, direction=direction, **extra)

    seeded: dict[str, dict[str, Any]] = {}
    seeded["vip"] = message("phone:+15550100011", at(0, 10, 0))  # Monday
    api.wait_caught_up()
    ok(api.put(f"/v1/customers/{seeded['vip']['customer_id']}/tags", json={"tags": ["vip"]}))
    api.wait_caught_up()
    message("phone:+15550100011", at(0, 10, 10), "outbound")
    seeded["whatsapp"] = message("phone:+15550100012", at(0, 16, 50), channel="whatsapp")
    message("phone:+15550100012", at(0, 17, 20), "outbound", channel="whatsapp")
    seeded["saturday"] = message("phone:+15550100013", at(5, 9, 0))
    message("phone:+15550100013", at(5, 10, 0), "outbound")
    seeded["tuesday"] = message("phone:+15550100014", at(1, 8, 55))
    message("phone:+15550100014", at(1, 9, 0), "outbound")
    message("phone:+15550100014", at(1, 9, 30))
    message("phone:+15550100014", at(1, 9, 50), "outbound")
    for name in ("vip", "saturday"):
        url = f"/v1/conversations/{seeded[name]['conversation_id']}/status"
        ok(api.put(url, json={"status": "resolved"}))
    api.wait_caught_up()
    return seeded


def report(api: Api, name: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.get(f"/v1/reports/{name}", params=RANGE | params))
    return body


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["group"]: r for r in body["rows"]}


def test_response_times_per_day_week_and_month(api: Api) -> None:
    _seed(api)
    by_day = report(api, "response-times", group="day")
    assert (by_day["report"], by_day["group"], by_day["time_zone"]) == (
        "response-times",
        "day",
        "UTC",
    )
    assert [r["group"] for r in by_day["rows"]] == [f"2024-05-{d:02d}" for d in range(6, 13)]
    assert by_day["columns"] == ["group", *by_day["total"]]
    monday, tuesday, saturday = (rows(by_day)[f"2024-05-{d}"] for d in ("06", "07", "11"))
    assert (monday["first_responses"], monday["first_response_median"]) == (2, 1200.0)
    assert monday["first_response_p90"] == 1680.0  # 600 + 0.9 * (1800 - 600)
    assert (monday["first_response_median_wall"], monday["first_response_p90_wall"]) == (
        1200.0,
        1680.0,
    )
    assert (tuesday["responses"], tuesday["first_responses"], tuesday["next_responses"]) == (
        2,
        1,
        1,
    )
    assert (tuesday["first_response_median"], tuesday["next_response_median"]) == (300.0, 1200.0)
    assert saturday["first_response_median"] == 3600.0
    quiet = rows(by_day)["2024-05-08"]
    assert (quiet["responses"], quiet["first_response_median"], quiet["breach_rate"]) == (
        0,
        None,
        None,
    )

    total = by_day["total"]
    assert (total["responses"], total["first_responses"], total["next_responses"]) == (5, 4, 1)
    assert total["first_response_median"] == 1200.0  # 300, 600, 1800, 3600
    assert total["first_response_p90"] == 3060.0
    # targets: vip 5 min (600 s: missed), standard 15 min (1800, 3600 missed; 300 kept);
    # no next-response target
    assert (total["with_target"], total["breached"], total["breach_rate"]) == (4, 3, 0.75)

    by_week = report(api, "response-times", group="week")
    assert [r["group"] for r in by_week["rows"]] == ["2024-05-06"]
    assert by_week["rows"][0] | {"group": "total"} == by_week["total"] | {"group": "total"}
    by_month = report(api, "response-times", group="month", to="2024-06-02")
    assert [r["group"] for r in by_month["rows"]] == ["2024-05", "2024-06"]
    assert by_month["rows"][1]["responses"] == 0


@pytest.mark.parametrize("tags_read_whole", [False, True], ids=["tags-by-id", "tags-whole"])
def test_groups_by_channel_tag_and_policy_and_filters(
    api: Api, tags_read_whole: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tags_read_whole:  # as for a report over more customers than the tests record
        monkeypatch.setattr(service_reports, "_WHOLE_TABLES", 0)
    _seed(api)
    by_channel = rows(report(api, "response-times", group="channel"))
    assert list(by_channel) == ["sms", "whatsapp"]
    assert (by_channel["whatsapp"]["first_responses"], by_channel["sms"]["first_responses"]) == (
        1,
        3,
    )
    by_tag = rows(report(api, "response-times", group="tag"))
    assert list(by_tag) == ["vip", "(none)"]
    assert (by_tag["vip"]["responses"], by_tag["(none)"]["responses"]) == (1, 4)
    by_policy = rows(report(api, "response-times", group="policy"))
    assert list(by_policy) == ["standard", "vip"]
    assert by_policy["vip"]["first_response_median"] == 600.0
    assert by_policy["vip"]["breach_rate"] == 1.0

    whatsapp = report(api, "response-times", group="day", channel="whatsapp")
    assert whatsapp["filters"] == {"channel": "whatsapp"}
    assert whatsapp["total"]["first_response_median"] == 1800.0
    assert len(whatsapp["rows"]) == 7
    vip = report(api, "response-times", tag="vip")
    assert (vip["filters"], vip["total"]["responses"]) == ({"tag": "vip"}, 1)
    standard = report(api, "response-times", policy="standard")
    assert standard["total"]["first_responses"] == 3
    assert report(api, "response-times", agent="nobody")["total"]["responses"] == 0

    opened = report(api, "conversations", group="day")
    assert opened["total"] == {
        "opened": 4,
        "resolved": 2,
        "open": 2,
        "answered": 4,
        "reopened": 0,
    }
    assert rows(opened)["2024-05-06"]["opened"] == 2
    today = datetime.now(UTC).date().isoformat()
    resolved = report(api, "resolution", **{"from": today, "to": today})
    assert (resolved["total"]["resolved"], resolved["total"]["replies_per_conversation"]) == (
        2,
        1.0,
    )


def test_csv_has_a_header_every_period_and_a_total(api: Api) -> None:
    _seed(api)
    body = report(api, "response-times", group="day")
    response = api.get(
        "/v1/reports/response-times", params=RANGE | {"group": "day", "format": "csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="response-times.csv"' in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == body["columns"]
    assert [r[0] for r in table[1:]] == [r["group"] for r in body["rows"]] + ["total"]
    header = table[0]
    last = dict(zip(header, table[-1], strict=True))
    assert (last["responses"], last["first_response_median"]) == ("5", "1200.0")
    empty = dict(zip(header, table[3], strict=True))  # Wednesday
    assert (empty["responses"], empty["first_response_median"]) == ("0", "")


def test_what_cannot_be_reported_is_refused(api: Api) -> None:
    url = "/v1/reports/response-times"
    reversed_range = {"from": "2024-05-12", "to": "2024-05-06"}
    assert_error(api.get(url, params=reversed_range), 422, "invalid_report")
    too_long = {"from": "2023-01-01", "to": "2024-02-05"}  # 401 days
    assert_error(api.get(url, params=too_long), 422, "invalid_report")
    ok(api.get(url, params={"from": "2023-01-01", "to": "2024-02-04", "group": "month"}))
    error = assert_error(api.get(url, params=RANGE | {"tz": "Mars/Base"}), 422, "invalid_report")
    assert error["details"]["field"] == "tz"
    assert_error(api.get(url, params=RANGE | {"tz": "../etc"}), 422, "invalid_report")
    assert_error(api.get(url, params=RANGE | {"group": "year"}), 422, "validation_error")
    assert_error(api.get(url, params={"to": "0"}), 422, "validation_error")  # not a date
    no_day = assert_error(api.get(url, params={"to": "2026-02-30"}), 422, "invalid_report")
    assert no_day["details"]["field"] == "to"
    assert_error(api.get("/v1/reports/nosuch", params=RANGE), 422, "validation_error")
    # no range: the last four weeks, by week
    default = ok(api.get(url))
    assert (default["group"], len(default["rows"])) == (
        "week",
        len({r["group"] for r in default["rows"]}),
    )


def test_a_zone_that_is_a_directory_is_refused(sqlite_api: Api) -> None:
    response = sqlite_api.get("/v1/reports/response-times", params=RANGE | {"tz": "America"})
    assert_error(response, 422, "invalid_report")


# -- measured again --------------------------------------------------------------------------


def rebuild_service(api: Api) -> None:
    """What ``hub projections rebuild service`` does: drop the view, replay the store."""
    assert api.runtime is not None
    api.runtime.views.reset("service")
    # As `hub projections rebuild` does: in a process of its own, with views of its own
    # (the server's follower keeps applying meanwhile; each keeps its own rows).
    views = open_views(api.runtime.settings, api.runtime.store)
    LogFollower(api.runtime.store, views, only=["service"]).catch_up()
    api.wait_caught_up()


def _both(api: Api) -> tuple[bytes, bytes]:
    params = RANGE | {"group": "day"}
    as_json = api.get("/v1/reports/response-times", params=params)
    as_csv = api.get("/v1/reports/response-times", params=params | {"format": "csv"})
    assert as_json.status_code == as_csv.status_code == 200
    return as_json.content, as_csv.content


def test_a_rebuild_measures_again_with_the_current_definitions(api: Api) -> None:
    _seed(api)
    before = _both(api)
    rebuild_service(api)
    assert _both(api) == before  # nothing changed: the same bytes

    # Office hours for conversations whose policy names no calendar, and a longer target.
    ok(api.put("/v1/calendars/default", json=OFFICE_HOURS), 201)
    ok(api.put("/v1/sla-policies/standard", json={"first_response_minutes": 60}))
    assert _both(api) == before  # the past stays as measured until a rebuild
    rebuild_service(api)

    body = report(api, "response-times", group="day")
    total = body["total"]
    # business: 600 (10:00-10:10), 600 (16:50-17:00), 0 (Saturday), 0 (08:55-09:00)
    assert (total["first_response_median"], total["first_response_p90"]) == (300.0, 600.0)
    assert (total["first_response_median_wall"], total["first_response_p90_wall"]) == (
        1200.0,
        3060.0,
    )
    assert rows(body)["2024-05-11"]["first_response_median"] == 0.0
    # vip (5 business min) still missed; standard's 60 business min kept by all three
    assert (total["with_target"], total["breached"]) == (4, 1)
    after = _both(api)
    assert after != before
    rebuild_service(api)
    assert _both(api) == after
