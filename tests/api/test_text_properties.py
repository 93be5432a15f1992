"""Property: any string at the API's text boundary is either refused with a 4xx or recorded
and then readable everywhere after (the published events, the timeline). Never a 5xx, and
never an item that blocks the readers behind it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from hub.config import Settings
from hub.events.common import check_text
from tests.support.api import ADMIN_TOKEN, Api, interaction, running_app, unique
from tests.support.console import sign_in
from tests.support.hostile import HOSTILE_TEXT

FIELDS = (
    "text",
    "contact_name",
    "subject",
    "thread_ref",
    "provider_message_id",
    "references",
    "address",
    "metadata-value",
    "metadata-key",
    "attachment-name",
)
_SLOW = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One hub for every example (each example records under its own ids), its client
    also signed in to the console."""
    data = tmp_path_factory.mktemp("text-properties")
    with running_app(Settings(data_dir=data, admin_token=ADMIN_TOKEN)) as client:
        assert sign_in(client.client, ADMIN_TOKEN).status_code == 303
        yield client


_customers = itertools.count(1)
#: The fields of the examples that were recorded (the run must not refuse everything).
RECORDED: list[str] = []


def body_with(field: str, value: str) -> dict[str, Any]:
    """An interaction with ``value`` in ``field``, from a customer of its own (so that the
    timeline and the console page read are this example's)."""
    body = _body_with(field, value)
    if field != "address":
        body["address"] = f"phone:+1555{next(_customers):07d}"
    return body


def _body_with(field: str, value: str) -> dict[str, Any]:
    if field == "references":
        return interaction(references=[value])
    if field == "metadata-value":
        return interaction(metadata={"note": value})
    if field == "metadata-key":
        return interaction(metadata={value: "v"})
    if field == "attachment-name":
        attachment = {"name": value, "content_type": "text/plain", "size": 1}
        return interaction(attachments=[attachment])
    if field == "address":
        return interaction(address=value)
    return interaction(**{field: value})


def readable(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return True


def test_any_string_is_refused_or_recorded_and_readable(app: Api) -> None:
    """Hostile strings in every text field: each is refused with a 4xx or recorded and
    readable everywhere; then the whole published log the run left behind still reads (in
    this test, not a later one: pytest-xdist may run a later test in another process)."""
    RECORDED.clear()
    _one_string(app)  # hypothesis runs its examples here
    assert len(RECORDED) >= 30, RECORDED  # not a vacuous run
    assert "text" in RECORDED
    after = 0
    while True:
        page = app.get("/v1/events", params={"after": after, "limit": 1000})
        assert page.status_code == 200, page.text
        if page.json()["next_after"] == after:
            break
        after = page.json()["next_after"]
    assert app.post("/v1/interactions", json=interaction(provider_message_id=unique())).is_success


@_SLOW
@given(field=st.sampled_from(FIELDS), value=HOSTILE_TEXT)
@example(field="text", value="x" * (1024 * 1024))
@example(field="contact_name", value="x\ud800")
@example(field="metadata-value", value="\ud800")
def _one_string(app: Api, field: str, value: str) -> None:
    body = body_with(field, value)
    # Escaped JSON, as any client may send: "\ud800" is valid JSON and a lone surrogate.
    response = app.post(
        "/v1/interactions", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["code"]
        return
    assert response.status_code == 202, response.text
    RECORDED.append(field)
    assert readable(value), "text no reader can encode was recorded"
    recorded = response.json()

    (message,) = [
        m for m in app.messages(recorded["customer_id"]) if m["item_id"] == recorded["message_id"]
    ]
    published = app.get("/v1/events", params={"after": message["position"] - 1, "limit": 1})
    assert published.status_code == 200, published.text
    (event,) = published.json()["events"]
    assert event["data"]["message_id"] == recorded["message_id"]
    if field == "text":
        assert message["text"] == event["data"]["text"] == value
    if field == "metadata-value":
        assert message["data"]["metadata"] == event["data"]["metadata"] == {"note": value}
    if field == "contact_name":
        assert event["data"]["contact_name"] == value
    # The console: the customer's page and their timeline items render, the text escaped.
    page = app.client.get(f"/customers/{recorded['customer_id']}")
    assert page.status_code == 200, page.text[:500]
    if field == "text" and value.strip() and len(value) < 200:
        assert str(escape(value.strip())) in page.text
