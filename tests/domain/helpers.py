"""What the domain tests share: the published envelopes of a store, counted by type, how
many events it holds, and how many each of its command runner's transactions saved."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from hub.events import Envelope
from hub.store import Store

PHONE = "phone:+4915112345678"


def envelopes(store: Store) -> list[Envelope]:
    found, _ = store.read_envelopes(0, 100_000)
    return found


def types(store: Store) -> Counter[str]:
    return Counter(e.type for e in envelopes(store))


def stored_count(store: Store) -> int:
    return store.app.recorder.max_notification_id() or 0


def count_saves(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events each store transaction of the command runner saves from now on (the
    list grows)."""
    runner = store.app.runner
    save, saves = runner._save, []

    def counting(events: list[Any]) -> None:
        saves.append(len(events))
        save(events)

    monkeypatch.setattr(runner, "_save", counting)
    return saves
