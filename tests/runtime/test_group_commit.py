"""The group commit (hub.runtime.group_commit): one bad item never fails another's write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from hub.domain.errors import StoreUnavailable
from hub.events import InboundInteraction
from hub.runtime.group_commit import Unrecorded, WriteQueue, may_lie_in_the_data


def item(pmid: str) -> InboundInteraction:
    return InboundInteraction(
        channel="sms",
        direction="inbound",
        address="phone:+15550100001",
        provider_message_id=pmid,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class Recorder:
    """Records ids in one transaction per call; a call holding a ``poison`` item fails
    whole, as a store transaction does. ``gate`` holds the first call so that the requests
    queued meanwhile form one group."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.committed: list[str] = []
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def __call__(self, items: Sequence[InboundInteraction]) -> list[str]:
        ids = [i.provider_message_id for i in items]
        self.calls.append(ids)
        if ids == ["first"]:
            self.gate.wait(5)
        if any(i.startswith("poison") for i in ids):
            raise self.error
        self.committed += ids
        return ids


async def run_group(recorder: Recorder, requests: list[list[str]]) -> list[object]:
    queue: WriteQueue[str] = WriteQueue(recorder, isolate=may_lie_in_the_data)
    queue.start()
    try:
        first = asyncio.ensure_future(queue.record([item("first")]))
        while not recorder.calls:  # the writer is busy with "first"
            await asyncio.sleep(0.001)
        waits = [asyncio.ensure_future(queue.record([item(i) for i in r])) for r in requests]
        await asyncio.sleep(0.05)
        recorder.gate.set()
        await first
        return list(await asyncio.gather(*waits, return_exceptions=True))
    finally:
        queue.stop()


async def test_a_poisoned_item_fails_alone_and_its_group_is_recorded() -> None:
    recorder = Recorder(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    outcomes = await run_group(recorder, [["a"], ["poison"], ["b", "c"], ["d", "poison-2", "e"]])

    assert recorder.calls[1] == ["a", "poison", "b", "c", "d", "poison-2", "e"]  # one group
    assert outcomes[0] == ["a"]
    (poisoned,) = outcomes[1]  # type: ignore[misc]
    assert isinstance(poisoned, Unrecorded)
    assert isinstance(poisoned.error, UnicodeEncodeError)
    assert outcomes[2] == ["b", "c"]
    d, bad, e = outcomes[3]  # type: ignore[misc]
    assert (d, e) == ("d", "e")
    assert isinstance(bad, Unrecorded)
    assert sorted(recorder.committed) == ["a", "b", "c", "d", "e", "first"]


async def test_a_lone_item_that_fails_is_unrecorded_not_raised() -> None:
    """A webhook's one item: the gateway needs the result to keep it as a dead letter."""
    recorder = Recorder(ValueError("bad data"))
    queue: WriteQueue[str] = WriteQueue(recorder, isolate=may_lie_in_the_data)
    queue.start()
    try:
        (result,) = await queue.record([item("poison")])
    finally:
        queue.stop()
    assert isinstance(result, Unrecorded)
    assert isinstance(result.error, ValueError)
    assert recorder.calls == [["poison"]]  # no second attempt for what failed alone


async def test_an_unavailable_store_fails_the_whole_group_without_retries() -> None:
    recorder = Recorder(StoreUnavailable("the event store is unavailable"))
    outcomes = await run_group(recorder, [["a"], ["poison"], ["b"]])

    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    assert len(recorder.calls) == 2  # "first", then the group once: no item-by-item retries


@pytest.mark.parametrize(
    ("error", "isolated"),
    [
        (ValueError("bad data"), True),
        (UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates"), True),
        (StoreUnavailable("down"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_which_failures_are_retried_item_by_item(error: BaseException, isolated: bool) -> None:
    assert may_lie_in_the_data(error) is isolated
