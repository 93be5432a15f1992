"""Request and response bodies of the outbound webhook endpoints' admin API
(``hub.api.routes.webhook_endpoints``); the engine behind them is ``hub.runtime.webhooks``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from hub.events.common import Text
from hub.runtime.webhooks.service import Attempt, Endpoint, ParkedEvent, Replay

MAX_URL = 2048
MAX_DESCRIPTION = 500
MAX_PATTERNS = 50
MAX_PATTERN = 100

_URL = (
    "Where the events are POSTed (surrounding spaces dropped): an http:// or https:// URL "
    "without spaces or credentials, reaching a "
    "public address (private, loopback and link-local addresses are refused unless "
    "HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true; `invalid_command` otherwise)."
)
_PATTERNS = (
    "The event types delivered: an exact type (`interaction.received.v1`), a wildcard "
    "(`interaction.*`, `customer.*.v1`) or `*` for all; a pattern matching no published type "
    "is refused (`invalid_command`)."
)

#: One event-type pattern: letters, digits, `_`, `.` and the wildcard `*`.
EventTypePattern = Annotated[
    str, Field(min_length=1, max_length=MAX_PATTERN, pattern=r"^[A-Za-z0-9_.*]+$")
]
EndpointUrl = Annotated[Text, Field(min_length=1, max_length=MAX_URL)]
Description = Annotated[Text, Field(max_length=MAX_DESCRIPTION)]
EventTypes = Annotated[
    list[EventTypePattern], Field(min_length=1, max_length=MAX_PATTERNS, description=_PATTERNS)
]
DisabledReason = Literal["gone", "failing", "admin"]
Outcome = Literal["delivered", "retrying", "failed", "disabled", "ping"]


class WebhookIn(BaseModel):
    """A new endpoint. The hub generates its signing secret and answers it once."""

    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl = Field(description=_URL, examples=["https://example.com/hub-events"])
    event_types: EventTypes = Field(
        default_factory=lambda: ["*"], examples=[["interaction.*", "customer.erased.v1"]]
    )
    description: Description = Field(
        default="",
        description="For people: what receives them. Surrounding spaces are dropped.",
        examples=["Billing sync"],
    )


class WebhookPatch(BaseModel):
    """What to change; a field left out (or null) stays as it is."""

    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl | None = Field(default=None, description=_URL)
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = Field(
        default=None,
        description="false: nothing is sent nor queued (`disabled_reason` admin); true: "
        "sending resumes with what is pending.",
    )


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID | None = Field(
        default=None,
        description="One given-up event (see /failed) to send again; left out: all of them.",
    )


class WebhookOut(BaseModel):
    """An endpoint (its secret is never shown again after create and rotate-secret)."""

    id: UUID
    url: str
    event_types: list[str] = Field(description=_PATTERNS)
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None = Field(
        description="Why it is disabled: gone (it answered 410 Gone), failing (no success "
        "for the whole retry period, HUB_WEBHOOKS__RETRY_PERIOD), admin (set so here)."
    )
    disabled_at: datetime | None
    created_at: datetime
    start_position: int = Field(
        description="The log's position when it was created: only later events are "
        "delivered (replay reaches earlier ones)."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret also signs (both "
        "signatures are sent); null otherwise."
    )
    pending: int = Field(description="Events queued for it, not yet delivered.")
    failed: int = Field(description="Events given up after the retry period: redeliverable.")
    last_success_at: datetime | None
    failing_since: datetime | None = Field(
        description="When its current run of failures began; null after a success."
    )

    @classmethod
    def of(cls, endpoint: Endpoint) -> WebhookOut:
        return cls.model_validate(endpoint, from_attributes=True)


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, `whsec_...`): shown this once, "
        "keep it; `rotate-secret` makes a new one.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(BaseModel):
    items: list[WebhookOut] = Field(description="Every endpoint, oldest first.")


class SecretOut(BaseModel):
    """A new secret: shown this once."""

    secret: str = Field(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    previous_secret_valid_until: datetime = Field(
        description="Until then deliveries carry a signature by the previous secret too "
        "(HUB_WEBHOOKS__SECRET_GRACE, default 24 h)."
    )


class AttemptOut(BaseModel):
    """One attempt to deliver an event (or a test ping)."""

    id: int = Field(description="Increasing: newer attempts have larger ids.")
    endpoint_id: UUID
    event_id: UUID = Field(description="The event's id, sent as `webhook-id`.")
    event_type: str = Field(examples=["interaction.received.v1", "webhook.ping"])
    position: int | None = Field(description="The event's store position; null for a ping.")
    attempt: int = Field(description="1 for the first attempt of this event, then 2...")
    at: datetime
    status_code: int | None = Field(description="The HTTP status answered; null if none.")
    latency_ms: float | None = Field(description="Until the answer (or the failure).")
    outcome: Outcome = Field(
        description="delivered (2xx); retrying (will be tried again); failed (given up after "
        "the retry period); disabled (410 Gone, or the endpoint was disabled); ping (a test "
        "ping, whatever it answered)."
    )
    error: str | None = Field(description="What went wrong (type and short message).")
    response_excerpt: str | None = Field(
        description="The first characters of the answer's body, control characters removed."
    )

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls.model_validate(attempt, from_attributes=True)


class AttemptPage(BaseModel):
    items: list[AttemptOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as ?before= for the next (older) page; null on the last."
    )


class ParkedEventOut(BaseModel):
    """An event given up after the retry period, kept to be redelivered."""

    event_id: UUID
    event_type: str
    position: int
    customer_id: UUID
    attempts: int
    first_attempt_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, parked: ParkedEvent) -> ParkedEventOut:
        return cls.model_validate(parked, from_attributes=True)


class ParkedPage(BaseModel):
    items: list[ParkedEventOut] = Field(description="In log order.")
    next_after: int | None = Field(
        description="Pass as ?after= for the next page; null on the last."
    )


class RedeliverOut(BaseModel):
    endpoint_id: UUID
    redelivered: int = Field(description="Given-up events queued again, due now.")


class ReplayOut(BaseModel):
    """A replay: every matching published event from ``from_position`` to the log's head
    queued again (in order per customer, like any delivery)."""

    endpoint_id: UUID
    from_position: int
    to_position: int = Field(description="The log's head when asked.")
    queued: int = Field(description="Events queued for the endpoint.")

    @classmethod
    def of(cls, replay: Replay) -> ReplayOut:
        return cls.model_validate(replay, from_attributes=True)
