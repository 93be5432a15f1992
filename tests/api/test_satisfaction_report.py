"""The satisfaction report through the API (``GET /v1/reports/satisfaction``) on SQLite and
PostgreSQL: CSAT (share of 4-5, average), NPS (promoters minus detractors) and response rates
per agent, per acquisition source and per week, as JSON and CSV, over surveys whose figures
are counted by hand below; a rebuild gives the same bytes; groups it cannot take are 422."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from hub.embedded.follower import LogFollower
from hub.runtime.views import open_views
from tests.support.api import Api, assert_error
from tests.support.surveys import survey_answered

RANGE = {"from": "2024-03-01", "to": "2024-03-31", "tz": "UTC"}
GOOGLE = {"source": "google", "medium": "cpc", "campaign": "winter-sale"}
NEWSLETTER = {"source": "newsletter", "medium": "email"}
A, B, C = "phone:+37060000001", "phone:+37060000002", "phone:+37060000003"


def _seed(api: Api) -> None:
    """A (google) rates ona 5; B (newsletter) rates ben 3, then is a promoter (NPS 9); C
    (google) does not answer ona's CSAT ("hello" is no score) and is a detractor (NPS 4)."""
    assert api.runtime is not None
    store = api.runtime.store
    for address, source in ((A, GOOGLE), (B, NEWSLETTER), (C, GOOGLE)):
        api.record(address=address, occurred_at="2024-03-01T09:00:00+00:00", source=source)
    monday = datetime(2024, 3, 4, 10, tzinfo=UTC)
    survey_answered(store, "5", "A1", address=A, agent="ona", asked=monday)
    survey_answered(store, "3", "B1", address=B, agent="ben", asked=monday.replace(day=5))
    survey_answered(store, "hello", "C1", address=C, agent="ona", asked=monday.replace(day=6))
    survey_answered(
        store, "9", "B2", address=B, asked=monday.replace(day=12), kind="nps", agent=None
    )
    survey_answered(
        store, "keturi", "C2", address=C, asked=monday.replace(day=13), kind="nps", agent=None
    )
    api.wait_caught_up()


def _report(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/reports/satisfaction", params=RANGE | params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["group"]: r for r in body["rows"]}


def test_scores_per_agent_source_and_week(api: Api) -> None:
    _seed(api)

    by_agent = _rows(_report(api, group="agent"))
    ona, ben = by_agent["ona"], by_agent["ben"]
    assert (ona["csat_sent"], ona["csat_answered"], ona["csat_response_rate"]) == (2, 1, 0.5)
    assert (ona["csat"], ona["csat_average"]) == (1.0, 5.0)
    assert (ben["csat_sent"], ben["csat_answered"], ben["csat"], ben["csat_average"]) == (
        1,
        1,
        0.0,
        3.0,
    )
    assert by_agent["(none)"]["nps_sent"] == 2  # NPS is nobody's conversation

    total = _report(api, group="week")["total"]
    assert (total["csat_sent"], total["csat_answered"], total["csat"]) == (3, 2, 0.5)
    assert total["csat_average"] == 4.0
    assert (total["nps_sent"], total["nps_answered"], total["nps_response_rate"]) == (2, 2, 1.0)
    assert (total["promoters"], total["passives"], total["detractors"]) == (1, 0, 1)
    assert total["nps"] == 0.0

    weeks = _rows(_report(api, group="week"))
    assert list(weeks)[:3] == ["2024-02-26", "2024-03-04", "2024-03-11"]
    assert (weeks["2024-03-04"]["csat_sent"], weeks["2024-03-11"]["nps_sent"]) == (3, 2)

    by_source = _rows(_report(api, group="source"))
    assert list(by_source) == ["google", "newsletter"]
    google = by_source["google"]
    assert (google["csat_sent"], google["csat"], google["nps"]) == (2, 1.0, -100.0)
    assert by_source["newsletter"]["nps"] == 100.0
    assert list(_rows(_report(api, group="campaign"))) == ["winter-sale", "(none)"]

    table = _report(api, group="channel", channel="sms")
    assert list(_rows(table)) == ["sms"]
    assert_error(
        api.get("/v1/reports/satisfaction", params=RANGE | {"group": "policy"}),
        422,
        "invalid_report",
    )


def _bytes(api: Api) -> list[bytes]:
    found = []
    for group in ("week", "agent", "source"):
        for format in ("json", "csv"):
            params = RANGE | {"group": group, "format": format}
            response = api.get("/v1/reports/satisfaction", params=params)
            assert response.status_code == 200, response.text
            found.append(response.content)
    return found


def test_a_rebuild_gives_the_same_bytes_and_the_csv_has_the_columns(api: Api) -> None:
    _seed(api)
    before = _bytes(api)
    assert api.runtime is not None
    api.runtime.views.reset("surveys")
    # As `hub projections rebuild` does: in a process of its own, with views of its own
    # (the server's follower keeps applying meanwhile; each keeps its own rows).
    views = open_views(api.runtime.settings, api.runtime.store)
    LogFollower(api.runtime.store, views, only=["surveys"]).catch_up()
    api.wait_caught_up()
    assert _bytes(api) == before

    text = api.get("/v1/reports/satisfaction", params=RANGE | {"format": "csv"}).text
    header, *rest = list(csv.reader(io.StringIO(text)))
    assert header[:4] == ["group", "csat_sent", "csat_answered", "csat_response_rate"]
    assert "nps" in header
    assert rest[-1][0] == "total"
