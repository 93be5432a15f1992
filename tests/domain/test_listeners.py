"""Who the application tells of a commit (hub.domain.application ``add_listener``): every
listener, or only one whose topics the commit stored (the due queues: a recorded interaction
must not wake the dispatcher)."""

from __future__ import annotations

import pytest

from hub.domain.model import Message
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.support.store import inbound

REQUESTED = f"{Message.__module__}:{Message.__name__}.DispatchRequested"


@pytest.fixture
def backend() -> str:
    """Telling listeners is the application's, not the backend's."""
    return "sqlite"


def test_a_listener_with_topics_hears_only_the_commits_that_stored_one(store: Store) -> None:
    every: list[int] = []
    requested: list[int] = []
    store.app.add_listener(every.append)
    store.app.add_listener(requested.append, [REQUESTED])

    (sms,) = store.app.record_interactions([inbound("SM1")])
    assert len(every) == 1
    assert requested == []

    store.app.outbound.reply(sms.conversation_id, "hi", author="ann", policy=FakeChannels())
    assert len(every) == 2
    assert requested == [every[1]]  # the position of the reply's commit
    assert every[1] > every[0]
