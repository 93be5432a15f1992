"""From stored events to published envelopes (hub.domain.publishing): every kind survives the
wire (encoded, decoded, validated, equal), and the envelopes are the same on every read, in
every process and in pages of any size (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from hub.config import Settings
from hub.domain.activities import check_activity
from hub.domain.automation import OccurrenceSpec, Plan, Source
from hub.domain.service_levels import BreachSpec
from hub.domain.surveys import Incoming, SurveyPolicy
from hub.events import (
    EVENT_CLASSES,
    Attachment,
    Envelope,
    InboundInteraction,
    decode_event,
    encode_event,
)
from hub.runtime import Runtime
from hub.store import Store
from tests.domain.helpers import envelopes
from tests.support.store import T0, inbound, opened


class _AllOpen:
    """Every channel on, no service windows."""

    def unavailable(self, channel: str) -> str | None:
        return None

    def service_window(self, channel: str) -> timedelta | None:
        return None

    def status_callback_url(self, channel: str, message_id: UUID) -> str | None:
        return None

    def idempotent(self, channel: str) -> bool:
        return False

    def unsubscribe_url(
        self, channel: str, customer_id: UUID, purpose: str, message_id: UUID
    ) -> str | None:
        return None


def test_every_kind_of_envelope_is_what_validation_makes_of_it(tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path))
    runtime.start()
    try:
        at = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
        (first,) = runtime.record_now(
            [
                InboundInteraction(
                    channel="email",
                    direction="inbound",
                    address="email:kim@example.com",
                    provider_message_id="<1@example.com>",
                    occurred_at=at,
                    subject="Hello",
                    text="Hi there",
                    contact_name=None,
                    attachments=(Attachment(name="a.pdf", content_type="application/pdf", size=3),),
                    metadata={"k": [1, "two", None]},
                )
            ]
        )
        runtime.record_now(
            [
                InboundInteraction(
                    channel="email",
                    direction="outbound",
                    address="email:kim@example.com",
                    provider_message_id="<2@example.com>",
                    occurred_at=at + timedelta(minutes=1),
                    thread_ref="<1@example.com>",
                    text="Hello Kim",
                    contact_name="Kim",
                )
            ]
        )
        runtime.commands.update_delivery(first.message_id, "read", at + timedelta(minutes=2))
        runtime.commands.add_note(first.conversation_id, "a note", "agent")
        runtime.commands.assign(first.conversation_id, "agent", "agent")
        runtime.commands.change_status(first.conversation_id, "resolved", "agent")
        runtime.commands.update_delivery(first.message_id, "read", at)  # no change, no event
        reply = runtime.store.app.outbound.reply(
            first.conversation_id, "On its way", author="agent", policy=_AllOpen()
        )
        runtime.store.app.dispatch.record_dispatched(reply.message_id, "<r@example.com>", "sent")
        runtime.store.app.outbound.change_consent(
            first.customer_id, "email", False, purposes=("marketing",), actor="agent"
        )
        runtime.commands.identity.link_address(
            "email:kim@example.com", "phone:+15550104242", verified=True, reason="agent"
        )
        (other,) = runtime.record_now(
            [
                InboundInteraction(
                    channel="sms",
                    direction="inbound",
                    address="phone:+15550104343",
                    provider_message_id="SM-other",
                    occurred_at=at,
                    text="it's Kim, new phone",
                )
            ]
        )
        duplicates = runtime.store.app.duplicates
        duplicates.dismiss(first.customer_id, other.customer_id, actor="agent")
        duplicates.restore(first.customer_id, other.customer_id, actor="agent")
        runtime.commands.identity.merge(
            first.customer_id, other.customer_id, actor="agent", reason="agent"
        )
        runtime.commands.identity.unmerge(other.customer_id, actor="agent", reason="mistake")
        runtime.commands.set_tags(first.customer_id, ["vip"], "agent")
        runtime.commands.activities.record(
            check_activity(
                {
                    "type": "order.placed",
                    "source": "shop",
                    "source_id": "order-1",
                    "occurred_at": at,
                    "customer_id": first.customer_id,
                    "amount": "9.90",
                    "currency": "EUR",
                    "metadata": {"items": [1, "two", None]},
                }
            )
        )
        runtime.store.app.service_levels.record_breaches(
            [
                BreachSpec(
                    conversation_id=first.conversation_id,
                    customer_id=first.customer_id,
                    target="first_response",
                    clock_started_at=at,
                    policy="standard",
                    due_at=at + timedelta(hours=1),
                    channel="email",
                )
            ]
        )
        schedules = runtime.store.app.schedules
        plan = Plan(channels=("email",), text="See you", subject="Tomorrow")
        specs = [
            OccurrenceSpec(f"api:{n}", first.customer_id, at, plan, Source("api", "api"))
            for n in range(3)
        ]
        sent, skipped, cancelled = (oid for oid, _ in schedules.schedule(specs, "agent"))
        schedules.fire(sent, now=at, policy=_AllOpen())
        # A CSAT survey on the resolved conversation, answered by a reply with a comment.
        app = runtime.store.app
        app.templates.save(
            "csat",
            {
                "default_language": "en",
                "variants": [
                    {"language": "en", "email": {"subject": "Us?", "text": "Rate us 1-5"}}
                ],
            },
            actor="agent",
        )
        app.surveys.save_policy(SurveyPolicy("csat", enabled=True, template="csat"), actor="agent")
        survey = OccurrenceSpec(
            "survey:csat:1",
            first.customer_id,
            at,
            Plan(channels=("email",), template="csat"),
            Source("survey", "csat"),
            conversation_id=first.conversation_id,
            event={"survey": {"agent": "agent"}},
        )
        [(survey_id, _)] = schedules.schedule([survey], None)
        assert schedules.fire(survey_id, now=at, policy=_AllOpen()).decision == "send"
        answer = Incoming(first.customer_id, uuid4(), "5 - quick and kind", at + timedelta(hours=1))
        assert app.surveys.record_replies([answer]) == (1, 1)
        schedules.cancel(cancelled, "agent")
        runtime.store.app.outbound.change_consent(first.customer_id, "email", False, actor="agent")
        schedules.fire(skipped, now=at, policy=_AllOpen())
        runtime.erase(other.customer_id, actor="dpo", reason="data_subject_request")
        envelopes, _ = runtime.events_after(0, 1000)
    finally:
        runtime.stop()

    seen = set()
    for envelope in envelopes:
        again = decode_event(encode_event(envelope))
        assert again == type(again).model_validate(envelope.model_dump())
        assert again.model_dump() == envelope.model_dump()
        seen.add(envelope.type)
    assert seen == {c.model_fields["type"].default for c in EVENT_CLASSES}


def test_envelopes_are_the_same_on_every_read_and_in_every_process(
    settings: Settings, store: Store
) -> None:
    store.app.record_interactions([inbound("SM1", contact_name="Alice"), inbound("SM2")])
    [r] = store.app.record_interactions([inbound("SM3", direction="outbound")])
    store.app.update_delivery(r.message_id, "delivered", T0)
    store.app.add_note(r.conversation_id, "n", "ann")
    first = envelopes(store)
    with opened(settings) as other:
        assert envelopes(other) == first
    assert envelopes(store) == first
    positions = [e.position for e in first]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert len({e.id for e in first}) == len(first)
    assert all(e.id.version == 7 for e in first)
    assert all(e.correlation_id is not None for e in first)


def test_reading_envelopes_in_small_pages_gives_the_same_sequence(store: Store) -> None:
    store.app.record_interactions(
        [inbound(f"SM{n}", address=f"phone:+49151000000{n:02d}") for n in range(6)]
    )
    everything, last = store.read_envelopes(0, 100_000)
    paged: list[Envelope] = []
    after = 0
    while True:
        page, after_next = store.read_envelopes(after, 4)
        if after_next == after:
            break
        paged += page
        after = after_next
    assert paged == everything
    assert after == last == everything[-1].position
    assert store.read_envelopes(last, 10) == ([], last)
