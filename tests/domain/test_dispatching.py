"""The dispatcher's commands (hub.domain.dispatching), on the commands themselves (no HTTP, no
connector): each decision respects consent, quiet hours and sends in doubt, is recorded before
anything is sent, and a round's decisions and records share a transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import NotFound
from hub.domain.inbound import Recorded
from hub.domain.policy import Done, Hold, Send
from hub.store import Store
from tests.domain.fakes import FakeChannels, FakeReport
from tests.domain.helpers import count_saves
from tests.domain.outbound_support import (
    IN_DOUBT,
    NEVER_QUIET,
    NIGHTS,
    OPEN,
    PHONE,
    decide,
    message,
    queued,
    record_sms,
)
from tests.support.store import T0


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here, not the backend."""
    return "sqlite"


@pytest.fixture
def sms(store: Store) -> Recorded:
    return record_sms(store)


def test_a_reply_and_its_dispatch_read_the_store_once_each(
    store: Store, sms: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command reads its aggregates fresh from the store (another process may have
    written); with the conversation and the queued message cached, the ids they name go in
    the same read: the reply, the dispatcher's decision and its record of the send take one
    read each (two each without the cache: the aggregate, then what it names)."""
    runner = store.app.runner
    reads: list[int] = []
    select = runner._reader.select_events_after

    def counting(versions: Any) -> Any:
        reads.append(len(versions))
        return select(versions)

    monkeypatch.setattr(runner._reader, "select_events_after", counting)
    mid = queued(store, sms)
    assert reads == [3]  # the conversation, the new message's id, the customer
    assert isinstance(decide(store, mid, T0 + timedelta(minutes=1)), Send)
    assert reads == [3, 3]  # the message, its conversation, its customer
    store.app.dispatch.record_dispatched(mid, "SMprovider1", "sent")
    assert reads == [3, 3, 2]  # the message, the provider's id as a reference
    assert message(store, mid).provider_ref == "SMprovider1"


def test_a_queued_reply_is_sent_and_then_settled(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    decision = decide(store, mid, T0 + timedelta(minutes=1))
    assert isinstance(decision, Send)
    assert (decision.channel, decision.address, decision.text) == ("sms", PHONE, "On its way")
    assert decision.attempt == 1
    assert decision.in_reply_to == "SM1"
    assert decision.status_callback_url == f"https://hub.test/status/sms/{mid}"
    store.app.dispatch.record_dispatched(mid, "SMprovider1", "sent")
    assert decide(store, mid, T0 + timedelta(minutes=2)) == Done("settled")
    assert decide(store, sms.message_id, T0) == Done("not_a_reply")


def test_quiet_hours_hold_a_reply_unless_it_is_urgent(store: Store, sms: Recorded) -> None:
    late = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin
    held = queued(store, sms)
    assert decide(store, held, late, NIGHTS) == Hold(datetime(2024, 5, 2, 6, 0, tzinfo=UTC))
    assert message(store, held).delivery_status == "queued"
    urgent = queued(store, sms, urgent=True)
    assert isinstance(decide(store, urgent, late, NIGHTS), Send)


def test_consent_withdrawn_after_queueing_fails_the_reply(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    store.app.outbound.change_consent(sms.customer_id, "sms", False, actor="ann")
    assert decide(store, mid, T0 + timedelta(minutes=1)) == Done("refused")
    found = message(store, mid)
    assert (found.delivery_status, found.error_code) == ("failed", "consent_revoked")


def test_a_send_in_doubt_is_held_then_given_up(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    assert isinstance(decide(store, mid, datetime.now(UTC)), Send)  # and then the hub stopped
    started = message(store, mid).modified_on
    assert decide(store, mid, datetime.now(UTC)) == Hold(started + IN_DOUBT)
    assert decide(store, mid, started + IN_DOUBT) == Done("in_doubt")
    assert message(store, mid).error_code == "outcome_unknown"


def test_a_send_in_doubt_is_repeated_where_the_provider_dedupes(
    store: Store, sms: Recorded
) -> None:
    mid = queued(store, sms)
    deduping = FakeChannels(deduping=frozenset({"sms"}))
    prepare = store.app.dispatch.prepare_dispatch
    assert isinstance(prepare(mid, deduping, NEVER_QUIET, datetime.now(UTC), IN_DOUBT), Send)
    again = prepare(mid, deduping, NEVER_QUIET, datetime.now(UTC), IN_DOUBT)
    assert isinstance(again, Send)
    assert again.attempt == 2


def test_a_rounds_messages_are_decided_and_recorded_together(
    store: Store, sms: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's round: several decisions in one transaction, then what the
    providers accepted in one more."""
    mids = [queued(store, sms) for _ in range(3)]
    saves = count_saves(store, monkeypatch)
    now = T0 + timedelta(minutes=1)
    decisions = store.app.dispatch.prepare_dispatches(
        [*mids, sms.message_id], OPEN, NEVER_QUIET, now, IN_DOUBT
    )
    assert [type(d) for d in decisions] == [Send, Send, Send, Done]
    assert [d.message_id for d in decisions[:3]] == mids  # type: ignore[union-attr]
    recorded = store.app.dispatch.record_dispatches(
        [(m, f"SMp{n}", "sent") for n, m in enumerate(mids)]
    )
    assert recorded == [None, None, None]
    assert [message(store, m).provider_ref for m in mids] == ["SMp0", "SMp1", "SMp2"]
    # Two transactions: the starts of three attempts; three dispatches and their refs.
    assert saves == [3, 6]


def test_one_messages_error_in_a_round_reaches_only_its_own_result(
    store: Store, sms: Recorded
) -> None:
    mid = queued(store, sms)
    decide(store, mid, T0 + timedelta(minutes=1))
    unknown = UUID(int=7)
    recorded = store.app.dispatch.record_dispatches(
        [(unknown, "SMnone", "sent"), (mid, "SMprovider1", "sent")]
    )
    assert recorded[1] is None
    assert isinstance(recorded[0], NotFound)
    assert message(store, mid).provider_ref == "SMprovider1"


def test_two_commands_of_a_round_on_one_message_are_run_one_after_the_other(
    store: Store, sms: Recorded
) -> None:
    """They conflict in one transaction (each read the message as stored): the batch is
    run again command by command, and the second sees what the first recorded."""
    mid = queued(store, sms)
    decide(store, mid, T0 + timedelta(minutes=1))
    recorded = store.app.dispatch.record_dispatches(
        [(mid, "SMfirst", "sent"), (mid, "SMsecond", "sent")]
    )
    assert recorded == [None, None]
    assert message(store, mid).provider_ref == "SMfirst"  # later ids are ignored


def test_provider_reports_settle_replies_and_a_bounce_revokes_consent(
    store: Store, sms: Recorded
) -> None:
    mid = queued(store, sms)
    decide(store, mid, T0 + timedelta(minutes=1))
    at = T0 + timedelta(minutes=2)
    found = store.app.dispatch.apply_provider_reports(
        [
            # the send whose answer a crash lost: the callback names the hub's message
            FakeReport("sms", "SMprovider1", "delivered", at, message_id=mid),
            FakeReport("sms", "SMsomeone-elses", "delivered", at),
            FakeReport("sms", "SMprovider1", "undelivered", at, error_code="30005"),
        ]
    )
    assert found == [mid, None, mid]
    assert message(store, mid).delivery_status == "delivered"  # statuses only move forward
    store.app.dispatch.apply_provider_reports(
        [FakeReport("sms", "SMprovider1", "failed", at, error_code="21610", revoke_consent=True)]
    )
    assert store.app.outbound.consent_of(sms.customer_id)["sms:service"] is False


def test_retries_are_deferred_and_a_final_failure_settles(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    decide(store, mid, T0 + timedelta(minutes=1))
    until = T0 + timedelta(minutes=5)
    store.app.dispatch.retry_dispatch_later(mid, until, "timeout", "the provider timed out")
    assert message(store, mid).in_flight is False
    assert isinstance(decide(store, mid, until), Send)
    store.app.dispatch.fail_dispatch(mid, "21211", "invalid number")
    found = message(store, mid)
    assert (found.delivery_status, found.error_code) == ("failed", "21211")
    assert decide(store, mid, until) == Done("settled")
