"""Request and response bodies of business activity (``hub.api.routes.activities``). The
schema says each field's shape; the rules across fields (an amount needs its currency, a
custom activity its name, a customer named one way) are the domain's, answered as
``invalid_command`` with ``details.field`` (``hub.domain.activities``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from hub.api.models import DateTimeText
from hub.domain.activities import AMOUNT_PATTERN, CURRENCY_PATTERN, LIMITS, NAME_PATTERN
from hub.events import ActivityType
from hub.events.common import Metadata, Text, WebUrl
from hub.web.errors import ErrorDetail

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]


class ExternalIdIn(BaseModel):
    """The customer's id in another system."""

    model_config = ConfigDict(extra="forbid")

    system: Name = Field(examples=["shop"], description="The system the id is of.")
    id: Text = Field(min_length=1, max_length=200, examples=["C-1042"])


class ActivityIn(BaseModel):
    """Something the customer did in another system. Name the customer by `customer_id` or
    `address` (an address no customer has yet registers one, as a first contact does), or
    by an `external_id` sent before together with one of them."""

    model_config = ConfigDict(extra="forbid")

    type: ActivityType
    name: Name | None = Field(
        default=None, description="A custom activity's name (only for type `custom`)."
    )
    source: Name = Field(examples=["shop"], description="The system reporting it.")
    source_id: Text = Field(
        min_length=1,
        max_length=LIMITS["source_id"],
        examples=["order-1042-placed"],
        description="The source's own id of this activity: the same (source, source_id) "
        "again is recorded once.",
    )
    occurred_at: DateTimeText = Field(description="When it happened in the source system.")
    customer_id: UUID | None = None
    address: Annotated[str, Field(min_length=1, max_length=320)] | None = Field(
        default=None,
        examples=["email:alice@example.com"],
        description="An address of the customer, kind:value; normalised by the hub.",
    )
    external_id: ExternalIdIn | None = Field(
        default=None,
        description="The customer's id in the source (or another) system: mapped to the "
        "customer the first time it comes with customer_id or address, then enough alone.",
    )
    amount: Annotated[str, Field(pattern=AMOUNT_PATTERN)] | None = Field(
        default=None,
        examples=["129.00"],
        description="Decimal text, 0 or more, at most 4 decimal places; needs `currency`.",
    )
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN)] | None = Field(
        default=None, examples=["EUR"], description="ISO 4217 code of the amount."
    )
    reference: Text | None = Field(default=None, max_length=LIMITS["reference"], examples=["#1042"])
    title: Text | None = Field(default=None, max_length=LIMITS["title"])
    description: Text | None = Field(default=None, max_length=LIMITS["description"])
    url: WebUrl | None = Field(default=None, max_length=LIMITS["url"])
    metadata: Metadata = Field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The fields as ``hub.domain.activities.check_activity`` reads them."""
        values = dict(self)
        values["external_id"] = self.external_id.model_dump() if self.external_id else None
        return values


class ActivityOut(BaseModel):
    activity_id: UUID
    customer_id: UUID
    duplicate: bool = Field(description="True when this activity had been recorded before.")


class ActivityBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one in the route, so one bad item does not fail the batch.
    activities: list[dict[str, Any]] = Field(
        description="Up to 500 activities, each shaped like the body of POST /v1/activities.",
        # Documented only: the route answers these with its own codes.
        json_schema_extra={"minItems": 1, "maxItems": 500},
    )


class ActivityBatchItemOut(BaseModel):
    index: int
    status: Literal["recorded", "duplicate", "rejected"]
    activity_id: UUID | None = None
    customer_id: UUID | None = None
    error: ErrorDetail | None = None


class ActivityBatchOut(BaseModel):
    recorded: int
    duplicates: int
    rejected: int
    results: list[ActivityBatchItemOut]
