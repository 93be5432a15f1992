"""Scheduled and automated messages on the commands themselves (hub.domain.scheduling): an
occurrence is scheduled once per key, fires once into a message the dispatcher sends, on the
first channel of the preference that reaches the customer with consent, in the customer's
language; or it is skipped with the reason. Reminders bring a conversation back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from hub.domain.automation import Occurrence, OccurrenceSpec, Plan, Source
from hub.domain.automations import Definition
from hub.domain.errors import Conflict, InvalidCommand, NotFound
from hub.domain.inbound import Recorded
from hub.domain.lawfulness import lawfulness_in
from hub.domain.model import Conversation, Message
from hub.domain.policy import QuietHours, local_due
from hub.domain.scheduling import Limits
from hub.events import InteractionQueued
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import envelopes, types
from tests.support.store import T0, inbound

PHONE = "phone:+4915112345678"
OPEN = FakeChannels()
LATER = T0 + timedelta(hours=1)


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here (tests/domain/test_concurrency.py and the
    runtime tests race them on PostgreSQL too)."""
    return "sqlite"


@pytest.fixture
def sms(store: Store) -> Recorded:
    [recorded] = store.app.record_interactions([inbound("SM1", address=PHONE)])
    return recorded


def spec(customer: UUID, key: str = "api:k1", **plan: Any) -> OccurrenceSpec:
    defaults: dict[str, Any] = {"channels": ("sms",), "text": "Your visit is tomorrow"}
    return OccurrenceSpec(
        key=key,
        customer_id=customer,
        due_at=LATER,
        plan=Plan(**(defaults | plan)),
        source=Source("api", "api"),
    )


def occurrence(store: Store, oid: UUID) -> Occurrence:
    return store.app.schedules.get(oid)


def message(store: Store, mid: UUID) -> Message:
    return store.app.read(lambda uow: uow.require(Message, mid, "message"))


def fire(store: Store, oid: UUID, **options: Any) -> Any:
    return store.app.schedules.fire(oid, now=options.pop("now", LATER), policy=OPEN, **options)


def test_one_occurrence_per_key_however_often_it_is_scheduled(store: Store, sms: Recorded) -> None:
    schedule = store.app.schedules.schedule
    [(oid, new)] = schedule([spec(sms.customer_id)], "ana")
    assert new is True
    assert schedule([spec(sms.customer_id), spec(sms.customer_id)], "ben") == [
        (oid, False),
        (oid, False),
    ]
    assert types(store)["scheduled_message.scheduled.v1"] == 1
    [scheduled] = [e for e in envelopes(store) if e.type == "scheduled_message.scheduled.v1"]
    assert scheduled.data.text == "Your visit is tomorrow"  # type: ignore[attr-defined]
    assert scheduled.data.actor == "ana"  # type: ignore[attr-defined]


def test_a_due_occurrence_fires_once_into_a_message_naming_what_planned_it(
    store: Store, sms: Recorded
) -> None:
    [(oid, _)] = store.app.schedules.schedule([spec(sms.customer_id)], "ana")
    outcome = fire(store, oid)
    assert (outcome.decision, outcome.channel) == ("send", "sms")
    assert fire(store, oid).decision == "none"  # a second scheduler, a replay: nothing
    sent = message(store, outcome.message_id)
    assert sent.delivery_status == "queued"
    assert sent.conversation_id == sms.conversation_id  # the customer's SMS thread goes on
    assert sent.dispatch is not None
    assert sent.dispatch["automation"]["occurrence_id"] == str(oid)
    assert occurrence(store, oid).state == "queued"
    [queued] = [e for e in envelopes(store) if isinstance(e, InteractionQueued)]
    assert queued.data.automation is not None
    assert queued.data.automation.occurrence_id == oid
    assert queued.data.automation.kind == "api"
    assert types(store)["scheduled_message.queued.v1"] == 1


def test_the_first_channel_that_reaches_the_customer_is_used(store: Store, sms: Recorded) -> None:
    [(oid, _)] = store.app.schedules.schedule(
        [spec(sms.customer_id, channels=("email", "telegram", "whatsapp", "sms"))], None
    )
    # No email or Telegram address; WhatsApp shares the phone, but free text outside the
    # 24-hour window is not allowed there, so SMS it is.
    policy = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    outcome = store.app.schedules.fire(oid, now=T0 + timedelta(days=2), policy=policy)
    assert outcome.channel == "sms"
    assert message(store, outcome.message_id).conversation_id == sms.conversation_id


def test_no_channel_at_all_is_skipped_with_the_reason_per_channel(
    store: Store, sms: Recorded
) -> None:
    [(oid, _)] = store.app.schedules.schedule(
        [spec(sms.customer_id, channels=("email", "telegram"))], None
    )
    outcome = fire(store, oid)
    assert (outcome.decision, outcome.code) == ("skip", "no_channel")
    assert outcome.reason == "email: no address; telegram: no address"
    found = occurrence(store, oid)
    assert (found.state, found.code) == ("skipped", "no_channel")
    [skipped] = [e for e in envelopes(store) if e.type == "scheduled_message.skipped.v1"]
    assert skipped.data.code == "no_channel"  # type: ignore[attr-defined]


def test_marketing_needs_consent_on_the_channel(store: Store, sms: Recorded) -> None:
    schedules = store.app.schedules
    [(first, _)] = schedules.schedule([spec(sms.customer_id, "a", purpose="marketing")], None)
    outcome = fire(store, first)
    assert (outcome.decision, outcome.code) == ("skip", "consent_missing")
    assert "consent for marketing" in (outcome.reason or "")
    store.app.outbound.change_consent(sms.customer_id, "sms", True, purposes=("marketing",))
    [(second, _)] = schedules.schedule([spec(sms.customer_id, "b", purpose="marketing")], None)
    assert fire(store, second).decision == "send"


def test_the_frequency_cap_skips_marketing_beyond_it(store: Store, sms: Recorded) -> None:
    store.app.outbound.change_consent(sms.customer_id, "sms", True, purposes=("marketing",))
    cap = Limits(frequency_cap=2, frequency_period=timedelta(days=7))
    keys = ["m1", "m2", "m3"]
    specs = [spec(sms.customer_id, k, purpose="marketing") for k in keys]
    ids = [oid for oid, _ in store.app.schedules.schedule(specs, None)]
    decided = [fire(store, oid, limits=cap).decision for oid in ids]
    assert decided == ["send", "send", "skip"]
    assert occurrence(store, ids[2]).code == "frequency_cap"
    # A week later the cap has room again; service messages never count.
    [(later, _)] = store.app.schedules.schedule(
        [spec(sms.customer_id, "m4", purpose="marketing")], None
    )
    assert fire(store, later, limits=cap, now=LATER + timedelta(days=8)).decision == "send"
    [(service, _)] = store.app.schedules.schedule([spec(sms.customer_id, "s1")], None)
    assert fire(store, service, limits=cap).decision == "send"


def test_a_cancelled_message_never_fires_and_a_sent_one_cannot_be_cancelled(
    store: Store, sms: Recorded
) -> None:
    schedules = store.app.schedules
    [(oid, _)] = schedules.schedule([spec(sms.customer_id, "c1")], None)
    assert schedules.cancel(oid, "ana") is True
    assert schedules.cancel(oid, "ana") is False  # again: nothing new
    assert fire(store, oid).decision == "none"
    [(other, _)] = schedules.schedule([spec(sms.customer_id, "c2")], None)
    fire(store, other)
    with pytest.raises(Conflict) as refused:
        schedules.cancel(other, "ana")
    assert refused.value.code == "scheduled_message_done"
    with pytest.raises(NotFound):
        schedules.cancel(other, "ana", customer_id=UUID(int=7))


def test_an_unknown_customer_or_a_bad_plan_records_nothing(store: Store, sms: Recorded) -> None:
    schedules = store.app.schedules
    with pytest.raises(NotFound):
        schedules.schedule([spec(UUID(int=1))], None)
    with pytest.raises(InvalidCommand):
        schedules.schedule([spec(sms.customer_id, template="t")], None)  # text and template
    with pytest.raises(InvalidCommand):
        schedules.schedule([spec(sms.customer_id, channels=())], None)
    assert types(store)["scheduled_message.scheduled.v1"] == 0


def test_an_erased_customer_gets_nothing(store: Store, sms: Recorded) -> None:
    [(oid, _)] = store.app.schedules.schedule([spec(sms.customer_id)], None)
    store.app.erasure.erase(sms.customer_id, actor="dpo", reason="data_subject_request")
    outcome = fire(store, oid)
    assert (outcome.decision, outcome.code) == ("skip", "customer_erased")
    # Scheduling for them afterwards is passed over.
    assert store.app.schedules.schedule([spec(sms.customer_id, "again")], None)[0][1] is False


def test_a_template_is_rendered_in_the_customers_language_and_its_version_recorded(
    store: Store, sms: Recorded
) -> None:
    store.app.templates.save(
        "visit",
        {
            "default_language": "en",
            "defaults": {"first_name": "there"},
            "variants": [
                {"language": "en", "text": "Hi {{ first_name }}, see you tomorrow"},
                {"language": "lt", "text": "Labas, {{ first_name }}, iki rytojaus"},
            ],
        },
        actor="ana",
    )
    store.app.profile.update(
        sms.customer_id, {"display_name": "Žydrūnas Šimkus", "language": "lt-LT"}, actor="ana"
    )
    [(oid, _)] = store.app.schedules.schedule(
        [spec(sms.customer_id, text=None, template="visit")], None
    )
    outcome = fire(store, oid)
    assert outcome.rendered is not None
    assert outcome.rendered.language == "lt"
    sent = message(store, outcome.message_id)
    text = store.app.cipher.decrypt(sms.customer_id, sent.text)
    assert text == "Labas, Žydrūnas, iki rytojaus"
    assert sent.dispatch is not None
    assert sent.dispatch["automation"]["template"] == "visit"
    assert sent.dispatch["automation"]["template_version"] == 1


def test_a_template_gone_or_missing_a_variable_is_skipped_with_the_reason(
    store: Store, sms: Recorded
) -> None:
    store.app.templates.save(
        "plan",
        {
            "default_language": "en",
            "variants": [{"language": "en", "text": "Hi {{ first_name }}"}],
        },
        actor="ana",
    )
    schedules = store.app.schedules
    specs = [
        spec(sms.customer_id, "t1", text=None, template="plan"),
        spec(sms.customer_id, "t2", text=None, template="nothing-by-that-name"),
    ]
    [(missing_var, _), (missing_template, _)] = schedules.schedule(specs, None)
    outcome = fire(store, missing_var)
    assert (outcome.decision, outcome.code) == ("skip", "template_variable_missing")
    assert fire(store, missing_template).code == "template_missing"


def test_a_follow_up_is_skipped_when_the_customer_wrote_meanwhile(
    store: Store, sms: Recorded
) -> None:
    schedules = store.app.schedules
    plan = Plan(channels=("sms",), text="Did that help?")
    asked_at = T0 + timedelta(minutes=5)
    quiet, _ = schedules.follow_up(
        sms.conversation_id, T0 + timedelta(days=3), plan, "ana", asked_at, "f1"
    )
    replied, _ = schedules.follow_up(
        sms.conversation_id, T0 + timedelta(days=3), plan, "ana", asked_at, "f2"
    )
    assert fire(store, quiet, now=T0 + timedelta(days=3)).decision == "send"
    store.app.record_interactions(
        [inbound("SM2", address=PHONE, occurred_at=T0 + timedelta(days=4))]
    )
    outcome = fire(store, replied, now=T0 + timedelta(days=5))
    assert (outcome.decision, outcome.code) == ("skip", "customer_replied")


def test_a_snoozed_conversation_comes_back_open_when_its_reminder_fires(
    store: Store, sms: Recorded
) -> None:
    schedules = store.app.schedules
    until = T0 + timedelta(days=1)
    reminder = schedules.snooze(sms.conversation_id, until, "ana", now=T0)
    assert schedules.snooze(sms.conversation_id, until, "ana", now=T0) == reminder

    def status() -> str:
        return store.app.read(
            lambda uow: uow.require(Conversation, sms.conversation_id, "c")
        ).status

    assert status() == "pending"
    assert fire(store, reminder, now=until).decision == "reopen"
    assert status() == "open"
    with pytest.raises(InvalidCommand):
        schedules.snooze(sms.conversation_id, T0 - timedelta(hours=1), "ana", now=T0)


def test_a_dry_run_decides_without_recording(store: Store, sms: Recorded) -> None:
    before = types(store)
    outcome = store.app.schedules.preview(
        spec(sms.customer_id, purpose="marketing"), now=LATER, policy=OPEN
    )
    assert (outcome.decision, outcome.code) == ("skip", "consent_missing")
    assert store.app.schedules.preview(spec(sms.customer_id), now=LATER, policy=OPEN).decision == (
        "send"
    )
    assert types(store) == before


# -- local times -------------------------------------------------------------------------------

VILNIUS = ZoneInfo("Europe/Vilnius")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 28), datetime(2026, 3, 28, 8, 0, tzinfo=UTC)),  # EET, UTC+2
        (date(2026, 3, 29), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),  # the switch: EEST
        (date(2026, 10, 25), datetime(2026, 10, 25, 8, 0, tzinfo=UTC)),  # back to EET
        (date(2026, 10, 24), datetime(2026, 10, 24, 7, 0, tzinfo=UTC)),
    ],
)
def test_ten_oclock_local_is_ten_oclock_on_the_days_clocks_change(
    day: date, expected: datetime
) -> None:
    due = local_due(day, time(10), VILNIUS)
    assert due == expected
    assert due.astimezone(VILNIUS).time() == time(10)


def test_a_skipped_local_time_moves_forward_and_a_repeated_one_is_its_first_instant() -> None:
    gap = local_due(date(2026, 3, 29), time(3, 30), VILNIUS)  # 03:00 -> 04:00 that night
    assert gap.astimezone(VILNIUS).time() == time(4, 30)
    twice = local_due(date(2026, 10, 25), time(3, 30), VILNIUS)  # 04:00 -> 03:00
    assert twice == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_the_customers_zone_is_the_set_one_else_the_phones_else_the_default(
    store: Store, sms: Recorded
) -> None:
    zone = store.app.schedules.customer_zone
    assert zone(sms.customer_id, "Europe/Vilnius") == ZoneInfo("Europe/Berlin")  # +49
    store.app.profile.update(sms.customer_id, {"time_zone": "America/New_York"}, actor="ana")
    assert zone(sms.customer_id, None) == ZoneInfo("America/New_York")
    [mail] = store.app.record_interactions(
        [inbound("m1", channel="email", address="email:ona@example.lt")]
    )
    assert zone(mail.customer_id, "Europe/Vilnius") == ZoneInfo("Europe/Vilnius")
    assert zone(mail.customer_id, None) == ZoneInfo("UTC")


def test_the_lawfulness_answer_names_what_planned_the_message(store: Store, sms: Recorded) -> None:
    rule = OccurrenceSpec(
        key="rule:r1:2026-05-02",
        customer_id=sms.customer_id,
        due_at=LATER,
        plan=Plan(channels=("sms",), text="Happy birthday!"),
        source=Source("rule", "r1", "Birthday"),
    )
    [(oid, _)] = store.app.schedules.schedule([rule], None)
    mid = fire(store, oid).message_id
    quiet = QuietHours(None, time(8), None, timedelta(minutes=30))
    decision = store.app.dispatch.prepare_dispatch(mid, OPEN, quiet, LATER, timedelta(minutes=10))
    assert decision.channel == "sms"  # type: ignore[union-attr]
    answer = lawfulness_in(store.app.events, mid)
    assert answer is not None
    assert answer.automation == {
        "occurrence_id": str(oid),
        "kind": "rule",
        "id": "r1",
        "name": "Birthday",
        "template": None,
        "template_version": None,
    }
    assert answer.requested_by is None
    assert answer.decided is not None
    assert answer.decided.consent is not None


def test_a_rule_disabled_or_deleted_sends_nothing_it_had_planned(
    store: Store, sms: Recorded
) -> None:
    rules = store.app.automations
    birthday = Definition(
        kind="date", name="Birthday", template="b", channels=("sms",), date_field="birthday"
    )
    rule = rules.define(birthday, actor="ana")
    source = Source("rule", str(rule.automation_id), "Birthday")
    planned = [replace(spec(sms.customer_id, f"rule:{n}"), source=source) for n in range(3)]
    first, second, third = (oid for oid, _ in store.app.schedules.schedule(planned, None))
    rules.change(rule.automation_id, replace(birthday, enabled=False), actor="ana")
    outcome = fire(store, first)
    assert (outcome.decision, outcome.code) == ("skip", "automation_disabled")
    assert outcome.reason == "the rule was disabled"
    rules.change(rule.automation_id, birthday, actor="ana")
    assert fire(store, second).decision == "send"  # enabled again: decided as usual
    rules.delete(rule.automation_id, actor="ana")
    assert fire(store, third).reason == "the rule was deleted"


def test_a_channel_the_template_has_no_variant_for_is_passed_over(
    store: Store, sms: Recorded
) -> None:
    store.app.templates.save(
        "sms-only",
        {
            "default_language": "en",
            "variants": [{"language": "en", "channel": "sms", "text": "Hi"}],
        },
        actor="ana",
    )
    [(oid, _)] = store.app.schedules.schedule(
        [spec(sms.customer_id, text=None, template="sms-only", channels=("whatsapp", "sms"))],
        None,
    )
    outcome = fire(store, oid)
    assert (outcome.decision, outcome.channel) == ("send", "sms")


def test_whatsapp_outside_its_window_takes_the_templates_approved_one(
    store: Store, sms: Recorded
) -> None:
    store.app.templates.save(
        "visit-wa",
        {
            "default_language": "en",
            "variants": [
                {"language": "en", "text": "See you tomorrow"},
                {
                    "language": "en",
                    "channel": "whatsapp",
                    "whatsapp": {"name": "visit_reminder", "language": "en_US", "parameters": []},
                },
            ],
        },
        actor="ana",
    )
    policy = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    schedules = store.app.schedules
    specs = [
        spec(sms.customer_id, "wa1", text=None, template="visit-wa", channels=("whatsapp",)),
        spec(sms.customer_id, "wa2", channels=("whatsapp",)),  # free text: not allowed
    ]
    [(approved, _), (free, _)] = schedules.schedule(specs, None)
    later = T0 + timedelta(days=3)
    outcome = schedules.fire(approved, now=later, policy=policy)
    assert (outcome.decision, outcome.channel) == ("send", "whatsapp")
    sent = message(store, outcome.message_id)
    assert sent.dispatch is not None
    assert sent.dispatch["template"]["name"] == "visit_reminder"
    refused = schedules.fire(free, now=later, policy=policy)
    assert (refused.decision, refused.code) == ("skip", "outside_service_window")
