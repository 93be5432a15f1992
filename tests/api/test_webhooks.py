"""The webhook routes under concurrent load: every 200 means the message is recorded, replays
are recorded once, concurrent requests share store transactions (the write queue), and a
request that gives up while waiting does not stop the queue for the others."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import httpx
import pytest

from hub.config import Settings
from hub.domain.application import Recorded
from hub.events import InboundInteraction
from hub.runtime.group_commit import WriteQueue
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    incoming_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app

PUBLIC = "https://hub.example.test"


@pytest.fixture
def api(make_settings: Callable[..., Settings]) -> Iterator[Api]:
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        twilio=twilio_settings("http://127.0.0.1:9"),  # nothing is sent in these tests
    )
    with running_app(settings) as api:
        yield api


def _sms(api: Api, n: int) -> httpx.Response:
    params = [
        (k, f"+1415555{n % 7:04d}" if k == "From" else v)
        for k, v in incoming_params(f"message {n}", f"SMload{n:04d}")
    ]
    return _signed(api, params)


def _signed(api: Api, params: list[tuple[str, str]], **request: Any) -> httpx.Response:
    return api.client.post(
        "/webhooks/twilio/sms",
        content=request.pop("content", urlencode(params)),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(
                AUTH_TOKEN, f"{PUBLIC}/webhooks/twilio/sms", params
            ),
        },
        **request,
    )


def test_concurrent_webhooks_are_each_recorded_once(api: Api) -> None:
    count = 40
    with ThreadPoolExecutor(8) as pool:
        # Every message twice, the second a provider's retry of the first.
        responses = list(pool.map(lambda n: _sms(api, n % count), range(2 * count)))
    assert [r.status_code for r in responses] == [200] * (2 * count)
    assert all(b"<Response" in r.content for r in responses)
    api.wait_caught_up()
    recorded = [e for e in api.all_events() if e["type"] == "interaction.received.v1"]
    assert sorted(e["data"]["provider_message_id"] for e in recorded) == sorted(
        f"SMload{n:04d}" for n in range(count)
    )
    assert api.runtime is not None
    assert api.runtime.writes.groups <= 2 * count


def test_webhook_requests_are_timed_by_route_template(api: Api) -> None:
    assert _sms(api, 1).status_code == 200
    metrics = api.client.get("/metrics").text
    assert 'route="/webhooks/{name}/{hook}"' in metrics
    assert 'hub_webhooks_total{connector="twilio",outcome="ok"} 1.0' in metrics


def test_other_methods_are_not_allowed(api: Api) -> None:
    refused = api.client.put("/webhooks/twilio/sms", content=b"")
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, HEAD, POST"


def test_a_path_that_is_no_webhook_is_not_found(api: Api) -> None:
    for path in ("/webhooks/", "/webhooks/twilio/sms/extra", "/webhooks/nobody/sms"):
        assert_error(api.client.post(path, content=b""), 404, "not_found")
    assert 'route="unmatched"' in api.client.get("/metrics").text


def test_an_oversized_webhook_is_413_and_records_nothing(api: Api) -> None:
    before = api.store_position()
    params = incoming_params("x" * (1024 * 1024), "SM" + "b" * 32)
    declared = _signed(api, params)
    assert_error(declared, 413, "payload_too_large")
    raw = urlencode(params).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    assert_error(_signed(api, params, content=chunks()), 413, "payload_too_large")
    assert api.store_position() == before


def test_a_signed_but_malformed_webhook_is_400(api: Api) -> None:
    params = [(k, v) for k, v in incoming_params("hi", "SM" + "c" * 32) if k != "MessageSid"]
    error = assert_error(_signed(api, params), 400, "malformed_payload")
    assert "MessageSid" in error["message"]
    metrics = api.client.get("/metrics").text
    assert 'hub_webhooks_total{connector="twilio",outcome="malformed"} 1.0' in metrics


def test_a_failure_while_recording_is_the_error_model(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.runtime is not None

    async def broken(name: str, outcome: Any) -> None:
        raise RuntimeError("the gateway broke")

    monkeypatch.setattr(api.runtime.gateway, "receive", broken)
    assert_error(_sms(api, 1), 500, "internal_error")
    assert 'status="500"' in api.client.get("/metrics").text


# -- the write queue the webhooks record through --------------------------------------------


def _queue(
    record: Callable[[Sequence[InboundInteraction]], list[Recorded]],
) -> WriteQueue[Recorded]:
    queue = WriteQueue(record)
    queue.start()
    return queue


def test_a_cancelled_waiter_does_not_stop_the_queue() -> None:
    release = threading.Event()
    seen: list[int] = []

    def record(items: Sequence[InboundInteraction]) -> list[Recorded]:
        release.wait(5)
        seen.append(len(items))
        return [Recorded(uuid4(), uuid4(), uuid4(), duplicate=False) for _ in items]

    queue = _queue(record)
    item: Any = object()

    async def scenario() -> list[Recorded]:
        first = asyncio.create_task(queue.record([item]))
        await asyncio.sleep(0.05)  # the writer is recording it, blocked on ``release``
        second = asyncio.create_task(queue.record([item, item]))
        await asyncio.sleep(0.05)
        second.cancel()  # the client went away while its items waited
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        return await asyncio.wait_for(queue.record([item]), 5)

    try:
        assert len(asyncio.run(scenario())) == 1
        # The cancelled request's items were recorded all the same (alone, or grouped with
        # the last request's, depending on timing).
        assert seen[0] == 1
        assert sum(seen) == 4
    finally:
        queue.stop()


def test_a_failed_group_fails_each_of_its_requests() -> None:
    def record(items: Sequence[InboundInteraction]) -> list[Recorded]:
        raise RuntimeError("store down")

    queue = _queue(record)
    item: Any = object()

    async def scenario() -> list[BaseException | list[Recorded]]:
        return await asyncio.gather(
            *(queue.record([item]) for _ in range(5)), return_exceptions=True
        )

    try:
        outcomes = asyncio.run(scenario())
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        with pytest.raises(RuntimeError, match="store down"):
            queue.submit([item]).result(5)  # from a thread, the same
    finally:
        queue.stop()
