"""Two `hub serve` processes on one data directory: the store, not luck, keeps ids unique."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.hub_process import HubProcess, interaction

pytestmark = pytest.mark.e2e


def _post(
    hub: HubProcess,
    body: dict[str, Any],
    headers: dict[str, str],
    answers: list[tuple[int, dict[str, Any]]],
) -> None:
    response = httpx.post(f"{hub.url}/v1/interactions", json=body, headers=headers, timeout=30)
    answers.append((response.status_code, response.json()))


def test_racing_writers_make_one_customer_per_address_and_one_message_per_id(
    hub_server: Callable[..., HubProcess],
) -> None:
    first, second = hub_server().start(), hub_server().start()
    headers = dict(first.http.headers)

    for round_ in range(10):
        address = f"phone:+1555016{round_:04d}"
        replayed = interaction(address=address, provider_message_id=f"same-{round_}")
        plan = [
            (first, interaction(address=address, provider_message_id=f"r{round_}-a")),
            (second, interaction(address=address, provider_message_id=f"r{round_}-b")),
            (first, replayed),
            (second, replayed),
        ]
        answers: list[tuple[int, dict[str, Any]]] = []

        threads = [
            threading.Thread(target=_post, args=(hub, body, headers, answers)) for hub, body in plan
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert sorted(status for status, _ in answers) == [200, 202, 202, 202], answers
        assert len({body["customer_id"] for _, body in answers}) == 1, answers
        replay_ids = {b["message_id"] for s, b in answers if b["duplicate"] or s == 200}
        assert len(replay_ids) == 1

    first.wait_caught_up()
    events = first.events()
    created = Counter(e["data"]["address"] for e in events if e["type"] == "customer.created.v1")
    assert set(created.values()) == {1}
    assert len(created) == 10
    received = Counter(
        e["data"]["provider_message_id"] for e in events if e["type"] == "interaction.received.v1"
    )
    assert set(received.values()) == {1}
    assert len(received) == 30
    assert second.events() == events
