"""Property: any string at the profile's text boundaries (PATCH /v1/customers/{id}, PUT
/v1/attributes/{key}, an interaction's source and endpoint) is either refused with a 4xx that
names its code, or recorded and readable back everywhere after: GET, the published events,
the console's customer page. Never a 5xx."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.config import Settings
from tests.support.api import ADMIN_TOKEN, Api, interaction, running_app
from tests.support.console import sign_in
from tests.support.hostile import HOSTILE_TEXT

PROFILE_FIELDS = ("display_name", "birthday", "time_zone", "language", "company", "nickname")
SOURCE_FIELDS = ("source", "medium", "campaign", "referrer", "endpoint")
_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
_phones = itertools.count(1)
RECORDED: list[str] = []


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("profile-properties")
    with running_app(Settings(data_dir=data, admin_token=ADMIN_TOKEN)) as client:
        assert sign_in(client.client, ADMIN_TOKEN).status_code == 303
        client.put("/v1/attributes/nickname", json={"type": "string", "label": "Nickname"})
        yield client


def _send(app: Api, method: str, url: str, body: Any) -> Any:
    # Escaped JSON, as any client may send: "\ud800" is valid JSON and a lone surrogate.
    return app.request(
        method, url, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def _customer(app: Api) -> str:
    recorded = app.record(address=f"phone:+1555020{next(_phones):04d}")
    return str(recorded["customer_id"])


def _refused(response: Any) -> bool:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["code"], response.text
        return True
    return False


@_SETTINGS
@given(field=st.sampled_from(PROFILE_FIELDS), value=HOSTILE_TEXT)
@example(field="company", value="x\ud800")
@example(field="display_name", value="  Rūta  ")
@example(field="nickname", value="\x00")
def test_any_profile_text_is_refused_or_readable_back(app: Api, field: str, value: str) -> None:
    customer = _customer(app)
    body = {"attributes": {"nickname": value}} if field == "nickname" else {field: value}
    response = _send(app, "PATCH", f"/v1/customers/{customer}", body)
    if _refused(response):
        return
    assert response.status_code == 200, response.text
    RECORDED.append(field)
    answered = response.json()
    kept = answered["attributes"].get("nickname") if field == "nickname" else answered[field]
    if field in ("display_name", "company", "nickname"):
        assert kept == (value.strip() or None)  # text as given, surrounding space trimmed
    app.wait_caught_up()
    shown = app.get(f"/v1/customers/{customer}").json()
    assert (shown["attributes"].get("nickname") if field == "nickname" else shown[field]) == kept
    events = app.all_events()
    assert events[-1]["type"] in ("customer.profile_updated.v1", "interaction.received.v1")
    page = app.client.get(f"/customers/{customer}")
    assert page.status_code == 200, page.text[:500]
    form = app.client.get(f"/customers/{customer}/profile")
    assert form.status_code == 200, form.text[:500]


@_SETTINGS
@given(field=st.sampled_from(SOURCE_FIELDS), value=HOSTILE_TEXT)
@example(field="referrer", value="https://example.org/\ud800")
@example(field="endpoint", value="phone:+37060000000")
def test_any_source_text_is_refused_or_readable_back(app: Api, field: str, value: str) -> None:
    address = f"phone:+1555030{next(_phones):04d}"
    extra = {"endpoint": value} if field == "endpoint" else {"source": {field: value}}
    response = _send(app, "POST", "/v1/interactions", interaction(address=address, **extra))
    if _refused(response):
        return
    assert response.status_code == 202, response.text
    RECORDED.append(field)
    app.wait_caught_up()
    customer = response.json()["customer_id"]
    source = app.get(f"/v1/customers/{customer}").json()["source"]
    if field != "endpoint":  # blank text is no value; a source of nothing is none
        assert (source or {}).get(field) == (value.strip() or None)
    (created,) = [
        e
        for e in app.all_events()
        if e["type"] == "customer.created.v1" and e["customer_id"] == customer
    ]
    assert created["data"]["source"] == source
    assert app.client.get(f"/customers/{customer}").status_code == 200


@_SETTINGS
@given(label=HOSTILE_TEXT, value=HOSTILE_TEXT)
@example(label="Plan", value="gold\ud800")
def test_any_attribute_label_and_enum_value_is_refused_or_listed(
    app: Api, label: str, value: str
) -> None:
    body = {"type": "enum", "label": label, "values": [value]}
    response = _send(app, "PUT", "/v1/attributes/tier", body)
    if _refused(response):
        return
    RECORDED.append("attribute")
    listed = {a["key"]: a for a in app.get("/v1/attributes").json()["items"]}
    assert listed["tier"]["label"] == label.strip()
    assert listed["tier"]["values"] == [value.strip()]
    assert app.client.get("/attributes").status_code == 200


def test_the_property_runs_recorded_something(app: Api) -> None:
    """Not a vacuous run: values of every kind were recorded, not only refused."""
    assert {"display_name", "company", "nickname", "source", "attribute"} <= set(RECORDED)
