"""Published events of service levels (docs/analytics.md): a conversation's SLA target was
missed. Recorded by the scheduler at the moment the target passes, whether or not anyone is
looking, once per conversation, target and clock start."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from hub.events.envelope import Envelope, Published

__all__ = ["ConversationSlaBreached", "SlaBreachedData", "SlaTarget"]

#: What an SLA policy sets a target for.
SlaTarget = Literal["first_response", "next_response", "resolution"]


class SlaBreachedData(Published):
    conversation_id: UUID
    policy: str = Field(description="The SLA policy the conversation was measured against.")
    target: SlaTarget = Field(
        description="first_response (the customer's first message had no agent response in "
        "time), next_response (a later message), resolution (not resolved in time)."
    )
    clock_started_at: AwareDatetime = Field(
        description="When the clock of this target started: the customer's message waiting "
        "for a response, or the conversation's first customer message for resolution."
    )
    due_at: AwareDatetime = Field(
        description="When the target passed (the envelope's occurred_at), counted in the "
        "policy's business calendar."
    )
    channel: str = Field(description="The conversation's channel.")


class ConversationSlaBreached(Envelope):
    """A conversation missed an SLA target (recorded when it happened; a later change of the
    policy does not rewrite it)."""

    type: Literal["conversation.sla_breached.v1"] = "conversation.sla_breached.v1"
    data: SlaBreachedData
