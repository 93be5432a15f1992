"""Satisfaction surveys in the event log (``hub.domain.surveys``), on SQLite and PostgreSQL:
what a policy may say (the field each refusal names), a policy naming a missing template or
segment refused, the same policy again recording nothing; a CSAT survey fired for a resolved
conversation asks once (with the agent who resolved it) and is skipped when the conversation
was reopened, surveyed already, the customer surveyed recently or the policy turned off; the
customer's replies read as a score (and a comment) only while the survey waits for them; the
one-click answer keeps the first score; an erased customer's survey cannot be answered; and
any text at all as a reply records a score in range or nothing, never an error."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.automation import OccurrenceSpec, Outcome, Plan, Source, occurrence_id
from hub.domain.errors import DomainError, InvalidCommand, NotFound
from hub.domain.inbound import Recorded
from hub.domain.model import Conversation
from hub.domain.surveys import (
    BOOK_ID,
    CSAT,
    NPS,
    SCALES,
    SOURCE_KIND,
    Incoming,
    SurveyLedger,
    SurveyPolicy,
    check_survey_policy,
    ledger_id,
    record_question,
)
from hub.events import Envelope
from hub.events.feedback import FeedbackCommented, FeedbackReceived, FeedbackRequested
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.domain.helpers import PHONE, envelopes, stored_count
from tests.support.store import T0, inbound

OPEN = FakeChannels()
RESOLVED_AT = T0 + timedelta(minutes=10)
ASKED_AT = RESOLVED_AT + timedelta(hours=1)
TEMPLATE = {
    "default_language": "en",
    "variants": [
        {"language": "en", "text": "How did we do? Reply 1-5"},
        {"language": "lt", "text": "Kaip įvertintumėte mūsų pagalbą? Atsakykite 1-5"},
    ],
}


@pytest.fixture
def sms(store: Store) -> Recorded:
    [recorded] = store.app.record_interactions([inbound("SM1", address=PHONE)])
    return recorded


@pytest.fixture
def csat_on(store: Store) -> SurveyPolicy:
    store.app.templates.save("csat", TEMPLATE, actor="ana")
    policy = SurveyPolicy(kind=CSAT, enabled=True, template="csat", delay_minutes=60)
    saved, changed = store.app.surveys.save_policy(policy, actor="ana")
    assert changed
    return saved


def feedback(store: Store) -> list[Envelope]:
    return [e for e in envelopes(store) if e.type.startswith("feedback.")]


def ledger(store: Store, customer_id: UUID) -> SurveyLedger:
    found: Any = store.app.repository.get(ledger_id(customer_id))
    assert isinstance(found, SurveyLedger)
    return found


def survey_spec(
    sms: Recorded, key: str, agent: str | None = "ana", since: Any = RESOLVED_AT
) -> OccurrenceSpec:
    return OccurrenceSpec(
        key=key,
        customer_id=sms.customer_id,
        due_at=ASKED_AT,
        plan=Plan(purpose="service", channels=("sms",), template="csat"),
        source=Source(kind=SOURCE_KIND, id=CSAT, name="CSAT survey"),
        conversation_id=sms.conversation_id,
        unless_replied_since=since,
        event={"survey": {"id": str(occurrence_id(key)), "kind": CSAT, "agent": agent}},
    )


def fire_survey(
    store: Store, sms: Recorded, key: str, at: Any = ASKED_AT, since: Any = RESOLVED_AT
) -> Outcome:
    [(oid, _)] = store.app.schedules.schedule([survey_spec(sms, key, since=since)], None)
    return store.app.schedules.fire(oid, now=at, policy=OPEN)


def ask(store: Store, customer_id: UUID, kind: str = CSAT, at: Any = ASKED_AT) -> UUID:
    """Record a question in the ledger directly (as firing its occurrence would)."""
    survey_id = uuid4()
    store.app.runner.run(
        lambda uow: record_question(
            uow, survey_id, customer_id, kind, None, "ana", "sms", uuid4(), at
        )
    )
    return survey_id


def reply(sms: Recorded, text: str, at: Any) -> Incoming:
    return Incoming(sms.customer_id, uuid4(), text, at)


# -- what a policy may say -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (SurveyPolicy(kind="ces"), "kind"),
        (SurveyPolicy(kind=CSAT, delay_minutes=-1), "delay_minutes"),
        (SurveyPolicy(kind=CSAT, delay_minutes=7 * 24 * 60 + 1), "delay_minutes"),
        (SurveyPolicy(kind=CSAT, every_days=3661), "every_days"),
        (SurveyPolicy(kind=CSAT, answer_hours=0), "answer_hours"),
        (SurveyPolicy(kind=CSAT, comment_minutes=24 * 60 + 1), "comment_minutes"),
        (SurveyPolicy(kind=CSAT, channels=("fax",)), "channels"),
        (SurveyPolicy(kind=CSAT, channels=("voice",)), "channels"),
        (SurveyPolicy(kind=CSAT, channels=("sms", "sms")), "channels"),
        (SurveyPolicy(kind=CSAT, enabled=True), "template"),
        (SurveyPolicy(kind=NPS, enabled=True, template="nps"), "channels"),
        (SurveyPolicy(kind=NPS, every_days=0, channels=("sms",)), "every_days"),
    ],
)
def test_what_a_policy_may_not_say_names_its_field(policy: SurveyPolicy, field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_survey_policy(policy)
    assert refused.value.details == {"field": field}


def test_a_policy_naming_a_missing_template_or_segment_is_refused(store: Store) -> None:
    surveys = store.app.surveys
    with pytest.raises(DomainError) as no_template:
        surveys.save_policy(SurveyPolicy(kind=CSAT, enabled=True, template="csat"), actor=None)
    assert (no_template.value.code, no_template.value.status) == ("template_missing", 422)
    assert no_template.value.details == {"field": "template"}
    with pytest.raises(DomainError) as no_segment:
        surveys.save_policy(SurveyPolicy(kind=CSAT, segment_id=uuid4()), actor=None)
    assert no_segment.value.code == "segment_missing"
    assert no_segment.value.details["field"] == "segment_id"
    # A disabled policy may name a template not written yet.
    assert surveys.save_policy(SurveyPolicy(kind=CSAT, template="later"), actor=None)[1]
    assert surveys.policy(CSAT) == SurveyPolicy(kind=CSAT, template="later")
    assert surveys.policy(NPS) == SurveyPolicy(kind=NPS)  # never saved: off


def test_the_same_policy_saved_again_records_nothing(store: Store, csat_on: SurveyPolicy) -> None:
    surveys = store.app.surveys
    book: Any = store.app.repository.get(BOOK_ID)
    before, version = stored_count(store), book.version
    assert surveys.save_policy(csat_on, actor="ben") == (csat_on, False)
    assert stored_count(store) == before
    assert store.app.repository.get(BOOK_ID).version == version
    changed = SurveyPolicy(kind=CSAT, enabled=True, template="csat", delay_minutes=5)
    assert surveys.save_policy(changed, actor="ben") == (changed, True)
    assert stored_count(store) == before + 1
    # The book is the company's settings: nothing of it is published.
    assert not [e for e in envelopes(store) if "survey" in e.type or "polic" in e.type]


# -- asking ----------------------------------------------------------------------------------


def test_a_resolved_conversation_is_surveyed_once_naming_its_agent(
    store: Store, sms: Recorded, csat_on: SurveyPolicy
) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    store.app.profile.update(sms.customer_id, {"language": "lt"}, actor="ana")
    key = f"survey:csat:{sms.conversation_id}:1"
    outcome = fire_survey(store, sms, key)
    assert (outcome.decision, outcome.channel) == ("send", "sms"), outcome
    assert outcome.rendered is not None
    assert outcome.rendered.text == "Kaip įvertintumėte mūsų pagalbą? Atsakykite 1-5"

    [asked] = ledger(store, sms.customer_id).surveys
    survey_id = occurrence_id(key)
    assert asked["survey_id"] == survey_id
    assert (asked["kind"], asked["conversation_id"], asked["agent"], asked["channel"]) == (
        CSAT,
        sms.conversation_id,
        "ana",
        "sms",
    )
    assert (asked["asked_at"], asked["score"]) == (ASKED_AT, None)
    [requested] = feedback(store)
    assert isinstance(requested, FeedbackRequested)
    assert requested.customer_id == sms.customer_id
    assert requested.data.survey_id == survey_id
    assert requested.data.agent == "ana"
    assert requested.data.conversation_id == sms.conversation_id
    assert requested.data.message_id == outcome.message_id
    assert requested.occurred_at == ASKED_AT


def test_a_reopened_conversation_is_not_surveyed(
    store: Store, sms: Recorded, csat_on: SurveyPolicy
) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    store.app.change_status(sms.conversation_id, "open", "ana")
    outcome = fire_survey(store, sms, "survey:csat:reopened")
    assert (outcome.decision, outcome.code) == ("skip", "conversation_reopened")
    assert feedback(store) == []


def test_a_conversation_is_surveyed_once_and_a_customer_once_in_every_days(
    store: Store, sms: Recorded, csat_on: SurveyPolicy
) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    assert fire_survey(store, sms, "survey:csat:first").decision == "send"
    # Resolved again (another resolution event), long after every_days: asked already.
    later = ASKED_AT + timedelta(days=90)
    second = fire_survey(store, sms, "survey:csat:second", at=later)
    assert (second.decision, second.code) == ("skip", "already_surveyed")

    # The customer's next conversation (after the 24-hour window), resolved: within
    # every_days (30) of the first survey it is skipped; after them it is asked.
    [again] = store.app.record_interactions(
        [inbound("SM2", address=PHONE, occurred_at=T0 + timedelta(days=3))]
    )
    assert (again.customer_id, again.conversation_id != sms.conversation_id) == (
        sms.customer_id,
        True,
    )
    store.app.change_status(again.conversation_id, "resolved", "ben")
    since = T0 + timedelta(days=3, minutes=1)
    recent = fire_survey(
        store, again, "survey:csat:third", at=ASKED_AT + timedelta(days=29), since=since
    )
    assert (recent.decision, recent.code) == ("skip", "surveyed_recently")
    fine = fire_survey(
        store, again, "survey:csat:fourth", at=ASKED_AT + timedelta(days=30), since=since
    )
    assert fine.decision == "send"
    assert [s["conversation_id"] for s in ledger(store, sms.customer_id).surveys] == [
        sms.conversation_id,
        again.conversation_id,
    ]


def test_a_survey_turned_off_before_it_is_due_is_not_sent(
    store: Store, sms: Recorded, csat_on: SurveyPolicy
) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    [(oid, _)] = store.app.schedules.schedule([survey_spec(sms, "survey:csat:off")], None)
    off = SurveyPolicy(kind=CSAT, enabled=False, template="csat", delay_minutes=60)
    store.app.surveys.save_policy(off, actor="ana")
    outcome = store.app.schedules.fire(oid, now=ASKED_AT, policy=OPEN)
    assert (outcome.decision, outcome.code) == ("skip", "automation_disabled")
    assert store.app.schedules.get(oid).state == "skipped"
    assert feedback(store) == []


def test_nps_is_asked_once_a_period_however_late_the_last_one_fired(
    store: Store, sms: Recorded
) -> None:
    """The NPS occurrences of a customer are due ``every_days`` apart to the second (the same
    point of each period): firing the last one a little late must not skip the next."""
    store.app.templates.save("nps", TEMPLATE, actor="ana")
    policy = SurveyPolicy(kind=NPS, enabled=True, template="nps", channels=("sms",))
    store.app.surveys.save_policy(policy, actor="ana")
    period = timedelta(days=policy.every_days)

    def fire_nps(n: int, late: timedelta) -> Outcome:
        spec = OccurrenceSpec(
            key=f"survey:nps:{sms.customer_id}:{n}:{late}",
            customer_id=sms.customer_id,
            due_at=ASKED_AT + n * period,
            plan=Plan(purpose="service", channels=("sms",), template="nps"),
            source=Source(kind=SOURCE_KIND, id=NPS, name="NPS survey"),
            event={"survey": {"kind": NPS, "agent": None}},
        )
        [(oid, _)] = store.app.schedules.schedule([spec], None)
        return store.app.schedules.fire(oid, now=spec.due_at + late, policy=OPEN)

    assert fire_nps(0, timedelta(seconds=2)).decision == "send"
    next_period = fire_nps(1, timedelta(seconds=0.5))
    assert (next_period.decision, next_period.code) == ("send", None)
    assert [s["kind"] for s in ledger(store, sms.customer_id).surveys] == [NPS, NPS]
    # Asked again halfway through the period (a policy enabled mid-period): too soon.
    too_soon = fire_nps(1, period / 2)
    assert (too_soon.decision, too_soon.code) == ("skip", "surveyed_recently")


# -- replies ---------------------------------------------------------------------------------


def scores(store: Store) -> list[tuple[int, str]]:
    return [(e.data.score, e.data.via) for e in feedback(store) if isinstance(e, FeedbackReceived)]


def comments(store: Store) -> list[str | None]:
    return [e.data.comment for e in feedback(store) if isinstance(e, FeedbackCommented)]


def test_a_score_answers_the_open_survey_with_its_comment(store: Store, sms: Recorded) -> None:
    survey = ask(store, sms.customer_id)
    record = store.app.surveys.record_replies
    assert record([reply(sms, "I ordered 5 shirts", ASKED_AT + timedelta(minutes=1))]) == (0, 0)
    assert record([reply(sms, "4 - slow but fine", ASKED_AT + timedelta(minutes=2))]) == (1, 1)
    assert scores(store) == [(4, "reply")]
    assert comments(store) == ["slow but fine"]
    [received] = [e for e in feedback(store) if isinstance(e, FeedbackReceived)]
    assert received.data.survey_id == survey
    assert received.data.asked_at == ASKED_AT
    assert received.data.agent == "ana"
    # A second score neither changes the first nor becomes a comment (commented already).
    assert record([reply(sms, "5", ASKED_AT + timedelta(minutes=3))]) == (0, 0)
    assert ledger(store, sms.customer_id).find(survey)["score"] == 4  # type: ignore[index]


def test_a_bare_score_then_the_next_message_within_the_window_is_its_comment(
    store: Store, sms: Recorded
) -> None:
    ask(store, sms.customer_id)
    record = store.app.surveys.record_replies
    answered = ASKED_AT + timedelta(minutes=5)
    assert record([reply(sms, "5", answered)]) == (1, 0)
    assert record([reply(sms, "Labai greitai, ačiū!", answered + timedelta(minutes=29))]) == (
        0,
        1,
    )
    assert record([reply(sms, "one more thing", answered + timedelta(minutes=30))]) == (0, 0)
    assert scores(store) == [(5, "reply")]
    assert comments(store) == ["Labai greitai, ačiū!"]


def test_a_message_after_the_comment_window_is_no_comment(store: Store, sms: Recorded) -> None:
    ask(store, sms.customer_id)
    record = store.app.surveys.record_replies
    answered = ASKED_AT + timedelta(minutes=5)
    assert record([reply(sms, "3", answered)]) == (1, 0)
    assert record([reply(sms, "too late", answered + timedelta(minutes=31))]) == (0, 0)
    assert comments(store) == []


def test_a_reply_after_the_answer_window_answers_nothing(store: Store, sms: Recorded) -> None:
    ask(store, sms.customer_id)
    late = ASKED_AT + timedelta(hours=72, seconds=1)
    assert store.app.surveys.record_replies([reply(sms, "5", late)]) == (0, 0)
    # nor does a reply written before the question went out
    early = ASKED_AT - timedelta(seconds=1)
    assert store.app.surveys.record_replies([reply(sms, "5", early)]) == (0, 0)
    assert feedback(store)[1:] == []  # only the question


def test_a_reply_written_before_the_question_answers_nothing(store: Store, sms: Recorded) -> None:
    """An imported or late-delivered "5" is recorded now but was written before the question."""
    ask(store, sms.customer_id)
    old = Incoming(
        sms.customer_id,
        uuid4(),
        "5",
        ASKED_AT + timedelta(minutes=1),
        written_at=ASKED_AT - timedelta(hours=1),
    )
    assert store.app.surveys.record_replies([old]) == (0, 0)
    skewed = replace(old, message_id=uuid4(), written_at=ASKED_AT - timedelta(minutes=2))
    assert store.app.surveys.record_replies([skewed]) == (1, 0)  # a provider's clock behind


def status_after(store: Store, sms: Recorded, text: str, minutes: int) -> str:
    [recorded] = store.app.record_interactions(
        [
            inbound(
                f"SM-{minutes}",
                address=PHONE,
                text=text,
                occurred_at=ASKED_AT + timedelta(minutes=minutes),
            )
        ]
    )
    found = store.app.repository.get(recorded.conversation_id)
    assert isinstance(found, Conversation)
    return found.status


def test_a_bare_score_leaves_the_resolved_conversation_resolved_and_words_reopen_it(
    store: Store, sms: Recorded
) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    ask(store, sms.customer_id)
    assert status_after(store, sms, "⭐⭐⭐⭐⭐", 1) == "resolved"
    assert status_after(store, sms, "5 - but where is my refund?", 2) == "open"


def test_without_an_open_survey_a_score_reopens_as_any_message(store: Store, sms: Recorded) -> None:
    store.app.change_status(sms.conversation_id, "resolved", "ana")
    assert status_after(store, sms, "5", 1) == "open"


def test_replies_in_one_batch_are_read_in_time_order(store: Store, sms: Recorded) -> None:
    ask(store, sms.customer_id, kind=NPS)
    at = ASKED_AT + timedelta(minutes=1)
    batch = [reply(sms, "great people", at + timedelta(seconds=5)), reply(sms, "9", at)]
    assert store.app.surveys.record_replies(batch) == (1, 1)
    assert scores(store) == [(9, "reply")]
    assert comments(store) == ["great people"]


# -- answers by link -------------------------------------------------------------------------


def test_the_first_answer_by_link_stands(store: Store, sms: Recorded) -> None:
    survey = ask(store, sms.customer_id)
    surveys = store.app.surveys
    with pytest.raises(InvalidCommand) as out_of_range:
        surveys.answer(sms.customer_id, survey, 6, via="link", comment=None)
    assert out_of_range.value.details == {"field": "score"}
    with pytest.raises(InvalidCommand):
        surveys.answer(sms.customer_id, survey, 0, via="link", comment=None)
    first = surveys.answer(sms.customer_id, survey, 4, via="link", comment=None)
    assert (first.outcome, first.score, first.kind) == ("recorded", 4, CSAT)
    again = surveys.answer(sms.customer_id, survey, 1, via="link", comment="  Quick!  ")
    assert (again.outcome, again.score) == ("already", 4)
    surveys.answer(sms.customer_id, survey, 2, via="link", comment="another")
    assert scores(store) == [(4, "link")]
    assert comments(store) == ["Quick!"]  # one comment, taken once
    [commented] = [e for e in feedback(store) if isinstance(e, FeedbackCommented)]
    assert commented.data.message_id is None
    with pytest.raises(NotFound):
        surveys.answer(sms.customer_id, uuid4(), 4, via="link", comment=None)
    with pytest.raises(NotFound):
        surveys.answer(uuid4(), survey, 4, via="link", comment=None)


def test_an_erased_customers_survey_cannot_be_answered(store: Store, sms: Recorded) -> None:
    survey = ask(store, sms.customer_id)
    store.app.erasure.erase(sms.customer_id, actor="dpo", reason="data_subject_request")
    with pytest.raises(NotFound):
        store.app.surveys.answer(sms.customer_id, survey, 5, via="link", comment=None)
    at = ASKED_AT + timedelta(minutes=1)
    assert store.app.surveys.record_replies([reply(sms, "5", at)]) == (0, 0)
    assert not [e for e in feedback(store) if isinstance(e, FeedbackReceived)]


# -- any text --------------------------------------------------------------------------------

_clock = itertools.count(1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=80), kind=st.sampled_from([CSAT, NPS]))
def test_any_reply_records_a_score_in_range_or_nothing(
    store: Store, sms: Recorded, text: str, kind: str
) -> None:
    # No comment windows: each example's text answers its own new survey or nothing.
    store.app.surveys.save_policy(SurveyPolicy(kind=kind, comment_minutes=0), actor=None)
    asked = ASKED_AT + timedelta(days=next(_clock))
    survey = ask(store, sms.customer_id, kind=kind, at=asked)
    before = stored_count(store)
    scored, commented = store.app.surveys.record_replies(
        [reply(sms, text, asked + timedelta(minutes=1))]
    )
    entry = ledger(store, sms.customer_id).find(survey)
    assert entry is not None
    new = (
        envelopes(store)[-(stored_count(store) - before) :] if stored_count(store) > before else []
    )
    if scored == 0:
        assert (commented, entry["score"], new) == (0, None, [])
        return
    low, high = SCALES[kind]
    assert scored == 1
    assert low <= entry["score"] <= high
    assert [type(e) for e in new] == [FeedbackReceived] + [FeedbackCommented] * commented
    assert new[0].data.score == entry["score"]  # type: ignore[attr-defined]
    if commented:
        comment = new[1].data.comment  # type: ignore[attr-defined]
        assert comment
        assert comment == comment.strip()
