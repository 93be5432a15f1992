"""Survey answers, the read model of the satisfaction reports (docs/surveys.md): one row per
survey sent (``feedback.requested.v1``), its score once answered (``feedback.received.v1``),
and whether a comment came (``feedback.commented.v1``; the words stay on the timeline).

Rows hold ids, kinds, channels, agents, times and scores: an erasure forgets whose they were
and keeps the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    update,
)

from hub.events import Envelope, FeedbackCommented, FeedbackReceived, FeedbackRequested
from hub.projections.base import Projection, utc
from hub.sql import insert_ignoring_duplicates

__all__ = ["SurveysProjection", "survey_answers"]

metadata = MetaData()

survey_answers = Table(
    "survey_answers",
    metadata,
    Column("survey_id", Uuid, primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("customer_id", Uuid, nullable=True),  # None once the customer is erased
    Column("conversation_id", Uuid, nullable=True),
    Column("agent", String(200), nullable=True),
    Column("channel", String(32), nullable=False),
    Column("asked_at", DateTime(timezone=True), nullable=False),
    Column("score", SmallInteger, nullable=True),
    Column("via", String(8), nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("commented", Boolean, nullable=False, default=False),
    Index("ix_survey_answers_asked", "kind", "asked_at"),
    Index("ix_survey_answers_customer", "customer_id"),
)


class SurveysProjection(Projection):
    name = "surveys"
    handles = frozenset({"feedback.requested.v1", "feedback.received.v1", "feedback.commented.v1"})
    tables = (survey_answers,)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Keep the figures; forget whose they were."""
        t = survey_answers
        conn.execute(
            update(t).where(t.c.customer_id.in_(list(customer_ids))).values(customer_id=None)
        )

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        t = survey_answers
        for event in events:
            if isinstance(event, FeedbackRequested):
                d = event.data
                row = {
                    "survey_id": d.survey_id,
                    "kind": d.kind,
                    "customer_id": None if event.erased else event.customer_id,
                    "conversation_id": d.conversation_id,
                    "agent": d.agent,
                    "channel": d.channel,
                    "asked_at": utc(event.occurred_at),
                    "score": None,
                    "via": None,
                    "answered_at": None,
                    "commented": False,
                }
                insert_ignoring_duplicates(conn, t, [row])
            elif isinstance(event, FeedbackReceived):
                conn.execute(
                    update(t)
                    .where(t.c.survey_id == event.data.survey_id, t.c.score.is_(None))
                    .values(
                        score=event.data.score,
                        via=event.data.via,
                        answered_at=utc(event.occurred_at),
                    )
                )
            elif isinstance(event, FeedbackCommented):
                conn.execute(
                    update(t).where(t.c.survey_id == event.data.survey_id).values(commented=True)
                )
