"""The command runner (hub.domain.unit_of_work): commands that arrive while another runs wait
together and are run as one batch in one transaction, each caller getting its own result or
its own error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import NotFound
from hub.domain.unit_of_work import UnitOfWork
from hub.store import Store
from tests.domain.helpers import count_saves
from tests.support.store import inbound


@pytest.fixture
def backend() -> str:
    """The batching is the runner's, not the backend's."""
    return "sqlite"


@pytest.fixture
def saves(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_saves(store, monkeypatch)


@pytest.fixture
def conversations(store: Store) -> list[UUID]:
    recorded = store.app.record_interactions(
        [inbound(f"SM{n}", address=f"phone:+4915112345{n:03d}") for n in range(5)]
    )
    return [r.conversation_id for r in recorded]


class _Held:
    """A command that holds the runner until released, and the callers queued behind it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.inside, self.release = threading.Event(), threading.Event()
        self.results: dict[int, Any] = {}
        self.threads: list[threading.Thread] = []

    def hold(self, _uow: UnitOfWork) -> None:
        self.inside.set()
        assert self.release.wait(10)

    def queue(self, *calls: Callable[[], Any]) -> None:
        """Start ``calls`` in threads once the runner is held; wait until all are queued."""
        holder = threading.Thread(target=self.store.app.runner.run, args=(self.hold,))
        holder.start()
        assert self.inside.wait(10)
        self.threads = [holder]
        for n, call in enumerate(calls):
            thread = threading.Thread(target=self._call, args=(n, call))
            thread.start()
            self.threads.append(thread)
        deadline = time.monotonic() + 10
        while len(self.store.app.runner._waiting) < len(calls):
            assert time.monotonic() < deadline
            time.sleep(0.005)

    def _call(self, n: int, call: Callable[[], Any]) -> None:
        try:
            self.results[n] = call()
        except Exception as exc:
            self.results[n] = exc

    def done(self) -> dict[int, Any]:
        self.release.set()
        for thread in self.threads:
            thread.join(10)
        return self.results


@pytest.fixture
def held(store: Store) -> Iterator[_Held]:
    held = _Held(store)
    yield held
    held.release.set()


def test_commands_waiting_for_the_runner_share_one_transaction(
    store: Store, conversations: list[UUID], saves: list[int], held: _Held
) -> None:
    held.queue(*(lambda c=c: store.app.assign(c, "bob", "ann") for c in conversations))
    results = held.done()
    assert len(results) == len(conversations)
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert saves == [len(conversations)]  # one transaction for the five
    assert {store.app.conversation(c).assignee for c in conversations} == {"bob"}


def test_a_batch_sees_its_own_changes(
    store: Store, conversations: list[UUID], saves: list[int], held: _Held
) -> None:
    conversation = conversations[0]
    held.queue(
        lambda: store.app.assign(conversation, "bob", "ann"),
        lambda: store.app.change_status(conversation, "pending", "ann"),
    )
    held.done()
    assert saves == [2]
    found = store.app.conversation(conversation)
    assert (found.assignee, found.status) == ("bob", "pending")


def test_one_waiting_commands_error_reaches_only_its_caller(
    store: Store, conversations: list[UUID], saves: list[int], held: _Held
) -> None:
    unknown = UUID(int=7)
    held.queue(
        lambda: store.app.assign(conversations[0], "bob", "ann"),
        lambda: store.app.assign(unknown, "bob", "ann"),
        lambda: store.app.assign(conversations[1], "bob", "ann"),
    )
    results = held.done()
    assert isinstance(results[1], NotFound)
    assert not isinstance(results[0], Exception)
    assert not isinstance(results[2], Exception)
    assert saves == [1, 1]  # the batch failed as a whole: each good one ran alone
    assert store.app.conversation(conversations[0]).assignee == "bob"
    assert store.app.conversation(conversations[1]).assignee == "bob"
