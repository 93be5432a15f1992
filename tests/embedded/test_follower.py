"""The embedded log follower isolates a bad event: a projection that cannot take one event sets
it aside; every other event and view flows on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, select

from hub.embedded.follower import LogFollower
from hub.events import Envelope, InboundInteraction, InteractionReceived
from hub.projections import Views, default_projections
from hub.projections.base import Projection
from hub.projections.views import dead_letters
from hub.store import open_store
from tests.support.api import wait_for


class Exploding(Projection):
    """Refuses any interaction whose text is 'boom', like a view meeting data it cannot store."""

    name = "exploding"
    handles = frozenset({"interaction.received.v1"})
    tables = ()

    def __init__(self) -> None:
        self.seen: list[str] = []

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        for event in events:
            assert isinstance(event, InteractionReceived)
            if event.data.text == "boom":
                raise ValueError("cannot store this")
        self.seen += [e.data.text or "" for e in events if isinstance(e, InteractionReceived)]

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        pass  # keeps nothing in tables


def _item(n: int, text: str) -> InboundInteraction:
    return InboundInteraction(
        channel="sms",
        direction="inbound",
        address=f"phone:+1555020{n:04d}",
        provider_message_id=f"poison-{n}",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        text=text,
    )


def test_poison_event_is_set_aside_and_the_rest_flows(make_settings, backend) -> None:
    store = open_store(make_settings(backend))
    exploding = Exploding()
    views = Views(store.views_engine, [*default_projections(), exploding])
    views.create()
    try:
        texts = ["one", "two", "boom", "four", "five"]
        store.app.record_interactions([_item(n, t) for n, t in enumerate(texts)])
        follower = LogFollower(store, views)
        for _ in range(2):  # the batch fails as a whole: retried first
            try:
                follower.run_once()
            except ValueError:
                pass
            else:
                raise AssertionError("the batch should have failed")
        follower.catch_up()  # third failure: applied event by event

        assert exploding.seen == ["one", "two", "four", "five"]
        assert follower.set_aside == 1
        top = store.app.recorder.max_notification_id()
        assert views.positions() == {p.name: top for p in views.projections}
        with views.engine.connect() as conn:
            rows = conn.execute(select(dead_letters)).mappings().all()
        assert [(r["projection"], r["event_type"]) for r in rows] == [
            ("exploding", "interaction.received.v1")
        ]
        assert "cannot store this" in rows[0]["error"]
        with views.engine.connect() as conn:  # the real views took every event
            found = views.directory.search(conn, "5550200", 10, None)[0]
        assert len(found) == 5
    finally:
        store.close()


def test_its_loop_reports_each_change_of_error(make_settings) -> None:
    """What the projection process forwards to its server for /readyz: the error when a
    round starts failing, None once one succeeds again; nothing while it stays the same."""
    store = open_store(make_settings("sqlite"))
    exploding = Exploding()
    views = Views(store.views_engine, [*default_projections(), exploding])
    views.create()
    reported: list[str | None] = []
    follower = LogFollower(store, views, poll_interval=0.02, on_error=reported.append)
    store.app.add_listener(follower.wake)
    follower.start()
    try:
        store.app.record_interactions([_item(1, "one"), _item(2, "boom"), _item(3, "three")])
        wait_for(lambda: len(reported) >= 2, timeout=10)
        assert reported == ["ValueError: cannot store this", None]  # set aside at the third try
        assert exploding.seen == ["one", "three"]
        assert follower.error is None
    finally:
        follower.stop()
        store.close()
