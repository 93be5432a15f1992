"""Published events of customer feedback (docs/surveys.md): a satisfaction survey was sent
(CSAT after a resolved conversation, NPS on its own schedule), the customer answered it with a
score on any channel (a reply, a signed email link, a chat button), and maybe added a comment.
Each names the survey, the conversation and the agent who resolved it, so scores per agent,
channel and week are a projection of the log."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from hub.events.envelope import Envelope, Published

__all__ = [
    "FeedbackCommented",
    "FeedbackCommentedData",
    "FeedbackReceived",
    "FeedbackReceivedData",
    "FeedbackRequested",
    "FeedbackRequestedData",
    "SurveyKind",
]

#: CSAT: "how would you rate our help", 1-5; NPS: "how likely to recommend us", 0-10.
SurveyKind = Literal["csat", "nps"]


class _Survey(Published):
    survey_id: UUID = Field(description="The survey: one per question sent.")
    kind: SurveyKind = Field(description="csat (a score of 1-5) or nps (0-10).")
    conversation_id: UUID | None = Field(
        description="CSAT: the resolved conversation it asks about; NPS: none."
    )
    agent: str | None = Field(
        description="CSAT: the agent who resolved the conversation, if an agent did."
    )
    channel: str = Field(description="The channel the question went out on.")


class FeedbackRequestedData(_Survey):
    message_id: UUID = Field(description="The outbound message that asked the question.")


class FeedbackReceivedData(_Survey):
    score: int = Field(ge=0, le=10, description="CSAT 1-5; NPS 0-10.")
    via: Literal["reply", "link", "button"] = Field(
        description="reply: a message the customer wrote (a digit, a word, stars, thumbs); "
        "link: the signed one-click link of an email; button: the chat widget's buttons."
    )
    message_id: UUID | None = Field(
        description="The customer's message that answered, when via is reply or button."
    )
    asked_at: AwareDatetime = Field(description="When the question was sent.")


class FeedbackCommentedData(_Survey):
    comment: str | None = Field(
        description="What the customer added (personal: gone with an erasure)."
    )
    message_id: UUID | None = Field(description="The message it came in, if it was one.")


class FeedbackRequested(Envelope):
    """A survey question went out to the customer."""

    type: Literal["feedback.requested.v1"] = "feedback.requested.v1"
    data: FeedbackRequestedData


class FeedbackReceived(Envelope):
    """The customer answered a survey with a score (once per survey: the first answer)."""

    type: Literal["feedback.received.v1"] = "feedback.received.v1"
    data: FeedbackReceivedData


class FeedbackCommented(Envelope):
    """The customer added words to a score (the next message within the comment window, or
    the comment box of the link's page)."""

    type: Literal["feedback.commented.v1"] = "feedback.commented.v1"
    data: FeedbackCommentedData
