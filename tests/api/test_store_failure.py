"""An unreachable store: 503 store_unavailable, nothing half-written, recovery afterwards."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from hub.config import Settings
from tests.support.api import Api, assert_error, interaction, running_app
from tests.support.store import database_unreachable

pytestmark = pytest.mark.postgres


def _post_until_store_is_back(api: Api, body: dict[str, object]) -> httpx.Response:
    """The connection pool reconnects in the background: retry as a client would."""
    deadline = time.monotonic() + 30
    while True:
        response = api.post("/v1/interactions", json=body)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_store_outage_is_503_and_nothing_is_half_written(postgres_settings: Settings) -> None:
    assert postgres_settings.store_url is not None
    with running_app(postgres_settings) as api:
        api.record(address="phone:+15550116001")
        api.wait_caught_up()
        events_before = api.all_events()
        body = interaction(address="phone:+15550116002", provider_message_id="during-outage")
        batch = {
            "interactions": [
                interaction(address="phone:+15550116003", provider_message_id="batch-outage")
            ]
        }

        with database_unreachable(postgres_settings.store_url):
            response = api.post("/v1/interactions", json=body)
            error = assert_error(response, 503, "store_unavailable")
            assert response.headers["Retry-After"] == "1"
            assert "retry" in error["message"]
            assert_error(api.post("/v1/interactions/batch", json=batch), 503, "store_unavailable")
            assert api.client.get("/healthz").status_code == 200

        again = _post_until_store_is_back(api, body)
        # 202, not 200: the refused interaction had not been recorded, even in part.
        assert again.status_code == 202, again.text
        assert again.json()["duplicate"] is False
        new = api.all_events(after=events_before[-1]["position"])
        assert [e["type"] for e in new] == [
            "customer.created.v1",
            "conversation.opened.v1",
            "interaction.received.v1",
        ]
        assert new[2]["data"]["provider_message_id"] == "during-outage"
        assert api.all_events()[: len(events_before)] == events_before
        assert api.post("/v1/interactions/batch", json=batch).json()["recorded"] == 1
        assert api.post("/v1/interactions", json=body).status_code == 200
        messages = api.messages(again.json()["customer_id"])
        assert [m["provider_message_id"] for m in messages] == ["during-outage"]


@pytest.mark.parametrize(
    ("url", "code"), [("/readyz", "not_ready"), ("/v1/events", "store_unavailable")]
)
def test_reads_fail_fast_while_the_store_is_down(
    postgres_settings: Settings, url: str, code: str
) -> None:
    """A probe or a feed read must answer 503 within seconds (the 5 s pool wait), not hang
    while the event store's recorder retries (eventsourcing: 10 attempts x the pool wait)."""
    assert postgres_settings.store_url is not None
    with running_app(postgres_settings) as api:
        api.record()
        api.wait_caught_up()
        answers: list[httpx.Response] = []

        with database_unreachable(postgres_settings.store_url):
            started = time.monotonic()
            reader = threading.Thread(target=lambda: answers.append(api.get(url)))
            reader.start()
            reader.join(timeout=8.0)
            answered_in_time = bool(answers)
        reader.join(timeout=60)  # the store is back: let a slow request finish before stopping
        waited = time.monotonic() - started

        assert answered_in_time, (
            f"GET {url} hung while the store was down (answered after {waited:.0f}s, "
            f"once the store was back, with {answers[0].status_code if answers else None})"
        )
        assert_error(answers[0], 503, code)
