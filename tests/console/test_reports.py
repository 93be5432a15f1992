"""The console's Reports page (``/reports``): the dashboard for a signed-in agent, nobody else;
its figures once conversations were answered and resolved; each report as CSV; a range that
cannot be reported answered 422 on the page; what is typed into the filters shown escaped."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from hub.console.charts import NO_DATA
from hub.console.reports import duration
from tests.support.api import ADMIN_TOKEN, Api, running_app, wait_for
from tests.support.console import sign_in
from tests.support.store import SettingsFactory
from tests.support.surveys import survey_answered


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        yield api


def _agent(app: Api) -> None:
    """Sign the console client in as an agent (not an admin)."""
    assert app.runtime is not None
    token = app.runtime.tokens.create("agent", f"agent-{uuid4().hex[:6]}")[1]
    assert sign_in(app.client, token).status_code == 303


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def _at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def seed(app: Api) -> None:
    """An SLA policy (first response within 5 minutes, resolution within a day), and two SMS
    conversations from three hours ago: one answered in 2 minutes, one in 10 (late), both
    resolved now; and an email still open."""
    policy = {"first_response_minutes": 5, "resolution_minutes": 24 * 60}
    assert app.put("/v1/sla-policies/standard", json=policy).status_code in (200, 201)
    for n, answer_after in enumerate((2, 10)):
        address = f"phone:+1415555019{n}"
        inbound = app.record(address=address, occurred_at=_at(180), text="Where is my order?")
        app.record(
            address=address,
            direction="outbound",
            occurred_at=_at(180 - answer_after),
            text="Looking into it",
        )
        app.wait_caught_up()
        status = app.put(
            f"/v1/conversations/{inbound['conversation_id']}/status",
            json={"status": "resolved"},
        )
        assert status.status_code == 200, status.text
    app.record(channel="email", address="email:ann@example.org", occurred_at=_at(60))

    def figures() -> dict[str, Any] | None:
        app.wait_caught_up()
        total: dict[str, Any] = app.get("/v1/reports/resolution").json()["total"]
        return total if total["resolved"] == 2 else None

    wait_for(figures)


def test_an_agent_sees_the_dashboard_and_nobody_else_does(app: Api) -> None:
    anonymous = app.client.get("/reports", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/reports"
    assert app.client.get("/reports/conversations.csv", follow_redirects=False).status_code == 303
    _agent(app)
    page = app.client.get("/reports")
    assert page.status_code == 200
    assert 'href="/reports" aria-current="page"' in page.text  # the navigation
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "No SLA policy yet" in page.text
    assert page.text.count('role="img"') == 10  # every chart
    assert page.text.count('class="chart-table"') == 10  # and its numbers
    assert page.text.count('class="chart-empty"') == 10  # nothing happened yet
    assert NO_DATA in page.text
    assert "style=" not in page.text  # the CSP refuses inline styles
    assert "<script>" not in page.text
    assert "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    office = {
        "time_zone": "Europe/Vilnius",
        "hours": {
            "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
        },
        "holidays": {"country": "LT"},
        "closed_dates": ["2026-12-24", "2026-12-31"],
    }
    assert app.put("/v1/calendars/office", json=office).status_code == 201
    text = _text(app.client.get("/reports").text)
    assert (
        "office : Europe/Vilnius, mon 09:00\u201312:00, 13:00\u201317:00; public holidays of LT; "
        "closed 2 more days"
    ) in text


def test_the_figures_of_answered_and_resolved_conversations(api: Api) -> None:
    app = api  # on each backend
    seed(app)
    _agent(app)
    page = app.client.get("/reports", params={"period": "day"})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    service = text.split("Customer satisfaction (CSAT)", 1)[0]  # the survey panels come after
    assert service.count(NO_DATA) == 0, service
    # first responses after 2 and 10 minutes: the median 6, the p90 9.2
    assert "6 min" in text
    assert "9.2 min" in text
    assert "50% (1 of 2)" in text  # one of two first responses was late
    assert "0% (0 of 2)" in text  # both resolved within the day
    assert "3 h" in text  # resolved about three hours after the customer wrote
    channels = re.search(r"<caption>Conversations per channel</caption>.*?</table>", page.text)
    assert channels
    assert '<th scope="row">SMS</th><td>2</td><td>2</td><td>0</td>' in channels.group(0)
    assert '<th scope="row">Email</th><td>1</td><td>0</td><td>1</td>' in channels.group(0)
    # what they were measured against
    assert "Measured against" in text
    assert "standard any channel 5 min \u2013 1440 min default" in text
    assert "No business calendar" in text
    # only SMS
    sms = _text(app.client.get("/reports", params={"channel": "sms"}).text)
    assert "Email" not in sms.split("Conversations per channel", 1)[1].split("Download")[0]


def test_each_report_downloads_as_csv_with_the_filters(api: Api) -> None:
    app = api  # on each backend
    seed(app)
    _agent(app)
    page = app.client.get("/reports", params={"period": "day", "channel": "sms"}).text
    every = sorted(set(html.unescape(x) for x in re.findall(r'href="(/reports/[^"]+)"', page)))
    business = [
        x
        for x in every
        if x.startswith(("/reports/retention", "/reports/sources", "/reports/value"))
    ]
    links = [x for x in every if x not in business]
    # response times, resolution, conversations per day and channel; satisfaction per day,
    # agent and source
    assert len(links) == 7, links
    for link in links:
        assert "channel=sms" in link
    # retention by month, sources by source, value by source and by month: customers, so
    # no channel
    assert len(business) == 4, business
    assert not any("channel" in link for link in business)
    conversations = next(x for x in links if "conversations.csv" in x and "group=channel" in x)
    answer = app.client.get(conversations)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["group"], r["opened"]) for r in rows] == [("sms", "2"), ("total", "2")]
    times = app.client.get(next(x for x in links if "response-times.csv" in x))
    by_day = list(csv.DictReader(io.StringIO(times.text)))
    assert by_day[-1]["group"] == "total"
    assert by_day[-1]["first_responses"] == "2"
    assert by_day[-1]["breach_rate"] == "0.5"
    assert len(by_day) >= 29  # every day of the four weeks, and the total
    refused = app.client.get(
        "/reports/resolution.csv", params={"from": "2026-02-01", "to": "2026-01-01"}
    )
    assert refused.status_code == 422
    assert app.client.get("/reports/nothing.csv").status_code == 422


def test_a_range_that_ends_before_it_starts_is_answered_422_on_the_page(app: Api) -> None:
    _agent(app)
    page = app.client.get("/reports", params={"from": "2026-03-01", "to": "2026-02-01"})
    assert page.status_code == 422
    assert "the range ends before it starts" in _text(page.text)
    assert 'role="alert"' in page.text
    assert 'value="2026-03-01"' in page.text  # the form as typed, to correct it
    assert 'role="img"' not in page.text
    for params in (
        {"from": "yesterday"},
        {"period": "year"},
        {"channel": "pigeon"},
        {"from": "2024-01-01", "to": "2026-01-01"},  # more than 400 days
    ):
        refused = app.client.get("/reports", params=params)
        assert refused.status_code == 422, params
        assert 'class="error" role="alert"' in refused.text


@pytest.mark.parametrize("field", ["from", "to", "period", "channel"])
def test_what_is_typed_into_the_filters_is_shown_escaped(app: Api, field: str) -> None:
    _agent(app)
    hostile = '"><script>alert(1)</script>'
    page = app.client.get("/reports", params={field: hostile})
    assert page.status_code == 422
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)" in page.text or "&#34;&gt;&lt;script" in page.text
    long = app.client.get("/reports", params={field: "x" * 5000})
    assert long.status_code == 422
    assert "x" * 41 not in long.text  # refused, not echoed at length


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "\u2013"),
        (0, "0 s"),
        (42.4, "42 s"),
        (90, "1.5 min"),
        (7200, "2 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_durations_as_tables_show_them(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


DASH = "\u2013"  # no figure


def _wrote(app: Api, address: str, day: str, **extra: Any) -> None:
    app.record(address=address, occurred_at=f"{day}T10:00:00+00:00", **extra)


def test_retention_cohorts_and_sources_with_their_numbers(api: Api) -> None:
    """Two google customers in January (one writes again in February), a newsletter one in
    February who orders 80 EUR and writes again in March."""
    app = api  # on each backend
    google = {"source": "google", "medium": "cpc"}
    _wrote(app, "phone:+14155550301", "2025-01-10", source=google)
    _wrote(app, "phone:+14155550302", "2025-01-20", source=google)
    _wrote(app, "phone:+14155550303", "2025-02-05", source={"source": "newsletter"})
    _wrote(app, "phone:+14155550301", "2025-02-12")
    _wrote(app, "phone:+14155550303", "2025-03-03")
    order = {
        "type": "order.placed",
        "source": "shop",
        "source_id": "order-80",
        "occurred_at": "2025-02-06T12:00:00+00:00",
        "address": "phone:+14155550303",
        "amount": "80.00",
        "currency": "EUR",
    }
    assert app.post("/v1/activities", json=order).status_code == 201
    app.wait_caught_up()
    _agent(app)
    page = app.client.get("/reports", params={"from": "2025-01-01", "to": "2025-03-31"})
    assert page.status_code == 200, page.text
    retention = re.search(r'id="report-retention".*?</section>', page.text, re.S)
    assert retention
    panel = retention.group(0)
    # a cell per share known: January's after 1 and 2 months, February's after 1
    assert panel.count('class="chart-cell"') == 3
    table = _text(panel.split('class="chart-table"', 1)[1])
    # six months back from March: October's cohorts are empty; January's two: one wrote
    # in February (50%), nobody in March; February's one wrote in March
    assert f"Jan 2025 2 50% 0% {DASH}" in table
    assert f"Feb 2025 1 100% {DASH}" in table
    assert "All cohorts 3 67% 0%" in table
    sources = _text(re.search(r'id="report-sources".*?</section>', page.text, re.S).group(0))
    assert f"google 2 3 0 50% {DASH}" in sources  # the first wrote twice, weeks apart
    assert f"newsletter 1 2 1 100% {DASH}" in sources
    value = _text(re.search(r'id="report-value".*?</section>', page.text, re.S).group(0))
    assert "newsletter 80 EUR 80 EUR 1 0" in value
    assert "Total 80 EUR 26.67 EUR 1 0" in value
    link = re.search(r'href="(/reports/retention.csv[^"]*)"', panel)
    assert link
    answer = app.client.get(html.unescape(link.group(1)))
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["group"], r["customers"], r["month_1"]) for r in rows][3:] == [
        ("2025-01", "2", "0.5"),
        ("2025-02", "1", "1.0"),
        ("2025-03", "0", ""),
        ("total", "3", "0.6667"),
    ]


def test_csat_and_nps_with_their_numbers(app: Api) -> None:
    assert app.runtime is not None
    store = app.runtime.store
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    for n, reply in enumerate(("5", "4", "2")):
        survey_answered(store, reply, f"C{n}", address=f"phone:+3706000010{n}", asked=today)
    for n, reply in enumerate(("10", "9", "3")):
        address = f"phone:+3706000020{n}"
        survey_answered(store, reply, f"N{n}", address=address, asked=today, kind="nps", agent=None)
    app.wait_caught_up()
    _agent(app)
    text = _text(app.client.get("/reports", params={"period": "day"}).text)
    csat = text.split("CSAT per period", 1)[1].split("Total", 1)[1]
    assert csat.startswith(" 67% 3.67 3 / 3 ")  # two of three were 4 or 5
    nps = text.split("NPS per period", 1)[1].split("Total", 1)[1]
    assert nps.startswith(" 33.3 2 0 1 3 / 3 ")  # 67% promoters - 33% detractors
    link = "/reports/satisfaction.csv?group=agent"
    assert f'href="{link}"' in app.client.get("/reports", params={"period": "day"}).text
    rows = list(csv.reader(io.StringIO(app.client.get(link).text)))
    assert rows[0][:3] == ["group", "csat_sent", "csat_answered"]
    assert [r[0] for r in rows[1:]] == ["ona", "(none)", "total"]
