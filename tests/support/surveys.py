"""Surveys for tests: a CSAT survey sent on a resolved SMS conversation and answered, through
the domain (the way the scheduler and the survey watcher would)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid5

from hub.domain.automation import OccurrenceSpec, Plan, Source
from hub.domain.inbound import Recorded
from hub.domain.surveys import Incoming, SurveyPolicy
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.support.store import T0, inbound

PHONE = "phone:+4915112345678"
ASKED = T0 + timedelta(hours=1)


def survey_answered(
    store: Store,
    reply: str,
    provider_id: str = "SM1",
    *,
    address: str = PHONE,
    agent: str | None = "ona",
    asked: datetime = ASKED,
    kind: str = "csat",
) -> tuple[Recorded, UUID]:
    """A customer's SMS conversation resolved by ``agent``, surveyed (``kind``) at
    ``asked``, and ``reply`` recorded ten minutes later."""
    app = store.app
    [recorded] = app.record_interactions(
        [inbound(provider_id, address=address, occurred_at=asked - timedelta(hours=1))]
    )
    app.change_status(recorded.conversation_id, "resolved", agent)
    template = {"default_language": "en", "variants": [{"language": "en", "text": "Rate us 1-5"}]}
    app.templates.save("csat", template, actor="admin")
    policy = SurveyPolicy(kind, enabled=True, template="csat", channels=("sms",))
    app.surveys.save_policy(policy, actor="admin")
    spec = OccurrenceSpec(
        f"survey:{kind}:{provider_id}",
        recorded.customer_id,
        # Due long after: a running hub's scheduler leaves it to the fire below, dated then.
        asked + timedelta(days=3650),
        Plan(channels=("sms",), template="csat"),
        Source("survey", kind),
        conversation_id=recorded.conversation_id,
        event={"survey": {"agent": agent}},
    )
    [(survey_id, _)] = app.schedules.schedule([spec], None)
    outcome = app.schedules.fire(survey_id, now=asked, policy=FakeChannels())
    assert outcome.decision == "send", outcome
    reply_id = uuid5(survey_id, "reply")
    message = Incoming(recorded.customer_id, reply_id, reply, asked + timedelta(minutes=10))
    app.surveys.record_replies([message])
    return recorded, survey_id
