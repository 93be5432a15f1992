"""The agents' conversation commands of HubApplication on SQLite and PostgreSQL: status and
assignment change only when different; unknown ids are not found."""

from __future__ import annotations

import pytest

from hub.domain.errors import InvalidCommand, NotFound
from hub.domain.ids import message_id
from hub.store import Store
from tests.domain.helpers import types
from tests.support.store import inbound


def test_status_and_assignment_change_only_when_different(store: Store) -> None:
    app = store.app
    [r] = app.record_interactions([inbound("SM1")])
    app.change_status(r.conversation_id, "pending", "ann")
    app.change_status(r.conversation_id, "pending", "ann")
    app.assign(r.conversation_id, "bob", "ann")
    app.assign(r.conversation_id, "bob", "ann")
    app.assign(r.conversation_id, None, "ann")
    counts = types(store)
    assert counts["conversation.status_changed.v1"] == 1
    assert counts["conversation.assigned.v1"] == 2
    assert app.conversation(r.conversation_id).assignee is None
    with pytest.raises(InvalidCommand):
        app.change_status(r.conversation_id, "closed", "ann")


def test_commands_on_unknown_conversations_raise_not_found(store: Store) -> None:
    [r] = store.app.record_interactions([inbound("SM1")])
    unknown = message_id("sms", "nope")
    with pytest.raises(NotFound):
        store.app.add_note(unknown, "text", "ann")
    with pytest.raises(NotFound):
        store.app.change_status(unknown, "resolved", "ann")
    with pytest.raises(NotFound):
        store.app.assign(unknown, "ann", "ann")
    with pytest.raises(NotFound):
        store.app.conversation(r.message_id)  # a message id is not a conversation
