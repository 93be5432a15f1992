"""Segment totals on a running hub (``hub.runtime.segments.Totals``), on SQLite and
PostgreSQL, with a clock the test turns: a total is reused while the views stand still (for
up to a minute) and for up to 2 s after they moved, then counted again."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from hub.events.segments import parse_filter
from hub.projections import Views
from hub.projections.directory import customers
from hub.projections.segment_filter import FilterContext
from hub.runtime.segments import TOTAL_HOLDS_SECONDS, TOTAL_LAG_SECONDS, Totals
from hub.store import Store
from tests.projections.helpers import project
from tests.support.store import T0, inbound

EVERYONE = parse_filter({"all": []})
CTX = FilterContext(now=datetime.now(UTC))


def test_a_total_is_reused_while_it_holds_then_counted_again(store: Store) -> None:
    views = Views(store.views_engine)
    views.create()
    store.app.record_interactions([inbound("a-1", address="phone:+37060040001")])
    project(store, views)
    now = [1000.0]
    totals = Totals(clock=lambda: now[0])

    def total() -> int:
        with views.engine.connect() as conn:
            return totals.total(conn, EVERYONE, CTX)

    assert total() == 1
    store.app.record_interactions([inbound("b-1", address="phone:+37060040002")])
    project(store, views)  # the views moved...
    now[0] += TOTAL_LAG_SECONDS / 2
    assert total() == 1  # ...a moment ago: the total counted before stands
    now[0] += TOTAL_LAG_SECONDS
    assert total() == 2  # counted again

    # A row the views' positions do not know of (written behind their back, for the test):
    # while they stand still, the total counted stands, for up to a minute.
    with views.engine.begin() as conn:
        conn.execute(customers.insert().values(customer_id=uuid4(), created_at=T0, search_text=""))
    now[0] += TOTAL_HOLDS_SECONDS - 1
    assert total() == 2
    now[0] += 2
    assert total() == 3
    # Another filter is counted on its own.
    with views.engine.connect() as conn:
        assert totals.total(conn, parse_filter({"channel": "email"}), CTX) == 0
