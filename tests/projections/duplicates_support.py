"""What the duplicate suggestion tests share: people recorded as customers through the store
(each their first message, with a name and any text), and the suggested pairs read back."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select

from hub.projections import Views
from hub.projections.duplicates import DuplicatesProjection, duplicate_pairs
from hub.store import Store
from tests.support.store import T0, inbound

_ids = itertools.count(1)
_CHANNEL = {"phone": "sms", "email": "email", "chat": "chat", "telegram": "telegram"}


@dataclass(frozen=True)
class Person:
    """A customer to record: the address of its first contact, the name its channel gives,
    and what it writes (the first text opens the conversation)."""

    address: str
    name: str | None = None
    texts: Sequence[str] = ("hello",)


def record(store: Store, *people: Person, at_minutes: int = 0) -> list[UUID]:
    """Record each person's messages; their customer ids, in order."""
    found = []
    for person in people:
        kind = person.address.partition(":")[0]
        items = [
            inbound(
                f"dup-{next(_ids)}",
                channel=_CHANNEL[kind],
                address=person.address,
                contact_name=person.name,
                text=text,
                occurred_at=T0 + timedelta(minutes=at_minutes + n),
            )
            for n, text in enumerate(person.texts)
        ]
        results = store.app.record_interactions(items)
        found.append(results[0].customer_id)
    return found


def duplicates_of(views: Views) -> DuplicatesProjection:
    projection = views.by_name("duplicates")
    assert isinstance(projection, DuplicatesProjection)
    return projection


@dataclass(frozen=True)
class Pair:
    score: int
    band: str
    kinds: frozenset[str]
    evidence: list[dict[str, Any]]


def pairs(views: Views) -> dict[frozenset[UUID], Pair]:
    """Every stored pair by its two customer ids."""
    with views.engine.connect() as conn:
        rows = conn.execute(select(duplicate_pairs)).mappings().all()
    return {
        frozenset((r["customer_a"], r["customer_b"])): Pair(
            r["score"], r["band"], frozenset(e["kind"] for e in r["evidence"]), r["evidence"]
        )
        for r in rows
    }


def pair_of(views: Views, a: UUID, b: UUID) -> Pair | None:
    return pairs(views).get(frozenset((a, b)))
