"""The service projection (``hub.projections.service``) on a real SQLite views engine, fed
envelopes built by hand and measured with a small fake of its ``ServiceLevels`` port: first
and next responses in wall-clock and business seconds, automated messages not counted,
resolution from the first customer message, reopenings, due times, the breaches due (once,
and not after one is recorded), a tags change moving an open conversation to another policy,
an erasure keeping the figures, and a batch applied twice changing nothing. And, on SQLite and
PostgreSQL with the store's own definitions, policies that select customers by saved segment:
membership evaluated in SQL as of the event that chose the policy."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, event, select

from hub.domain.calendars import ALWAYS, BusinessCalendar
from hub.embedded.follower import LogFollower
from hub.events import Envelope
from hub.events.published import (
    ConversationAssigned,
    ConversationAssignedData,
    ConversationOpened,
    ConversationOpenedData,
    ConversationStatusChanged,
    ConversationStatusChangedData,
    CustomerMerged,
    CustomerMergedData,
    CustomerTagsChanged,
    CustomerTagsChangedData,
    CustomerUnmerged,
    CustomerUnmergedData,
    InteractionData,
    InteractionQueued,
    InteractionQueuedData,
    InteractionReceived,
    InteractionSent,
)
from hub.events.scheduled import AutomationRef
from hub.events.segments import Filter, parse_filter
from hub.events.service import ConversationSlaBreached, SlaBreachedData
from hub.projections import Views, default_projections
from hub.projections.merges import apply_merge, merges
from hub.projections.service import (
    ServiceProjection,
    customer_tags,
    metadata,
    responses,
    service_conversations,
)
from hub.projections.service_queries import due_breaches, next_due, sla_states
from hub.store import Store
from hub.store.database import create_db_engine
from tests.projections.helpers import project
from tests.support.store import inbound

#: A Wednesday morning.
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
OFFICE = BusinessCalendar.of(
    "office",
    {
        "time_zone": "UTC",
        "hours": {
            day: [{"start": "09:00", "end": "17:00"}]
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
        },
    },
)


# -- the port's fake -----------------------------------------------------------------------


@dataclass(frozen=True)
class FakePolicy:
    name: str
    targets: Mapping[str, float]  # seconds of the calendar's time
    tags: frozenset[str] = frozenset()
    calendar: BusinessCalendar = ALWAYS
    segments: frozenset[UUID] = frozenset()


@dataclass
class FakeLevels:
    """The first policy whose tags meet the customer's and whose segments hold it (none:
    any customer) covers a conversation; times count in its calendar (24/7 unless told)."""

    policies: list[FakePolicy] = field(default_factory=list)
    version: int = 1
    segment_filters: Mapping[UUID, Filter] = field(default_factory=dict)
    granted_by_contact: frozenset[str] = frozenset({"service"})

    def _policy(self, name: str | None) -> FakePolicy | None:
        return next((p for p in self.policies if p.name == name), None)

    def policy_for(
        self, channel: str, tags: Collection[str], segments: Collection[UUID] = ()
    ) -> str | None:
        for p in self.policies:
            if (not p.tags or not p.tags.isdisjoint(tags)) and (
                not p.segments or not p.segments.isdisjoint(segments)
            ):
                return p.name
        return None

    def business_seconds(self, policy: str | None, start: datetime, end: datetime) -> float:
        found = self._policy(policy)
        return (found.calendar if found else ALWAYS).business_seconds(start, end)

    def due(self, policy: str | None, target: str, since: datetime) -> datetime | None:
        found = self._policy(policy)
        if found is None or target not in found.targets:
            return None
        return found.calendar.add_business_seconds(since, found.targets[target])


STANDARD = FakePolicy(
    "standard",
    {"first_response": 3600, "next_response": 2 * 3600, "resolution": 8 * 3600},
)


# -- envelopes -----------------------------------------------------------------------------


class History:
    """Envelopes of one customer, numbered in the order they are made."""

    def __init__(self, customer_id: UUID | None = None) -> None:
        self.customer_id = customer_id or uuid4()
        self.position = 0

    def _envelope(self, cls: type[Envelope], at: datetime, data: Any) -> Any:
        self.position += 1
        return cls(
            id=uuid4(),
            occurred_at=at,
            recorded_at=at,
            customer_id=self.customer_id,
            position=self.position,
            data=data,
        )

    def opened(self, conversation_id: UUID, at: datetime, channel: str = "sms") -> Envelope:
        data = ConversationOpenedData(
            conversation_id=conversation_id, channel=channel, address="phone:+15550100001"
        )
        return self._envelope(ConversationOpened, at, data)

    def _message(self, conversation_id: UUID, direction: str, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": uuid4(),
            "conversation_id": conversation_id,
            "channel": "sms",
            "direction": direction,
            "address": "phone:+15550100001",
            "provider_message_id": f"pm-{uuid4()}",
            "text": "hi",
            **extra,
        }

    def customer(self, conversation_id: UUID, at: datetime) -> Envelope:
        data = InteractionData(**self._message(conversation_id, "inbound"))
        return self._envelope(InteractionReceived, at, data)

    def agent(self, conversation_id: UUID, at: datetime, author: str | None = "ann") -> Envelope:
        data = InteractionQueuedData(**self._message(conversation_id, "outbound"), author=author)
        return self._envelope(InteractionQueued, at, data)

    def automated(self, conversation_id: UUID, at: datetime) -> Envelope:
        rule = AutomationRef(occurrence_id=uuid4(), kind="followup", id="nudge")
        data = InteractionQueuedData(**self._message(conversation_id, "outbound"), automation=rule)
        return self._envelope(InteractionQueued, at, data)

    def sent(self, conversation_id: UUID, at: datetime) -> Envelope:
        data = InteractionData(**self._message(conversation_id, "outbound"))
        return self._envelope(InteractionSent, at, data)

    def status(self, conversation_id: UUID, status: str, previous: str, at: datetime) -> Envelope:
        data = ConversationStatusChangedData(
            conversation_id=conversation_id, status=status, previous_status=previous, actor="ann"
        )
        return self._envelope(ConversationStatusChanged, at, data)

    def assigned(self, conversation_id: UUID, assignee: str, at: datetime) -> Envelope:
        data = ConversationAssignedData(
            conversation_id=conversation_id, assignee=assignee, actor="ann"
        )
        return self._envelope(ConversationAssigned, at, data)

    def tags(self, tags: Sequence[str], at: datetime) -> Envelope:
        data = CustomerTagsChangedData(
            tags=sorted(tags), added=sorted(tags), removed=[], actor=None
        )
        return self._envelope(CustomerTagsChanged, at, data)

    def merged(self, into: UUID, at: datetime) -> Envelope:
        data = CustomerMergedData(into_customer_id=into, actor="ann", reason="agent")
        return self._envelope(CustomerMerged, at, data)

    def unmerged(self, merged_into: UUID, at: datetime) -> Envelope:
        data = CustomerUnmergedData(from_customer_id=merged_into, actor="ann", reason="mistake")
        return self._envelope(CustomerUnmerged, at, data)

    def breached(
        self, conversation_id: UUID, target: str, clock: datetime, due: datetime
    ) -> Envelope:
        data = SlaBreachedData(
            conversation_id=conversation_id,
            policy="standard",
            target=target,
            clock_started_at=clock,
            due_at=due,
            channel="sms",
        )
        return self._envelope(ConversationSlaBreached, due, data)


# -- fixtures and reads --------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'views.db'}")
    metadata.create_all(engine)
    merges.metadata.create_all(engine)  # the directory's groups, which the projection reads
    yield engine
    engine.dispose()


def apply(engine: Engine, levels: Any, events: Sequence[Envelope]) -> None:
    projection = ServiceProjection(lambda: levels)
    with engine.begin() as conn:
        projection.apply(conn, list(events))


def conversation(engine: Engine, conversation_id: UUID) -> dict[str, Any]:
    c = service_conversations.c
    with engine.connect() as conn:
        row = conn.execute(
            select(service_conversations).where(c.conversation_id == conversation_id)
        ).mappings()
        [found] = list(row)
    return {k: _aware(v) for k, v in found.items()}


def response_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(responses).order_by(responses.c.responded_at)).mappings()
        return [{k: _aware(v) for k, v in r.items()} for r in rows]


def every_row(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
            for t in (service_conversations, responses, customer_tags)
        }


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- responses -----------------------------------------------------------------------------


def test_first_and_next_responses_are_measured_from_the_waiting_customer_message(
    engine: Engine,
) -> None:
    h, cid = History(), uuid4()
    apply(
        engine,
        FakeLevels([STANDARD]),
        [
            h.opened(cid, T0),
            h.customer(cid, T0),
            h.customer(cid, T0 + 5 * MINUTE),  # the clock runs already
            h.agent(cid, T0 + 20 * MINUTE, author="ann"),
            h.customer(cid, T0 + HOUR),
            h.sent(cid, T0 + HOUR + 30 * MINUTE),
        ],
    )

    row = conversation(engine, cid)
    assert row["policy"] == "standard"
    assert row["first_inbound_at"] == T0
    assert row["first_response_at"] == T0 + 20 * MINUTE
    assert (row["first_response_seconds"], row["first_response_business"]) == (1200.0, 1200.0)
    assert row["replies"] == 2
    assert (row["waiting_since"], row["response_due_at"]) == (None, None)
    found = [
        (r["kind"], r["agent"], r["waiting_since"], r["seconds"], r["due_at"], r["breached"])
        for r in response_rows(engine)
    ]
    assert found == [
        ("first_response", "ann", T0, 1200.0, T0 + HOUR, False),
        ("next_response", None, T0 + HOUR, 1800.0, T0 + 3 * HOUR, False),
    ]


def test_business_seconds_count_only_opening_hours(engine: Engine) -> None:
    office = FakePolicy("office", {"first_response": 3600}, calendar=OFFICE)
    friday = datetime(2024, 5, 3, 16, 30, tzinfo=UTC)
    monday = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    h, cid = History(), uuid4()
    apply(
        engine,
        FakeLevels([office]),
        [h.opened(cid, friday), h.customer(cid, friday), h.agent(cid, monday)],
    )

    row = conversation(engine, cid)
    assert row["first_response_seconds"] == (monday - friday).total_seconds()
    assert row["first_response_business"] == 90 * 60  # 16:30-17:00 and 09:00-10:00
    [response] = response_rows(engine)
    assert response["due_at"] == datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
    assert response["breached"] is True


def test_automated_messages_are_not_responses(engine: Engine) -> None:
    h, cid = History(), uuid4()
    apply(
        engine,
        FakeLevels([STANDARD]),
        [h.opened(cid, T0), h.customer(cid, T0), h.automated(cid, T0 + 10 * MINUTE)],
    )
    row = conversation(engine, cid)
    assert (row["replies"], row["first_response_at"]) == (0, None)
    assert (row["waiting_since"], row["response_due_at"]) == (T0, T0 + HOUR)
    assert response_rows(engine) == []

    apply(engine, FakeLevels([STANDARD]), [h.agent(cid, T0 + 45 * MINUTE)])
    row = conversation(engine, cid)
    assert (row["replies"], row["first_response_seconds"]) == (1, 45 * 60.0)


# -- resolution ----------------------------------------------------------------------------


def test_resolution_counts_from_the_first_customer_message_to_the_latest_resolution(
    engine: Engine,
) -> None:
    h, cid = History(), uuid4()
    levels = FakeLevels([STANDARD])
    apply(
        engine,
        levels,
        [
            h.opened(cid, T0),
            h.sent(cid, T0),  # the agent wrote first: no clock was running
            h.customer(cid, T0 + 10 * MINUTE),
            h.agent(cid, T0 + 20 * MINUTE),
            h.status(cid, "resolved", "open", T0 + HOUR),
        ],
    )
    row = conversation(engine, cid)
    assert (row["status"], row["resolved_at"], row["reopened"]) == ("resolved", T0 + HOUR, 0)
    assert row["resolution_seconds"] == 50 * 60
    assert row["resolution_business"] == 50 * 60
    assert row["resolution_due_at"] == T0 + 10 * MINUTE + 8 * HOUR
    assert row["resolution_breached"] is False
    assert row["first_response_seconds"] == 10 * 60

    apply(
        engine,
        levels,
        [
            h.customer(cid, T0 + 2 * HOUR),
            h.status(cid, "open", "resolved", T0 + 2 * HOUR),
            h.status(cid, "pending", "open", T0 + 2 * HOUR + MINUTE),  # not a reopening
            h.status(cid, "resolved", "pending", T0 + 9 * HOUR),
            h.status(cid, "open", "resolved", T0 + 10 * HOUR),
            h.status(cid, "resolved", "open", T0 + 11 * HOUR),
        ],
    )
    row = conversation(engine, cid)
    assert (row["status"], row["reopened"], row["resolved_at"]) == ("resolved", 2, T0 + 11 * HOUR)
    assert row["resolution_seconds"] == (11 * HOUR - 10 * MINUTE).total_seconds()
    assert row["resolution_breached"] is True


# -- due times and breaches ----------------------------------------------------------------


def test_due_times_follow_what_is_running(engine: Engine) -> None:
    h, cid = History(), uuid4()
    levels = FakeLevels([STANDARD])
    apply(engine, levels, [h.opened(cid, T0), h.customer(cid, T0)])
    row = conversation(engine, cid)
    assert (row["response_due_at"], row["resolution_due_at"]) == (T0 + HOUR, T0 + 8 * HOUR)
    with engine.connect() as conn:
        state = sla_states(conn, [cid])[cid]
        assert (state.policy, state.waiting_since, state.next_due_at) == (
            "standard",
            T0,
            T0 + HOUR,
        )
        assert next_due(conn) == T0 + HOUR

    apply(engine, levels, [h.agent(cid, T0 + 30 * MINUTE), h.customer(cid, T0 + 3 * HOUR)])
    row = conversation(engine, cid)
    assert (row["waiting_since"], row["response_due_at"]) == (T0 + 3 * HOUR, T0 + 5 * HOUR)
    with engine.connect() as conn:
        assert next_due(conn) == T0 + 5 * HOUR

    apply(engine, levels, [h.status(cid, "resolved", "open", T0 + 4 * HOUR)])
    with engine.connect() as conn:
        state = sla_states(conn, [cid])[cid]
        assert (state.response_due_at, state.resolution_due_at, state.next_due_at) == (
            None,
            None,
            None,
        )
        assert next_due(conn) is None


def test_no_policy_means_nothing_is_due(engine: Engine) -> None:
    h, cid = History(), uuid4()
    apply(engine, FakeLevels([]), [h.opened(cid, T0), h.customer(cid, T0)])
    row = conversation(engine, cid)
    assert (row["policy"], row["response_due_at"], row["resolution_due_at"]) == (None, None, None)
    with engine.connect() as conn:
        assert due_breaches(conn, T0 + 400 * HOUR) == []
        assert next_due(conn) is None


def _due(engine: Engine, now: datetime) -> set[tuple[str, datetime, datetime]]:
    with engine.connect() as conn:
        return {(d.target, d.clock_started_at, d.due_at) for d in due_breaches(conn, now)}


def test_a_passed_target_is_due_until_its_breach_is_recorded(engine: Engine) -> None:
    h, cid = History(), uuid4()
    levels = FakeLevels([STANDARD])
    apply(engine, levels, [h.opened(cid, T0), h.customer(cid, T0)])

    assert _due(engine, T0 + HOUR - MINUTE) == set()
    with engine.connect() as conn:
        [due] = due_breaches(conn, T0 + 2 * HOUR)
    assert (due.conversation_id, due.customer_id, due.channel, due.policy) == (
        cid,
        h.customer_id,
        "sms",
        "standard",
    )
    assert (due.target, due.clock_started_at, due.due_at) == ("first_response", T0, T0 + HOUR)
    assert _due(engine, T0 + 2 * HOUR) == {("first_response", T0, T0 + HOUR)}  # a read

    apply(engine, levels, [h.breached(cid, "first_response", T0, T0 + HOUR)])
    assert _due(engine, T0 + 2 * HOUR) == set()

    # Answered late; a new message starts a new clock, which falls due in its turn.
    apply(engine, levels, [h.agent(cid, T0 + 2 * HOUR), h.customer(cid, T0 + 3 * HOUR)])
    assert _due(engine, T0 + 5 * HOUR - MINUTE) == set()
    assert _due(engine, T0 + 9 * HOUR) == {
        ("next_response", T0 + 3 * HOUR, T0 + 5 * HOUR),
        ("resolution", T0, T0 + 8 * HOUR),
    }
    apply(
        engine,
        levels,
        [
            h.breached(cid, "next_response", T0 + 3 * HOUR, T0 + 5 * HOUR),
            h.breached(cid, "resolution", T0, T0 + 8 * HOUR),
        ],
    )
    assert _due(engine, T0 + 9 * HOUR) == set()
    with engine.connect() as conn:
        assert next_due(conn) == T0 + 5 * HOUR  # the response clock's, still running


# -- policies and tags ---------------------------------------------------------------------


def test_a_merged_customers_conversations_fall_under_the_groups_tags(engine: Engine) -> None:
    """An agent tags the customer a merged group is shown as: the conversations of every
    member fall under the policy of those tags, and go back when the merge is undone."""
    vip = FakePolicy("vip", {"first_response": 15 * 60}, tags=frozenset({"vip"}))
    levels = FakeLevels([vip, STANDARD])
    root, member = History(), History()
    member.position = 100  # one log: positions never repeat
    waiting = uuid4()
    apply(engine, levels, [root.tags(["vip"], T0)])
    apply(engine, levels, [member.opened(waiting, T0), member.customer(waiting, T0)])
    assert conversation(engine, waiting)["policy"] == "standard"

    merge = member.merged(root.customer_id, T0 + MINUTE)
    with engine.begin() as conn:
        apply_merge(conn, merge)  # the directory, which comes first in a batch
    apply(engine, levels, [merge])
    assert conversation(engine, waiting)["policy"] == "vip"
    assert conversation(engine, waiting)["response_due_at"] == T0 + 15 * MINUTE

    undo = member.unmerged(root.customer_id, T0 + 2 * MINUTE)
    with engine.begin() as conn:
        apply_merge(conn, undo)
    apply(engine, levels, [undo])
    assert conversation(engine, waiting)["policy"] == "standard"


def test_a_tags_change_moves_open_conversations_to_another_policy(engine: Engine) -> None:
    vip = FakePolicy("vip", {"first_response": 15 * 60}, tags=frozenset({"vip"}))
    levels = FakeLevels([vip, STANDARD])
    h, done, waiting = History(), uuid4(), uuid4()
    apply(
        engine,
        levels,
        [
            h.opened(done, T0),
            h.customer(done, T0),
            h.status(done, "resolved", "open", T0 + MINUTE),
            h.opened(waiting, T0 + 2 * MINUTE, channel="sms"),
            h.customer(waiting, T0 + 2 * MINUTE),
        ],
    )
    assert conversation(engine, waiting)["response_due_at"] == T0 + 2 * MINUTE + HOUR

    apply(engine, levels, [h.tags(["vip"], T0 + 5 * MINUTE)])
    moved = conversation(engine, waiting)
    assert moved["policy"] == "vip"
    assert moved["response_due_at"] == T0 + 17 * MINUTE
    assert moved["resolution_due_at"] is None  # vip sets no resolution target
    assert conversation(engine, done)["policy"] == "standard"  # resolved: measured as it was

    # a conversation opened after the change falls under the new policy at once
    later = uuid4()
    apply(engine, levels, [h.opened(later, T0 + HOUR), h.customer(later, T0 + HOUR)])
    assert conversation(engine, later)["policy"] == "vip"

    apply(engine, levels, [h.tags([], T0 + 2 * HOUR)])
    back = conversation(engine, waiting)
    assert (back["policy"], back["response_due_at"]) == ("standard", T0 + 2 * MINUTE + HOUR)


# -- erasure and replays -------------------------------------------------------------------


def test_an_erasure_keeps_the_figures_and_forgets_whose_they_were(engine: Engine) -> None:
    h, cid = History(), uuid4()
    other = History()
    kept = uuid4()
    apply(
        engine,
        FakeLevels([STANDARD]),
        [
            h.tags(["vip"], T0),
            h.opened(cid, T0),
            h.customer(cid, T0),
            h.agent(cid, T0 + 20 * MINUTE),
            h.customer(cid, T0 + HOUR),
            other.opened(kept, T0),
            other.customer(kept, T0),
        ],
    )
    before = conversation(engine, cid)
    projection = ServiceProjection(lambda: FakeLevels([STANDARD]))
    with engine.begin() as conn:
        projection.purge(conn, [h.customer_id])

    after = conversation(engine, cid)
    assert after == before | {"customer_id": None}
    assert [r["customer_id"] for r in response_rows(engine)] == [None]
    with engine.connect() as conn:
        assert list(conn.execute(select(customer_tags))) == []
        # nobody to record a breach against: only the other customer's
        assert {d.conversation_id for d in due_breaches(conn, T0 + 9 * HOUR)} == {kept}
    assert conversation(engine, kept)["customer_id"] == other.customer_id


def _story(h: History, cid: UUID) -> list[Envelope]:
    return [
        h.tags(["vip"], T0 - HOUR),
        h.opened(cid, T0),
        h.customer(cid, T0),
        h.automated(cid, T0 + MINUTE),
        h.agent(cid, T0 + 20 * MINUTE),
        h.customer(cid, T0 + HOUR),
        h.sent(cid, T0 + 4 * HOUR),
        h.status(cid, "resolved", "open", T0 + 5 * HOUR),
        h.customer(cid, T0 + 6 * HOUR),
        h.status(cid, "open", "resolved", T0 + 6 * HOUR),
        h.status(cid, "resolved", "open", T0 + 7 * HOUR),
    ]


def test_the_same_batch_applied_twice_changes_nothing(engine: Engine) -> None:
    h, cid = History(), uuid4()
    events = _story(h, cid)
    levels = FakeLevels([STANDARD])
    apply(engine, levels, events)
    once = every_row(engine)
    row = conversation(engine, cid)
    assert (row["replies"], row["reopened"]) == (2, 1)

    apply(engine, levels, events)
    assert every_row(engine) == once


@pytest.mark.parametrize("inside", ["assigned", "breached"])
def test_a_replay_with_an_assignment_or_a_breach_inside_changes_nothing(
    engine: Engine, inside: str
) -> None:
    h, cid = History(), uuid4()
    events = [
        h.opened(cid, T0),
        h.customer(cid, T0),
        h.assigned(cid, "bob", T0 + MINUTE)
        if inside == "assigned"
        else h.breached(cid, "first_response", T0, T0 + HOUR),
        h.agent(cid, T0 + 2 * HOUR, author="bob"),
        h.status(cid, "resolved", "open", T0 + 3 * HOUR),
        h.status(cid, "open", "resolved", T0 + 4 * HOUR),
    ]
    levels = FakeLevels([STANDARD])
    apply(engine, levels, events)
    once = every_row(engine)
    row = conversation(engine, cid)
    assert (row["replies"], row["reopened"]) == (1, 1)

    apply(engine, levels, events)
    row = conversation(engine, cid)
    assert (row["replies"], row["reopened"]) == (1, 1)
    assert every_row(engine) == once


def test_one_event_at_a_time_equals_one_batch(engine: Engine, tmp_path: Path) -> None:
    h, cid = History(), uuid4()
    events = _story(h, cid)
    levels = FakeLevels([STANDARD])
    apply(engine, levels, events)
    other = create_db_engine(f"sqlite:///{tmp_path / 'one-by-one.db'}")
    try:
        metadata.create_all(other)
        merges.metadata.create_all(other)
        for event in events:
            apply(other, levels, [event])
        assert every_row(other) == every_row(engine)
    finally:
        other.dispose()


# -- rows kept between the batches of one follower ------------------------------------------


def _batch(
    engine: Engine, projection: ServiceProjection, events: Sequence[Envelope], fail: bool = False
) -> None:
    """One batch as ``Views.apply`` gives it: announced at the position the tables stand at,
    ended with the position committed, or with None when the transaction rolls back."""
    done = _position(engine)
    projection.batch_begins(done)
    try:
        with engine.begin() as conn:
            projection.apply(conn, list(events))
            conn.execute(positions.delete())
            conn.execute(positions.insert(), {"position": events[-1].position})
            if fail:
                raise RuntimeError("a later projection of the batch failed")
    except RuntimeError:
        projection.batch_ends(None)
        return
    projection.batch_ends(events[-1].position)


positions = Table("test_positions", MetaData(), Column("position", Integer))


def _position(engine: Engine) -> int:
    positions.create(engine, checkfirst=True)
    with engine.connect() as conn:
        return conn.scalar(select(positions.c.position)) or 0


def _selects_of_conversations(engine: Engine) -> list[str]:
    """Records the statements that read service_conversations (the list grows)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "service_conversations" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_followers_next_batch_starts_from_the_rows_the_last_one_wrote(
    engine: Engine, tmp_path: Path
) -> None:
    h, cid = History(), uuid4()
    events = _story(h, cid)
    levels = FakeLevels([STANDARD])
    apply(engine, levels, events)  # one batch, one fresh projection: the reference

    other = create_db_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    try:
        metadata.create_all(other)
        merges.metadata.create_all(other)
        projection = ServiceProjection(lambda: levels)
        _batch(other, projection, events[:3])
        reads = _selects_of_conversations(other)
        for start in range(3, len(events), 2):
            _batch(other, projection, events[start : start + 2])
        assert reads == []  # the conversation's row came from the batch before, every time
        assert every_row(other) == every_row(engine)
    finally:
        other.dispose()


def test_a_batch_rolled_back_leaves_nothing_kept(engine: Engine) -> None:
    h, cid = History(), uuid4()
    levels = FakeLevels([STANDARD])
    projection = ServiceProjection(lambda: levels)
    _batch(engine, projection, [h.opened(cid, T0), h.customer(cid, T0)])
    reply = [h.agent(cid, T0 + 20 * MINUTE, author="ann")]

    _batch(engine, projection, reply, fail=True)
    assert conversation(engine, cid)["replies"] == 0
    _batch(engine, projection, reply)  # the same batch again, as a follower retries it

    row = conversation(engine, cid)
    assert (row["replies"], row["first_response_seconds"]) == (1, 1200.0)
    assert len(response_rows(engine)) == 1


def test_rows_kept_are_not_trusted_after_another_follower_wrote(engine: Engine) -> None:
    h, cid = History(), uuid4()
    levels = FakeLevels([STANDARD])
    mine, theirs = ServiceProjection(lambda: levels), ServiceProjection(lambda: levels)
    _batch(engine, mine, [h.opened(cid, T0), h.customer(cid, T0)])
    _batch(engine, theirs, [h.agent(cid, T0 + 20 * MINUTE, author="ann")])
    reads = _selects_of_conversations(engine)

    _batch(engine, mine, [h.status(cid, "resolved", "open", T0 + HOUR)])

    assert len(reads) == 1  # read back: the tables moved on since this follower's last batch
    row = conversation(engine, cid)
    assert (row["replies"], row["first_response_seconds"]) == (1, 1200.0)
    assert (row["status"], row["resolution_seconds"]) == ("resolved", 3600.0)


# -- segments (both backends, the store's definitions) -------------------------------------


def _service_views(store: Store) -> Views:
    views = Views(
        store.views_engine,
        default_projections(service_levels=store.app.service_levels.definitions),
    )
    views.create()
    return views


def _policies(views: Views) -> dict[UUID, str | None]:
    c = service_conversations.c
    with views.engine.connect() as conn:
        return dict(conn.execute(select(c.conversation_id, c.policy)).all())  # type: ignore[arg-type]


def test_a_customer_in_a_policys_segment_falls_under_it_as_of_the_opening(store: Store) -> None:
    """ "New customers" (first contact within 30 days) is evaluated at each conversation's
    opening, not at the wall clock's now: the newcomer's conversation of 2024 is in it, the
    returning customer's opened the same day is not, and a rebuild years later agrees."""
    app = store.app
    new = app.segments.define(
        "New customers", parse_filter({"first_contact": {"within_days": 30}}), actor=None
    )
    app.service_levels.save_policy(
        "newcomers",
        {"first_response_minutes": 15, "segments": [str(new.segment_id)], "priority": 1},
        actor=None,
    )
    app.service_levels.save_policy("standard", {"first_response_minutes": 60}, actor=None)
    views = _service_views(store)
    old_number, new_number = "phone:+37060000001", "phone:+37060000002"
    [first] = app.record_interactions(
        [inbound("old-1", address=old_number, occurred_at=T0 - 100 * 24 * HOUR)]
    )
    app.change_status(first.conversation_id, "resolved", "agent")
    returning, newcomer = app.record_interactions(
        [
            inbound("old-2", address=old_number, occurred_at=T0),
            inbound("new-1", address=new_number, occurred_at=T0),
        ]
    )
    project(store, views)

    found = _policies(views)
    assert found[first.conversation_id] == "newcomers"  # new then
    assert found[returning.conversation_id] == "standard"
    assert found[newcomer.conversation_id] == "newcomers"
    c = service_conversations.c
    with views.engine.connect() as conn:
        due = conn.scalar(
            select(c.response_due_at).where(c.conversation_id == newcomer.conversation_id)
        )
    assert _aware(due) == T0 + 15 * MINUTE

    views.reset("service")  # a rebuild, later: the same moments again, one event a batch
    assert LogFollower(store, views, batch_size=1, only=["service"]).catch_up() > 0
    assert _policies(views) == found


def test_a_tags_change_puts_a_customer_in_a_segment_and_its_policy(store: Store) -> None:
    """A segment of a tag: the open conversation moves when an agent tags the customer (as
    of the tags change), and one of a customer never tagged keeps the default."""
    app = store.app
    key = app.segments.define("Key accounts", parse_filter({"tag": "key"}), actor=None)
    app.service_levels.save_policy(
        "key", {"first_response_minutes": 10, "segments": [str(key.segment_id)]}, actor=None
    )
    app.service_levels.save_policy(
        "standard", {"first_response_minutes": 60, "priority": 500}, actor=None
    )
    views = _service_views(store)
    tagged, untagged = app.record_interactions(
        [
            inbound("a-1", address="phone:+37060000011", occurred_at=T0),
            inbound("b-1", address="phone:+37060000012", occurred_at=T0),
        ]
    )
    project(store, views)
    assert _policies(views)[tagged.conversation_id] == "standard"

    app.set_tags(tagged.customer_id, ["key"], "agent")
    project(store, views)
    found = _policies(views)
    assert (found[tagged.conversation_id], found[untagged.conversation_id]) == ("key", "standard")
