"""The business projection (``hub.projections.business``) on both backends, fed envelopes
built by hand: a customer's active days keep the earliest first and the latest last instant
and its first contact the earliest, whatever batches and order the events come in (a day's
two instants tell which local months it lies in, so a late, earlier event must widen it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from hub.events import Envelope
from hub.events.published import InteractionData, InteractionReceived
from hub.projections import Views
from hub.projections.base import as_utc
from hub.projections.business import BusinessProjection, business_customers, business_days
from hub.sql import write_transaction

D = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _wrote(customer_id: UUID, at: datetime, position: int) -> Envelope:
    data = InteractionData(
        message_id=uuid4(),
        conversation_id=uuid4(),
        channel="sms",
        direction="inbound",
        address="phone:+15550100001",
        provider_message_id=f"pm-{uuid4()}",
        text="hi",
    )
    return InteractionReceived(
        id=uuid4(),
        occurred_at=at,
        recorded_at=at,
        customer_id=customer_id,
        position=position,
        data=data,
    )


def _apply(views: Views, batches: Sequence[Sequence[Envelope]], follower: bool) -> None:
    """Each batch to one projection: as a follower's batches (``Views.apply``: the rows one
    batch wrote are kept for the next), or each applied on its own."""
    projection = BusinessProjection()
    for batch in batches:
        if follower:
            views.apply(batch, up_to=batch[-1].position, only=["business"])
        else:
            with write_transaction(views.engine) as conn:
                projection.apply(conn, batch)


@pytest.mark.parametrize("follower", [True, False], ids=["follower", "apart"])
def test_an_active_day_widens_to_its_earliest_and_latest_instant(
    views: Views, follower: bool
) -> None:
    alice, bob = uuid4(), uuid4()
    times = [D + 10 * HOUR, D + 12 * HOUR, D + 8 * HOUR, D + 11 * HOUR, D + 23 * HOUR]
    events = [_wrote(alice, at, n) for n, at in enumerate(times, start=1)]
    events.append(_wrote(bob, D + 9 * HOUR, 6))
    events.append(_wrote(alice, D + 30 * HOUR, 7))  # the next day

    _apply(views, [events[:2], events[2:4], events[4:]], follower)

    d = business_days.c
    with views.engine.connect() as conn:
        days = {
            (key, day): (as_utc(first), as_utc(last))
            for key, day, first, last in conn.execute(select(d.key, d.day, d.first_at, d.last_at))
        }
        c = business_customers.c
        firsts = {key: as_utc(at) for key, at in conn.execute(select(c.key, c.first_contact_at))}
    assert days == {
        (alice, date(2024, 5, 1)): (D + 8 * HOUR, D + 23 * HOUR),
        (alice, date(2024, 5, 2)): (D + 30 * HOUR, D + 30 * HOUR),
        (bob, date(2024, 5, 1)): (D + 9 * HOUR, D + 9 * HOUR),
    }
    assert firsts == {alice: D + 8 * HOUR, bob: D + 9 * HOUR}
