"""``Views.apply`` when two appliers meet: the server's follower and ``hub projections
rebuild`` beside it, each with projection objects of its own, apply the same batch at once.
The second must wait for the first and then find the batch applied, not apply it again."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar
from uuid import UUID

from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, select

from hub.events import Envelope
from hub.projections import Views, default_projections
from hub.projections.base import Projection
from hub.store import Store
from tests.support.store import inbound

_metadata = MetaData()
#: One row per applied event: a plain INSERT, so an event applied twice is an error.
_applied = Table("test_applied_once", _metadata, Column("position", Integer, primary_key=True))


class _Counting(Projection):
    """Inserts a row per event; can hold its transaction open until told to go on."""

    name = "applied_once"
    handles: ClassVar[frozenset[str]] = frozenset({"interaction.received.v1"})
    tables = (_applied,)

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.go_on = threading.Event()
        self.go_on.set()

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        conn.execute(_applied.insert(), [{"position": e.position} for e in events])
        self.inside.set()
        assert self.go_on.wait(10)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        pass


def test_a_second_applier_waits_and_finds_the_batch_applied(store: Store) -> None:
    first, second = _Counting(), _Counting()
    server = Views(store.views_engine, [*default_projections(), first])
    rebuild = Views(store.views_engine, [*default_projections(), second])
    server.create()
    store.app.record_interactions([inbound(f"SM{n}") for n in range(3)])
    events, top = store.read_envelopes(0, 1000)
    assert events

    first.go_on.clear()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def apply(views: Views, who: str) -> None:
        try:
            results[who] = views.apply(events, top)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    holding = threading.Thread(target=apply, args=(server, "server"))
    holding.start()
    assert first.inside.wait(10)  # the server's batch is written, not committed
    racing = threading.Thread(target=apply, args=(rebuild, "rebuild"))
    racing.start()
    racing.join(0.5)  # it waits for the server's transaction (or, unlocked, applies too)
    first.go_on.set()
    holding.join(10)
    racing.join(10)

    assert not errors
    assert results["rebuild"] == 0
    assert results["server"] >= len(events)
    with store.views_engine.connect() as conn:
        applied = conn.scalar(select(func.count()).select_from(_applied))
    assert applied == sum(e.type in _Counting.handles for e in events) == 3
    assert server.positions()["applied_once"] == top
