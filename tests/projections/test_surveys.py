"""Survey answers in the views on both backends (``hub.projections.surveys`` and the timeline's
``feedback`` items): a CSAT survey sent, answered by a reply with a comment, is one row with
its score and agent and two timeline items; the retention blanks the comment and keeps the
score; an erasure forgets whose the row was and keeps the figures."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy import select

from hub.projections import Views
from hub.projections.surveys import survey_answers
from hub.projections.timeline import TimelineItem
from hub.store import Store
from tests.projections.helpers import project, timeline
from tests.support.surveys import ASKED, survey_answered


def feedback_items(views: Views, customer_id: UUID) -> list[TimelineItem]:
    """The score item and the comment item, in that order."""
    items = [i for i in timeline(views, customer_id) if i.kind == "feedback"]
    return sorted(items, key=lambda i: bool(i.data.get("comment")))


def test_a_score_and_its_comment_are_a_row_and_two_timeline_items(
    store: Store, views: Views
) -> None:
    recorded, survey_id = survey_answered(store, "4 - slow but kind, ačiū")
    project(store, views)

    with views.engine.connect() as conn:
        (row,) = conn.execute(select(survey_answers)).mappings()
    assert row["survey_id"] == survey_id
    assert (row["kind"], row["score"], row["via"], row["agent"]) == ("csat", 4, "reply", "ona")
    assert (row["channel"], row["commented"]) == ("sms", True)
    assert row["conversation_id"] == recorded.conversation_id
    score, comment = feedback_items(views, recorded.customer_id)
    assert score.data["survey_id"] == str(survey_id)
    assert (score.data["score"], score.data["via"], score.data["survey"]) == (4, "reply", "csat")
    assert comment.text == "slow but kind, ačiū"
    assert comment.data["comment"] is True


def test_the_retention_blanks_the_comment_and_keeps_the_score(store: Store, views: Views) -> None:
    recorded, _ = survey_answered(store, "5: great")
    project(store, views)

    views.expire_bodies_before(ASKED + timedelta(days=1))

    score, comment = feedback_items(views, recorded.customer_id)
    assert comment.text is None
    assert comment.data["body_expired"] is True
    assert score.data["score"] == 5
    assert "body_expired" not in score.data


def test_an_erasure_keeps_the_figures_without_the_customer(store: Store, views: Views) -> None:
    recorded, _ = survey_answered(store, "👍")
    project(store, views)

    store.app.erasure.erase(recorded.customer_id, actor="dpo", reason="data_subject_request")
    project(store, views)

    with views.engine.connect() as conn:
        (row,) = conn.execute(select(survey_answers)).mappings()
    assert (row["customer_id"], row["score"]) == (None, 5)
