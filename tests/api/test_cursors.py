"""Cursors and positions a client sends back (``after=``, ``Last-Event-ID``, ``before=``) are
checked before they reach SQL: out of range or not made by the hub is a 4xx with the error
model, never a 500 (issue 13, item 6), on the API and on the console's pages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.projections.timeline import encode_cursor
from hub.web.streams import MAX_POSITION
from tests.support.api import ADMIN, ADMIN_TOKEN, Api, assert_error
from tests.support.console import sign_in


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


ITEM = UUID("0190a0b0-0000-7000-8000-000000000001")
#: Cursors of the right shape whose time cannot be converted to UTC, or is not one the hub
#: writes (naive, another offset, stray characters that base64 would skip).
BAD_CURSORS = {
    "year-1-at-+14": _b64(f"0001-01-01T00:00:00+14:00|{ITEM}"),
    "year-9999-at--14": _b64(f"9999-12-31T23:59:59-14:00|{ITEM}"),
    "naive": _b64(f"2026-01-01T00:00:00|{ITEM}"),
    "not-utc": _b64(f"2026-01-01T01:00:00+01:00|{ITEM}"),
    "stray-character": encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), ITEM) + "$",
    "not-base64": "not-a-cursor",
}


def test_event_positions_beyond_64_bits_are_422(api: Api) -> None:
    error = assert_error(api.get("/v1/events", params={"after": 2**63}), 422, "validation_error")
    assert error["details"][0]["loc"] == ["query", "after"]
    last = api.get("/v1/events", params={"after": MAX_POSITION})
    assert last.status_code == 200, last.text
    assert last.json() == {"events": [], "next_after": MAX_POSITION}
    schema = api.client.get("/openapi.json").json()
    after = next(
        p for p in schema["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "after"
    )
    assert after["schema"]["maximum"] == MAX_POSITION


@pytest.mark.parametrize(
    "last_event_id",
    ["99999999999999999999999", str(2**63), "-1", "+5", "5 5", "5.0", "²", "¹2", "0x10"],
)
def test_a_last_event_id_that_is_no_position_is_400(sqlite_api: Api, last_event_id: str) -> None:
    # Latin-1 on the wire, as servers decode headers: "²" arrives as itself (str.isdigit()
    # says yes to it, int() does not).
    header = last_event_id.encode("latin-1")
    response = _opened(sqlite_api.client, "/v1/events/stream", {"Last-Event-ID": header})
    assert_error(response, 400, "invalid_cursor")


def test_stream_after_beyond_64_bits_is_422(sqlite_api: Api) -> None:
    response = _opened(sqlite_api.client, f"/v1/events/stream?after={2**63}")
    assert_error(response, 422, "validation_error")


def _opened(
    client: httpx.Client, url: str, headers: dict[str, Any] | None = None
) -> httpx.Response:
    """The answer to a stream request, read only when it is not the stream (which would
    never end): a mistaken 200 fails the test instead of hanging it."""
    with client.stream("GET", url, headers=ADMIN | (headers or {})) as response:
        if response.status_code != 200:
            response.read()
    return response


def _customer(api: Api) -> str:
    customer: str = api.record()["customer_id"]
    api.wait_caught_up()
    return customer


@pytest.mark.parametrize("name", sorted(BAD_CURSORS))
def test_timeline_cursors_out_of_range_are_400(api: Api, name: str) -> None:
    customer = _customer(api)
    cursor = BAD_CURSORS[name]
    response = api.get(f"/v1/customers/{customer}/timeline", params={"before": cursor})
    assert_error(response, 400, "invalid_cursor")


def test_extreme_times_the_hub_could_have_written_are_fine(api: Api) -> None:
    customer = _customer(api)
    for at in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)):
        cursor = encode_cursor(at, UUID(int=0))
        response = api.get(f"/v1/customers/{customer}/timeline", params={"before": cursor})
        assert response.status_code == 200, response.text


def _console(api: Api) -> TestClient:
    client = api.client
    assert isinstance(client, TestClient)
    assert sign_in(client, ADMIN_TOKEN).status_code == 303
    return client


def test_console_cursors_out_of_range_are_400(sqlite_api: Api) -> None:
    customer = _customer(sqlite_api)
    client = _console(sqlite_api)
    for cursor in BAD_CURSORS.values():
        for path in ("/", f"/customers/{customer}/items"):
            assert_error(client.get(path, params={"before": cursor}), 400, "invalid_cursor")
    live = _opened(client, f"/customers/{customer}/live?after={2**63}")
    assert_error(live, 422, "validation_error")


# -- any string ---------------------------------------------------------------------------------

_offsets = st.one_of(
    st.none(),
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ).map(lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))),
)
#: Any time, often within a day of the ends of the range (where an offset overflows).
_times = st.one_of(
    st.datetimes(),
    st.datetimes(max_value=datetime(1, 1, 2)),
    st.datetimes(min_value=datetime(9999, 12, 31)),
)
#: Cursor-shaped text: base64 of "<ISO time>|<uuid>", with any time, offset and id text.
_shaped = st.builds(
    lambda at, zone, item, extra: _b64(f"{at.replace(tzinfo=zone).isoformat()}|{item}") + extra,
    _times,
    _offsets,
    st.one_of(st.uuids().map(str), st.text(max_size=40)),
    st.sampled_from(["", "", "=", "$", "\n"]),
)
CURSORS = st.one_of(
    st.text(),  # surrogates, NUL and all
    st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    _shaped,
)


def _query(value: str) -> str:
    """``value`` percent-encoded as a client might send it (lone surrogates as the bytes a
    lax encoder produces: the server sees invalid UTF-8)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def test_any_cursor_is_200_or_400_never_5xx(sqlite_api: Api) -> None:
    client = _console(sqlite_api)
    customer = _customer(sqlite_api)
    routes = {
        "timeline": f"/v1/customers/{customer}/timeline?before=",
        "search": "/v1/customers?q=ab&cursor=",
        "queue": "/?before=",
        "items": f"/customers/{customer}/items?before=",
    }

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cursor=CURSORS, route=st.sampled_from(sorted(routes)))
    def check(cursor: str, route: str) -> None:
        response = client.get(routes[route] + _query(cursor), headers=sqlite_api.auth())
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "invalid_cursor"

    check()
