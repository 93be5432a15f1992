"""The outbound commands of hub.domain.outbound, on the commands themselves (no HTTP, no
connector): a reply is refused at once when it may not go out, recorded once per idempotency
key, and the dispatcher's decision respects consent, quiet hours and sends in doubt."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import CustomerErased, InvalidCommand, NotFound, SendRefused
from hub.domain.inbound import Recorded
from hub.domain.model import Message
from hub.domain.policy import Done, Hold, QuietHours, Send
from hub.store import Store
from tests.domain.fakes import FakeChannels, FakeReport
from tests.domain.helpers import count_saves, types
from tests.support.store import T0, inbound

PHONE = "phone:+4915112345678"  # Europe/Berlin
OPEN = FakeChannels()
NEVER_QUIET = QuietHours(None, time(8), None, timedelta(minutes=30))
NIGHTS = QuietHours(time(21), time(8), None, timedelta(minutes=30))
IN_DOUBT = timedelta(minutes=10)


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here, not the backend."""
    return "sqlite"


@pytest.fixture
def sms(store: Store) -> Recorded:
    """An SMS from the customer at T0 (09:00 UTC, 11:00 in Berlin)."""
    [recorded] = store.app.record_interactions([inbound("SM1", address=PHONE)])
    return recorded


def message(store: Store, mid: UUID) -> Message:
    return store.app.read(lambda uow: uow.require(Message, mid, "message"))


# -- replies ---------------------------------------------------------------------------------


def test_a_reply_is_queued_once_per_idempotency_key(store: Store, sms: Recorded) -> None:
    reply = store.app.outbound.reply
    first = reply(sms.conversation_id, "On its way", author="ann", policy=OPEN, idempotency_key="k")
    again = reply(sms.conversation_id, "On its way", author="ann", policy=OPEN, idempotency_key="k")
    assert first.duplicate is False
    assert again == Recorded(first.message_id, sms.customer_id, sms.conversation_id, True)
    assert message(store, first.message_id).delivery_status == "queued"
    assert types(store)["interaction.queued.v1"] == 1


def test_a_reply_goes_only_where_the_address_can_be_reached(store: Store, sms: Recorded) -> None:
    reply = store.app.outbound.reply
    assert not reply(
        sms.conversation_id, "hi", author="ann", policy=OPEN, channel="whatsapp"
    ).duplicate
    with pytest.raises(InvalidCommand):
        reply(sms.conversation_id, "hi", author="ann", policy=OPEN, channel="email")


def test_a_reply_that_may_not_go_out_is_refused_and_not_recorded(
    store: Store, sms: Recorded
) -> None:
    reply = store.app.outbound.reply
    before = types(store)
    off = FakeChannels(off={"sms": "no SMS connector is configured"})
    with pytest.raises(SendRefused) as refused:
        reply(sms.conversation_id, "hi", author="ann", policy=off)
    assert refused.value.code == "channel_unavailable"

    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    late = T0 + timedelta(hours=25)
    with pytest.raises(SendRefused) as refused:
        reply(sms.conversation_id, "hi", author="ann", policy=window, channel="whatsapp", now=late)
    assert refused.value.code == "outside_service_window"
    assert types(store) == before
    template = {"name": "order_update", "language": "en", "parameters": []}
    assert not reply(
        sms.conversation_id,
        "hi",
        author="ann",
        policy=window,
        channel="whatsapp",
        template=template,
        now=late,
    ).duplicate


def test_withdrawn_consent_refuses_replies_on_that_channel(store: Store, sms: Recorded) -> None:
    outbound = store.app.outbound
    outbound.change_consent(sms.customer_id, "sms", False, actor="ann")
    assert outbound.consent_of(sms.customer_id) == {"sms:service": False, "sms:marketing": False}
    with pytest.raises(SendRefused) as refused:
        outbound.reply(sms.conversation_id, "hi", author="ann", policy=OPEN)
    assert refused.value.code == "consent_revoked"
    assert not outbound.reply(
        sms.conversation_id, "hi", author="ann", policy=OPEN, channel="whatsapp"
    ).duplicate


def test_no_reply_to_an_erased_customer(store: Store, sms: Recorded) -> None:
    store.cipher._keys.destroy(sms.customer_id)
    store.cipher.forget(sms.customer_id)
    with pytest.raises(CustomerErased):
        store.app.outbound.reply(sms.conversation_id, "hi", author="ann", policy=OPEN)


def test_reply_options_list_the_channels_of_the_address_with_their_refusals(
    store: Store, sms: Recorded
) -> None:
    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    late = datetime(2024, 5, 2, 21, 30, tzinfo=UTC)  # 23:30 in Berlin, 36 hours after
    options = store.app.outbound.reply_options(
        sms.conversation_id,
        policy=window,
        quiet=NIGHTS,
        known_channels=("email", "whatsapp", "sms", "voice"),
        now=late,
    )
    assert [(o.channel, o.refusal) for o in options] == [
        ("sms", None),
        ("whatsapp", "outside_service_window"),
        ("voice", None),
    ]
    assert {o.held_until for o in options} == {datetime(2024, 5, 3, 6, 0, tzinfo=UTC)}


# -- the dispatcher's decisions --------------------------------------------------------------


def queued(store: Store, sms: Recorded, **options: Any) -> UUID:
    reply = store.app.outbound.reply(
        sms.conversation_id, "On its way", author="ann", policy=OPEN, **options
    )
    return reply.message_id


def decide(store: Store, mid: UUID, now: datetime, quiet: QuietHours = NEVER_QUIET) -> object:
    return store.app.dispatch.prepare_dispatch(mid, OPEN, quiet, now, IN_DOUBT)


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
