"""Two processes firing the same scheduled messages at once, on SQLite and PostgreSQL: each
occurrence is queued once, as one message, and the frequency cap holds across them
(hub.domain.scheduling; the store's version checks decide)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from hub.config import Settings
from hub.domain.automation import OccurrenceSpec, Plan, Source
from hub.domain.scheduling import Limits
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import types
from tests.domain.test_concurrency import _concurrently
from tests.support.store import T0, inbound, opened

ROUNDS = 6


def _spec(customer_id: object, key: str, purpose: str = "service") -> OccurrenceSpec:
    return OccurrenceSpec(
        key=key,
        customer_id=customer_id,  # type: ignore[arg-type]
        due_at=T0,
        plan=Plan(channels=("sms",), text="Reminder", purpose=purpose),
        source=Source("rule", "r1", "visit reminder"),
    )


def test_two_schedulers_firing_at_once_queue_each_occurrence_once(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        [sms] = one.app.record_interactions([inbound("SM1")])
        specs = [_spec(sms.customer_id, f"rule:r1:{n}") for n in range(ROUNDS)]
        ids = [oid for oid, _ in one.app.schedules.schedule(specs, None)]
        for oid in ids:
            fires = [
                partial(s.app.schedules.fire, oid, now=T0, policy=FakeChannels())
                for s in (one, two)
            ]
            outcomes = _concurrently(*fires)
            assert sorted(o.decision for o in outcomes) == ["none", "send"]
        counted = types(one)
        assert counted["scheduled_message.queued.v1"] == ROUNDS
        assert counted["interaction.queued.v1"] == ROUNDS


def test_the_frequency_cap_holds_when_two_schedulers_fire_for_one_customer(
    settings: Settings,
) -> None:
    cap = Limits(frequency_cap=1, frequency_period=timedelta(days=7))
    with opened(settings) as one, opened(settings) as two:
        [sms] = one.app.record_interactions([inbound("SM1")])
        one.app.outbound.change_consent(sms.customer_id, "sms", True, purposes=("marketing",))
        specs = [_spec(sms.customer_id, f"campaign:c{n}", "marketing") for n in range(2)]
        ids = [oid for oid, _ in one.app.schedules.schedule(specs, None)]
        fires = [
            partial(s.app.schedules.fire, oid, now=T0, policy=FakeChannels(), limits=cap)
            for s, oid in zip((one, two), ids, strict=True)
        ]
        outcomes = _concurrently(*fires)
        assert sorted((o.decision, o.code) for o in outcomes) == [
            ("send", None),
            ("skip", "frequency_cap"),
        ]
