"""Business reports through the API (``GET /v1/reports/retention|value|sources``) on SQLite
and PostgreSQL, over one worked example whose figures are computed by hand below (and in
docs/analytics.md): monthly cohorts and the share of them active later, lifetime value in
EUR with a USD rate and a CZK order left unconverted, per source; a merged customer counts
once; an erased one keeps counting under "(erased)", with no id left in the view; and a
rebuild gives the same bytes, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import Settings
from hub.embedded.follower import LogFollower
from hub.projections.business import business_customers, business_orders
from hub.runtime.views import open_views
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, unique

RANGE = {"from": "2024-01-01", "to": "2024-04-30", "tz": "UTC"}


@pytest.fixture
def api(backend: str, make_settings: Callable[..., Settings]) -> Iterator[Api]:
    settings = make_settings(
        backend,
        admin_token=ADMIN_TOKEN,
        reports={"currency": "EUR", "rates": {"USD": "0.90"}},
    )
    with running_app(settings) as client:
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def report(api: Api, name: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.get(f"/v1/reports/{name}", params=RANGE | params))
    return body


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["group"]: r for r in body["rows"]}


def _wrote(api: Api, address: str, day: str, **extra: Any) -> dict[str, Any]:
    return api.record(address=address, occurred_at=f"{day}T10:00:00+00:00", **extra)


def _order(api: Api, address: str, day: str, amount: str, currency: str, **extra: Any) -> None:
    body = {
        "type": "order.placed",
        "source": "shop",
        "source_id": unique("order"),
        "occurred_at": f"{day}T12:00:00+00:00",
        "address": address,
        "amount": amount,
        "currency": currency,
    }
    ok(api.post("/v1/activities", json=body | extra), 201)


GOOGLE = {"source": "google", "medium": "cpc", "campaign": "winter-sale"}
A, B, C = "phone:+15550110001", "phone:+15550110002", "phone:+15550110003"
D, D2, E, F = (
    "phone:+15550110004",
    "email:d.two@example.org",
    "phone:+15550110005",
    "phone:+15550110006",
)


def _seed(api: Api) -> dict[str, str]:
    """The worked example (docs/analytics.md):

    - A (google/cpc/winter-sale): first contact Jan 10, writes Feb 5 and Apr 2; orders
      100.00 EUR (Jan 12) and 50.00 USD (Feb 6).
    - B (newsletter/email): first contact Jan 20, writes Mar 15; orders 20.00 CZK (no rate).
    - C (google): first contact Feb 3, writes Mar 1; orders 40.00 EUR (Feb 4), cancels
      10.00 EUR of it (Feb 5).
    - D (no source): first contact Feb 10; D2 (facebook) first writes Apr 8 and is merged
      into D: one customer, first contacted in February, active in April.
    - E: first contact in December 2023, active in January: before the range, not counted.
    - F (google): first contact Mar 10, orders 30.00 EUR (Mar 11), writes Apr 5.
    """
    ids: dict[str, str] = {}
    ids["A"] = _wrote(api, A, "2024-01-10", source=GOOGLE)["customer_id"]
    ids["B"] = _wrote(api, B, "2024-01-20", source={"source": "newsletter", "medium": "email"})[
        "customer_id"
    ]
    ids["C"] = _wrote(api, C, "2024-02-03", source=GOOGLE)["customer_id"]
    ids["D"] = _wrote(api, D, "2024-02-10")["customer_id"]
    ids["D2"] = _wrote(api, D2, "2024-04-08", channel="email", source={"source": "facebook"})[
        "customer_id"
    ]
    ids["E"] = _wrote(api, E, "2023-12-20")["customer_id"]
    ids["F"] = _wrote(api, F, "2024-03-10", source=GOOGLE)["customer_id"]
    _wrote(api, A, "2024-02-05")
    _wrote(api, A, "2024-04-02")
    _wrote(api, B, "2024-03-15")
    _wrote(api, C, "2024-03-01")
    _wrote(api, E, "2024-01-15")
    _wrote(api, F, "2024-04-05")
    _order(api, A, "2024-01-12", "100.00", "EUR")
    _order(api, A, "2024-02-06", "50.00", "USD")
    _order(api, B, "2024-03-15", "20.00", "CZK")
    _order(api, C, "2024-02-04", "40.00", "EUR")
    _order(api, C, "2024-02-05", "10.00", "EUR", type="order.cancelled")
    _order(api, F, "2024-03-11", "30.00", "EUR")
    merged = api.post(f"/v1/customers/{ids['D']}/merge", json={"customer_id": ids["D2"]})
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    return ids


RETENTION = {
    "2024-01": {"customers": 2, "month_1": 0.5, "month_2": 0.5, "month_3": 0.5},
    "2024-02": {"customers": 2, "month_1": 0.5, "month_2": 0.5, "month_3": None},
    "2024-03": {"customers": 1, "month_1": 1.0, "month_2": None, "month_3": None},
    "2024-04": {"customers": 0, "month_1": None, "month_2": None, "month_3": None},
}
# month 1: A, C, F of 5; month 2: B, D of the 4 of Jan and Feb; month 3: A of Jan's 2
RETENTION_TOTAL = {"customers": 5, "month_1": 0.6, "month_2": 0.5, "month_3": 0.5}
VALUE = {
    # A: 100 EUR + 50 USD * 0.90; B: 20 CZK has no rate
    "2024-01": ["2", "2", "3", "0", "145.00", "72.50", "72.50", "1"],
    # C: 40 - 10 EUR; D bought nothing
    "2024-02": ["2", "1", "1", "1", "30.00", "15.00", "30.00", "0"],
    "2024-03": ["1", "1", "1", "0", "30.00", "30.00", "30.00", "0"],
    "2024-04": ["0", "0", "0", "0", "0.00", "", "", "0"],
    "total": ["5", "4", "5", "1", "205.00", "41.00", "51.25", "1"],
}


def _value_table(api: Api, **params: Any) -> dict[str, list[str]]:
    response = api.get("/v1/reports/value", params=RANGE | {"format": "csv"} | params)
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == [
        "group",
        "customers",
        "buyers",
        "orders",
        "cancellations",
        "value",
        "value_per_customer",
        "value_per_buyer",
        "unconverted",
    ]
    return {row[0]: row[1:] for row in table[1:]}


def test_retention_value_and_sources_of_the_worked_example(api: Api) -> None:
    _seed(api)
    retention = report(api, "retention")
    assert (retention["group"], retention["cohort"]) == ("month", "first_contact")
    assert retention["columns"] == ["group", "customers", "month_1", "month_2", "month_3"]
    assert {
        k: {c: v for c, v in r.items() if c != "group"} for k, r in rows(retention).items()
    } == RETENTION
    assert retention["total"] == RETENTION_TOTAL

    by_order = rows(report(api, "retention", cohort="first_order"))
    # A (Jan): Feb yes, Mar no, Apr yes; C (Feb): Mar yes, Apr no; B and F (Mar): F in Apr
    assert by_order["2024-01"] == {
        "group": "2024-01",
        "customers": 1,
        "month_1": 1.0,
        "month_2": 0.0,
        "month_3": 1.0,
    }
    assert (by_order["2024-02"]["month_1"], by_order["2024-02"]["month_2"]) == (1.0, 0.0)
    assert (by_order["2024-03"]["customers"], by_order["2024-03"]["month_1"]) == (2, 0.5)

    assert _value_table(api) == VALUE
    value = report(api, "value")
    assert (value["currency"], value["rates"]) == ("EUR", {"USD": "0.90"})
    assert value["total"]["value"] == "205.00"
    by_source = rows(report(api, "value", group="source"))
    assert list(by_source) == ["google", "newsletter", "(none)"]
    # A 145 + C 30 + F 30; B's only order has no rate; D bought nothing
    assert (by_source["google"]["customers"], by_source["google"]["value"]) == (3, "205.00")
    assert (by_source["newsletter"]["value"], by_source["newsletter"]["unconverted"]) == (
        "0.00",
        1,
    )
    assert by_source["(none)"]["customers"] == 1  # D and D2, merged


def test_what_the_business_reports_cannot_do_is_refused(api: Api) -> None:
    for params in (
        {"group": "week"},
        {"group": "channel"},
        {"channel": "sms"},
        {"tag": "vip"},
    ):
        assert_error(api.get("/v1/reports/retention", params=RANGE | params), 422, "invalid_report")
    assert_error(
        api.get("/v1/reports/sources", params=RANGE | {"group": "month"}), 422, "invalid_report"
    )
    assert_error(
        api.get("/v1/reports/response-times", params=RANGE | {"group": "source"}),
        422,
        "invalid_report",
    )
    assert_error(
        api.get("/v1/reports/value", params=RANGE | {"cohort": "last_order"}),
        422,
        "validation_error",
    )
    default = report(api, "sources")
    assert (default["group"], default["rows"]) == ("source", [])


def test_sources_per_source_medium_and_campaign(api: Api) -> None:
    _seed(api)
    body = report(api, "sources")
    assert body["group"] == "source"
    by_source = rows(body)
    assert list(by_source) == ["google", "newsletter", "(none)"]
    google = by_source["google"]
    # A, C, F; each of their messages, weeks apart, opened a conversation (A 3, C 2, F 2);
    # orders: A 2, C 1, F 1; month 1 after: all three; month 3 after (only A's January has
    # one before April's end): A
    assert google == {
        "group": "google",
        "customers": 3,
        "conversations": 7,
        "buyers": 3,
        "orders": 4,
        "value": "205.00",
        "value_per_customer": "68.33",
        "unconverted": 0,
        "retained_month_1": 1.0,
        "retained_month_3": 1.0,
    }
    # B: active in March only; D+D2: two conversations (SMS and email), one customer
    assert (
        by_source["newsletter"]["retained_month_1"],
        by_source["newsletter"]["unconverted"],
    ) == (
        0.0,
        1,
    )
    none = by_source["(none)"]
    assert (none["customers"], none["conversations"], none["retained_month_3"]) == (1, 2, None)
    assert body["total"]["customers"] == 5
    by_medium = rows(report(api, "sources", group="medium"))
    assert {k: v["customers"] for k, v in by_medium.items()} == {"cpc": 3, "email": 1, "(none)": 1}
    by_campaign = rows(report(api, "sources", group="campaign"))
    assert {k: v["customers"] for k, v in by_campaign.items()} == {"winter-sale": 3, "(none)": 2}


def rebuild(api: Api) -> None:
    """What ``hub projections rebuild business`` does: drop the view, replay the store."""
    assert api.runtime is not None
    api.runtime.views.reset("business")
    # As `hub projections rebuild` does: in a process of its own, with views of its own
    # (the server's follower keeps applying meanwhile; each keeps its own rows).
    views = open_views(api.runtime.settings, api.runtime.store)
    LogFollower(api.runtime.store, views, only=["business"]).catch_up()
    api.wait_caught_up()


def _everything(api: Api) -> list[bytes]:
    found = []
    for name, params in (
        ("retention", {}),
        ("retention", {"cohort": "first_order"}),
        ("value", {}),
        ("value", {"group": "campaign"}),
        ("sources", {}),
    ):
        for format in ("json", "csv"):
            response = api.get(f"/v1/reports/{name}", params=RANGE | params | {"format": format})
            assert response.status_code == 200, response.text
            found.append(response.content)
    return found


def test_an_erased_customer_keeps_counting_without_an_id(api: Api) -> None:
    ids = _seed(api)
    before = _everything(api)
    rebuild(api)
    assert _everything(api) == before  # the same bytes

    erased = api.post(f"/v1/customers/{ids['F']}/erase", json={"reason": "data_subject_request"})
    assert erased.status_code == 200, erased.text
    api.wait_caught_up()
    retention = report(api, "retention")
    assert retention["total"] == RETENTION_TOTAL
    assert rows(retention)["2024-03"]["customers"] == 1
    assert _value_table(api) == VALUE
    by_source = rows(report(api, "sources"))
    assert list(by_source) == ["google", "newsletter", "(none)", "(erased)"]
    assert (by_source["google"]["customers"], by_source["google"]["value"]) == (2, "175.00")
    gone = by_source["(erased)"]
    # F's conversation is no longer anyone's (the service view forgets whose it was)
    assert (gone["customers"], gone["value"], gone["retained_month_1"]) == (1, "30.00", 1.0)

    assert api.runtime is not None
    with api.runtime.views.engine.connect() as conn:
        keys = set(conn.scalars(select(business_customers.c.key)))
        keys |= set(conn.scalars(select(business_orders.c.key)))
        keys |= {str(k) for k in conn.scalars(select(business_orders.c.order_id))}
        assert ids["F"] not in {str(k) for k in keys}
        assert None in set(conn.scalars(select(business_customers.c.customer_id)))

    after = _everything(api)
    rebuild(api)
    assert _everything(api) == after
