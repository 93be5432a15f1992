"""Properties of the segments API's text boundaries, on SQLite and PostgreSQL: any JSON as a
filter is a 4xx or an answer (never a 5xx, whatever reaches the SQL), and any string as a
segment's name is a 4xx or recorded and then readable everywhere (the API, the list, the
console's customers page)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from hub.events.common import check_text
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import sign_in
from tests.support.hostile import HOSTILE_TEXT

_RUN = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

HEADS = [
    "all",
    "any",
    "not",
    "tag",
    "attribute",
    "channel",
    "consent",
    "language",
    "time_zone",
    "source",
    "first_contact",
    "last_contact",
    "open_conversations",
]
FIELDS = ["op", "value", "purpose", "after", "before", "within_days", "medium", "campaign", "via"]
PLAUSIBLE = st.sampled_from(
    [
        "sms",
        "email",
        "api",
        "marketing",
        "service",
        "eq",
        "lt",
        "in",
        "exists",
        "lt",
        "pt-BR",
        "Europe/Vilnius",
        "2024-05-01T00:00:00Z",
        "2024-05-01",
        "chat_page",
        "vip",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    PLAUSIBLE,
    HOSTILE_TEXT,
)
KEYS = st.one_of(st.sampled_from(HEADS + FIELDS), HOSTILE_TEXT)


def _json(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.builds(lambda head, value: {head: value}, st.sampled_from(HEADS), children),
    )


#: Any JSON, biased towards the filter's own keys and values so that much of it reaches SQL.
ANY_FILTER = st.recursive(SCALARS, _json, max_leaves=20)
#: Leaves the schema takes, with hostile text where text goes.
VALID_LEAF = st.one_of(
    st.builds(lambda t: {"tag": t}, HOSTILE_TEXT),
    st.builds(lambda s: {"source": s}, HOSTILE_TEXT),
    st.builds(lambda c: {"source": {"campaign": c}}, HOSTILE_TEXT),
    st.builds(
        lambda key, op, value: {"attribute": key, "op": op, "value": value},
        st.sampled_from(["tier", "score", "since"]),
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
        st.one_of(HOSTILE_TEXT, st.integers(-(2**60), 2**60), st.floats(allow_nan=False)),
    ),
    st.builds(
        lambda values: {"attribute": "tier", "op": "in", "value": values},
        st.lists(SCALARS, min_size=1, max_size=5),
    ),
    st.builds(lambda days: {"last_contact": {"within_days": days}}, st.integers(-5, 40_000)),
)
VALID_TREE = st.recursive(
    VALID_LEAF,
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=8,
)


#: How many filter examples were answered (not refused): the run must reach the SQL.
ANSWERED: list[Any] = []


def _post(api: Api, path: str, body: dict[str, Any]) -> Any:
    # Escaped JSON, as any client may send: "\ud800" is valid JSON and a lone surrogate.
    return api.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


@_RUN
@given(tree=st.one_of(ANY_FILTER, VALID_TREE))
@example(tree={"tag": "\x00"})
@example(tree={"attribute": "tier", "value": 2**70})
@example(tree={"attribute": "tier", "op": "in", "value": ["\ud800"]})
@example(tree={"source": {"source": "%_\\"}})
@example(tree={"not": {"all": []}})
def test_any_filter_is_a_4xx_or_an_answer(api: Api, tree: Any) -> None:
    api.record(address="phone:+15550199999", contact_name="Only One")  # one customer to match
    response = _post(api, "/v1/segments/preview", {"filter": tree})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["code"] in ("validation_error", "invalid_filter")
        return
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) <= 1  # (the total may be counted a moment earlier)
    assert body["total"] <= 1
    ANSWERED.append(tree)


def test_the_filter_property_reached_the_sql() -> None:
    assert len(ANSWERED) >= 20, ANSWERED  # not a vacuous run


def _readable(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return True


@_RUN
@given(name=HOSTILE_TEXT)
@example(name="x" * 100)
@example(name="x" * 101)
@example(name=" <b>bold</b> ")
@example(name="a\ud800")
def test_any_name_is_a_4xx_or_recorded_and_readable(api: Api, name: str) -> None:
    response = _post(api, "/v1/segments", {"name": name, "filter": {"tag": "vip"}})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        code = response.json()["error"]["code"]
        assert code in ("validation_error", "invalid_command", "segment_name_taken")
        if code != "segment_name_taken":
            assert not 1 <= len(name.strip()) <= 100 or not _readable(name)
        return
    assert response.status_code == 201, response.text
    sent = json.loads(json.dumps(name)).strip()  # escaped surrogate pairs arrive joined
    assert _readable(sent)
    saved = response.json()
    assert saved["name"] == sent
    assert api.get(f"/v1/segments/{saved['segment_id']}").json()["name"] == sent
    listed = api.get("/v1/segments").json()["items"]
    assert sent in [s["name"] for s in listed]
    client = api.client
    if "hub_session" not in client.cookies:
        assert sign_in(client, ADMIN_TOKEN).status_code == 303
    page = client.get("/customers", params={"segment": saved["segment_id"]})
    assert page.status_code == 200, page.text[:500]
    assert str(escape(sent)) in page.text
