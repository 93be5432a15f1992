"""The base of every published model, and the envelope every published event carries
(``hub.events.published`` lists the events)."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field

from hub.events.common import Frozen

__all__ = ["Envelope", "Published"]


class Published(Frozen):
    """Base of published models: they always carry every field, defaults included, and
    their schemas say so."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class Envelope(Published):
    """Fields every published event carries."""

    id: UUID = Field(description="Event id (UUIDv7), stable across replays: dedupe on it.")
    type: str = Field(description="Event type with its version.")
    occurred_at: AwareDatetime = Field(
        description="When it happened: the provider's time for interactions."
    )
    recorded_at: AwareDatetime = Field(description="When the hub recorded it.")
    customer_id: UUID = Field(description="The customer whose timeline this event belongs to.")
    position: int = Field(
        ge=1, description="Position in the hub's event store; increases in recording order."
    )
    causation_id: UUID | None = Field(
        default=None, description="Id of the interaction or command that caused this event."
    )
    correlation_id: UUID | None = Field(
        default=None, description="Id shared by every event of one request or interaction."
    )
    erased: bool = Field(
        default=False,
        description="True when the customer's personal data was erased: personal fields are "
        "then null or empty.",
    )
