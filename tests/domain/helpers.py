"""What the domain tests share: the published envelopes of a store, counted by type, and how
many events it holds."""

from __future__ import annotations

from collections import Counter

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
