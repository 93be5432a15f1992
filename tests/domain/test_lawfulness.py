"""Was a message lawful when it was sent? (hub.domain.lawfulness) on the commands themselves:
the dispatcher records the basis of each decision (purpose, consent and the ledger entry that
decided it, quiet hours in the customer's zone, the service window) in the message's events,
and the answer read back from them does not move when consent changes later."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import InvalidCommand, SendRefused
from hub.domain.ids import uuid7
from hub.domain.inbound import Recorded
from hub.domain.lawfulness import Lawfulness, lawfulness_in, lawfulness_of
from hub.domain.model import Message
from hub.domain.policy import Done, Hold, QuietHours, Send
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import envelopes
from tests.support.store import T0, inbound

PHONE = "phone:+4915112345678"  # Europe/Berlin
OPEN = FakeChannels()
NIGHTS = QuietHours(time(21), time(8), None, timedelta(minutes=30))
IN_DOUBT = timedelta(minutes=10)
MORNING = T0 + timedelta(hours=1)  # 10:00 UTC, 12:00 in Berlin: not quiet, not awake
NIGHT = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def sms(store: Store) -> Recorded:
    """An SMS from the customer at T0 (09:00 UTC, 11:00 in Berlin)."""
    [recorded] = store.app.record_interactions([inbound("SM1", address=PHONE)])
    return recorded


def queued(store: Store, sms: Recorded, policy: Any = OPEN, **options: Any) -> UUID:
    reply = store.app.outbound.reply(
        sms.conversation_id, "On its way", author="ann", policy=policy, **options
    )
    return reply.message_id


def decide(
    store: Store, mid: UUID, now: datetime, quiet: QuietHours = NIGHTS, policy: Any = OPEN
) -> object:
    return store.app.dispatch.prepare_dispatch(mid, policy, quiet, now, IN_DOUBT)


def answer(store: Store, mid: UUID) -> Lawfulness:
    found = lawfulness_in(store.app.events, mid)
    assert found is not None
    return found


def test_a_sent_reply_names_purpose_consent_quiet_hours_and_window(
    store: Store, sms: Recorded
) -> None:
    mid = queued(store, sms)
    assert answer(store, mid).outcome == "queued"
    assert isinstance(decide(store, mid, MORNING), Send)
    assert answer(store, mid).outcome == "sending"
    store.app.dispatch.record_dispatched(mid, "SMprovider1", "sent")

    found = answer(store, mid)
    assert (found.outcome, found.sent_by_hub, found.purpose) == ("sent", True, "service")
    assert (found.requested_by, found.urgent, found.template) == ("ann", False, False)
    assert found.basis_recorded
    decided = found.decided
    assert decided is not None
    assert (decided.decision, decided.attempt, decided.at) == ("send", 1, MORNING)
    assert decided.consent is not None
    assert (decided.consent.granted, decided.consent.rule) == (True, "first_contact")
    assert decided.consent.entry is None
    quiet = decided.quiet_hours
    assert quiet is not None
    assert (quiet.zone, quiet.effect, quiet.quiet, quiet.held_until) == (
        "Europe/Berlin",
        "outside",
        False,
        None,
    )
    assert quiet.local_time is not None
    assert quiet.local_time.isoformat() == "2024-05-01T12:00:00+02:00"
    assert decided.service_window is not None
    assert decided.service_window.hours is None  # SMS has none
    assert decided.service_window.last_inbound_at == T0
    assert "Outside quiet hours (12:00 in Europe/Berlin)" in found.summary


def test_the_answer_names_the_ledger_entry_and_survives_later_changes(
    store: Store, sms: Recorded
) -> None:
    outbound = store.app.outbound
    outbound.change_consent(sms.customer_id, "sms", False, purposes=["service"], actor="ann")
    outbound.change_consent(sms.customer_id, "sms", True, purposes=["service"], actor="bob")
    mid = queued(store, sms)
    assert isinstance(decide(store, mid, MORNING), Send)
    store.app.dispatch.record_dispatched(mid, "SMprovider2", "sent")
    before = answer(store, mid)

    consent = before.decided.consent if before.decided else None
    assert consent is not None
    assert (consent.granted, consent.rule) == (True, "ledger")
    entry = consent.entry
    assert entry is not None
    assert (entry.customer_id, entry.granted, entry.purposes) == (
        sms.customer_id,
        True,
        ("service",),
    )
    assert entry.source == "agent"
    # The entry is the grant, by its published event's id.
    grants = [
        e
        for e in envelopes(store)
        if e.type == "customer.consent_changed.v1" and e.data.granted  # type: ignore[attr-defined]
    ]
    assert [e.id for e in grants] == [entry.event_id]

    # Today's consent says no; the answer about the past send does not move.
    outbound.change_consent(sms.customer_id, "sms", False, purposes=["service"], actor="cy")
    assert answer(store, mid) == before


def test_a_send_refused_at_dispatch_says_why_and_what_decided(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    store.app.outbound.change_consent(sms.customer_id, "sms", False, actor="ann")
    assert decide(store, mid, MORNING) == Done("refused")

    found = answer(store, mid)
    assert (found.outcome, found.status, found.refusal_code) == (
        "refused",
        "failed",
        "consent_revoked",
    )
    assert found.refusal_reason == "the customer withdrew consent for sms messages"
    decided = found.decided
    assert decided is not None
    assert decided.consent is not None
    assert (decided.decision, decided.consent.granted, decided.consent.rule) == (
        "refuse",
        False,
        "ledger",
    )
    assert decided.consent.entry is not None
    assert decided.consent.entry.granted is False
    assert found.summary.startswith("Not sent: the hub refused")
    assert "withdrew consent" in found.summary


def test_quiet_hours_held_then_sent_records_both_decisions(store: Store, sms: Recorded) -> None:
    mid = queued(store, sms)
    morning = datetime(2024, 5, 2, 6, 0, tzinfo=UTC)
    assert decide(store, mid, NIGHT) == Hold(morning)

    held = answer(store, mid)
    assert held.outcome == "held"
    quiet = held.decided.quiet_hours if held.decided else None
    assert quiet is not None
    assert (quiet.zone, quiet.quiet, quiet.effect, quiet.held_until) == (
        "Europe/Berlin",
        True,
        "held",
        morning,
    )
    assert quiet.local_time is not None
    assert quiet.local_time.strftime("%H:%M") == "23:30"
    assert "Europe/Berlin" in held.summary

    assert isinstance(decide(store, mid, morning), Send)
    sent = answer(store, mid)
    assert [d.decision for d in sent.decisions] == ["hold", "send"]
    assert sent.decided is not None
    assert sent.decided.quiet_hours is not None
    assert sent.decided.quiet_hours.effect == "outside"


def test_urgent_and_awake_customers_override_quiet_hours(store: Store, sms: Recorded) -> None:
    urgent = queued(store, sms, urgent=True)
    assert isinstance(decide(store, urgent, NIGHT), Send)
    found = answer(store, urgent).decided
    assert found is not None
    assert found.quiet_hours is not None
    assert (found.quiet_hours.effect, found.quiet_hours.urgent) == ("urgent_override", True)

    store.app.record_interactions(
        [inbound("SM2", address=PHONE, occurred_at=NIGHT - timedelta(minutes=10))]
    )
    awake = queued(store, sms)
    assert isinstance(decide(store, awake, NIGHT), Send)
    found = answer(store, awake).decided
    assert found is not None
    assert found.quiet_hours is not None
    assert (found.quiet_hours.effect, found.quiet_hours.awake) == ("awake_override", True)
    assert "written within 30 minutes" in answer(store, awake).summary


def test_the_service_window_and_its_template(store: Store, sms: Recorded) -> None:
    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    late = T0 + timedelta(hours=25)
    template = {"name": "order_update", "language": "en", "parameters": []}
    mid = queued(store, sms, window, channel="whatsapp", template=template, now=late)
    assert isinstance(decide(store, mid, late, NIGHTS, window), Send)
    found = answer(store, mid)
    assert found.template is True
    assert found.decided is not None
    assert found.decided.service_window is not None
    assert (
        found.decided.service_window.hours,
        found.decided.service_window.open,
        found.decided.service_window.template,
    ) == (24, False, True)
    assert "an approved template was used" in found.summary

    inside = queued(store, sms, window, channel="whatsapp", now=MORNING)
    assert isinstance(decide(store, inside, MORNING, NIGHTS, window), Send)
    decided = answer(store, inside).decided
    assert decided is not None
    assert decided.service_window is not None
    assert decided.service_window.open is True


def test_marketing_needs_an_opt_in(store: Store, sms: Recorded) -> None:
    outbound = store.app.outbound
    with pytest.raises(SendRefused) as refused:
        queued(store, sms, purpose="marketing")
    assert refused.value.code == "consent_missing"
    with pytest.raises(InvalidCommand):
        queued(store, sms, purpose="astrology")

    outbound.change_consent(sms.customer_id, "sms", True, purposes=["marketing"], source="api")
    mid = queued(store, sms, purpose="marketing")
    assert isinstance(decide(store, mid, MORNING), Send)
    found = answer(store, mid)
    assert found.purpose == "marketing"
    assert found.decided is not None
    assert found.decided.consent is not None
    assert (found.decided.consent.purpose, found.decided.consent.rule) == ("marketing", "ledger")

    # Withdrawn between the request and the dispatch: refused, the withdrawal named.
    later = queued(store, sms, purpose="marketing")
    outbound.change_consent(sms.customer_id, "sms", False, purposes=["marketing"], source="api")
    assert decide(store, later, MORNING) == Done("refused")
    refused_answer = answer(store, later)
    assert refused_answer.refusal_code == "consent_revoked"
    assert "marketing" in (refused_answer.refusal_reason or "")


def test_an_inbound_message_was_not_sent_by_the_hub(store: Store, sms: Recorded) -> None:
    found = answer(store, sms.message_id)
    assert (found.sent_by_hub, found.outcome, found.direction) == (
        False,
        "not_sent_by_hub",
        "inbound",
    )
    assert found.decided is None
    assert found.purpose is None
    assert "the customer sent" in found.summary
    assert lawfulness_in(store.app.events, uuid7()) is None
    assert lawfulness_in(store.app.events, sms.customer_id) is None  # not a message


def test_events_stored_before_purposes_and_bases_still_answer() -> None:
    """A reply recorded and sent before the hub recorded purposes and decision bases: the
    stored events have neither field; they load, and the answer says so."""
    message = Message(
        channel="sms",
        provider_message_id="hub:old",
        direction="outbound",
        customer_id=uuid7(),
        conversation_id=uuid7(),
        address=None,
        occurred_at=T0,
        text=None,
        subject=None,
        thread_ref=None,
        contact_name=None,
        attachments=[],
        metadata=None,
        correlation_id=uuid7(),
    )
    message.request_dispatch(
        author="ann",
        urgent=False,
        template=None,
        references=[],
        customer_id=message.customer_id,
        correlation_id=message.id,
    )
    message.start_dispatch(attempt=1, correlation_id=message.id)
    events = list(message.collect_events())
    for event in events:  # what the old stored form lacks
        for later in ("purpose", "basis", "automation", "html"):
            vars(event).pop(later, None)
    assert not any("purpose" in vars(e) or "basis" in vars(e) for e in events)
    replayed: Any = None
    for event in events:  # the aggregate loads from them
        replayed = event.mutate(replayed)
    assert replayed.dispatch == {
        "urgent": False,
        "template": None,
        "purpose": "service",
        "automation": None,
        "html": None,
    }
    assert (replayed.attempts, replayed.in_flight) == (1, True)
    found = lawfulness_of(events)
    assert found is not None
    assert (found.purpose, found.outcome, found.basis_recorded) == ("service", "sending", False)
    assert "did not record the basis" in found.summary


def test_unsubscribe_withdraws_once(store: Store, sms: Recorded) -> None:
    outbound = store.app.outbound
    mid = queued(store, sms)
    assert outbound.unsubscribe(sms.customer_id, "sms", "service", mid) is True
    assert outbound.unsubscribe(sms.customer_id, "sms", "service", mid) is False
    lines = [e for e in envelopes(store) if e.type == "customer.consent_changed.v1"]
    assert len(lines) == 1
    assert lines[0].data.message_id == mid  # type: ignore[attr-defined]
    assert outbound.consent_of(sms.customer_id) == {"sms:service": False}
