"""Published events of business activity (docs/activities.md): what a customer did in the
company's other systems (shop, billing, booking), as those systems reported it. Built so
reports of revenue, retention and attribution can be computed from the log alone: the type,
when it happened, and an amount as exact decimal text with its ISO 4217 currency."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, JsonValue

from hub.events.envelope import Envelope, Published

__all__ = ["ActivityRecorded", "ActivityRecordedData", "ActivityType"]

#: What a system can say the customer did; ``custom`` names itself in ``name``.
ActivityType = Literal[
    "order.placed",
    "order.cancelled",
    "payment.failed",
    "payment.succeeded",
    "subscription.started",
    "subscription.cancelled",
    "appointment.booked",
    "custom",
]


class ActivityRecordedData(Published):
    activity_id: UUID = Field(
        description="Derived from (source, source_id): the same activity reported again is "
        "recorded once."
    )
    type: ActivityType
    name: str | None = Field(
        description="A custom activity's name (letters, digits, `_.-`); null for the others."
    )
    amount: str | None = Field(
        description='The amount as exact decimal text, e.g. "129.00" (never a float: sum it '
        "as a decimal), 0 or more with at most 4 decimal places; null when none. Stays after "
        "an erasure."
    )
    currency: str | None = Field(
        description="ISO 4217 code of the amount (EUR, USD...); null exactly when amount is."
    )
    source: str = Field(description="The system that reported it (shop, billing, booking...).")
    source_id: str | None = Field(
        description="The source's own id of this activity (personal: null once erased)."
    )
    reference: str | None = Field(
        description="What the customer would quote: an order or invoice number (personal)."
    )
    title: str | None = Field(description="A short line to show (personal).")
    description: str | None = Field(description="More words (personal).")
    url: str | None = Field(
        description="Where the source shows it, http or https (personal: null once erased)."
    )
    metadata: dict[str, JsonValue] = Field(
        default_factory=dict, description="The source's own JSON (personal: empty once erased)."
    )


class ActivityRecorded(Envelope):
    """A system of the company reported something the customer did (an order placed, a
    payment failed, a subscription started or cancelled, an appointment booked...).
    ``occurred_at`` is when it happened in that system."""

    type: Literal["activity.recorded.v1"] = "activity.recorded.v1"
    data: ActivityRecordedData
