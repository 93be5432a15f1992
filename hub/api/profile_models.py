"""Request and response bodies of the profile API: the merge patch of a customer's profile,
custom attribute definitions, and the acquisition source an API client may give with an
interaction (docs/profile.md). The rules beyond the schema (a real date, an IANA zone, a
defined attribute of the right type) are the domain's (``hub.domain.profile_values``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from hub.domain.profile_values import MAX_COMPANY, MAX_LANGUAGE, MAX_NAME, MAX_STRING_ATTRIBUTE
from hub.events.common import Text
from hub.events.inbound import InboundSource, Referrer, SourceName

#: A custom attribute's key in a patch (one that is not defined is ``unknown_attribute``).
AttributeKey = Annotated[str, Field(max_length=40)]
#: A custom attribute's value: text (string, date, enum), a number or a boolean.
AttributeValue = (
    StrictBool | StrictInt | StrictFloat | Annotated[Text, Field(max_length=MAX_STRING_ATTRIBUTE)]
)
AttributeType = Literal["string", "number", "boolean", "date", "enum"]


class ProfilePatch(BaseModel):
    """A JSON merge patch of the profile (RFC 7396): a field left out stays as it is, null
    clears it; blank text clears it too. ``attributes`` patches custom attributes by key
    (null clears every one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"time_zone": "Asia/Tokyo", "attributes": {"plan": "gold"}}]
        },
    )

    display_name: Text | None = Field(default=None, max_length=MAX_NAME, description="The name.")
    birthday: Text | None = Field(
        default=None,
        max_length=100,
        description="YYYY-MM-DD, or --MM-DD when the year is not known.",
        examples=["1990-04-21", "--04-21"],
    )
    time_zone: Text | None = Field(
        default=None,
        max_length=100,
        description="IANA time zone (case-insensitive); quiet hours use it before any guess.",
        examples=["Europe/Vilnius"],
    )
    language: Text | None = Field(
        default=None,
        max_length=MAX_LANGUAGE,
        description="BCP 47 language tag, normalised (pt-br -> pt-BR); shown before the "
        "language the channel said.",
        examples=["lt", "pt-BR"],
    )
    company: Text | None = Field(default=None, max_length=MAX_COMPANY, examples=["Acme UAB"])
    attributes: dict[AttributeKey, AttributeValue | None] | None = Field(
        default=None,
        max_length=200,
        description="Custom attributes by key (GET /v1/attributes), each checked against its "
        "type; null removes one.",
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (the merge patch itself)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ProfileOut(BaseModel):
    """A customer's editable profile after the change (a merged group as one: the root's
    value where set, else the first member's)."""

    customer_id: UUID = Field(description="The group's root: a merged customer's edits go there.")
    display_name: str | None
    birthday: str | None
    time_zone: str | None = Field(description="The zone an agent set.")
    language: str | None = Field(description="The language an agent set.")
    company: str | None
    attributes: dict[str, AttributeValue]
    changed: list[str] = Field(
        description="What this request changed (profile fields, attributes.<key>); empty: "
        "nothing, and nothing was recorded."
    )


class AttributeIn(BaseModel):
    """A custom attribute's definition."""

    model_config = ConfigDict(extra="forbid")

    type: AttributeType = Field(description="What its values are; a key keeps its type.")
    label: Text = Field(min_length=1, max_length=100, description="What agents read.")
    values: list[Annotated[Text, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=100,
        description="An enum's allowed values (1 to 100, distinct); none for other types.",
    )


class AttributeOut(BaseModel):
    key: str
    type: AttributeType
    label: str
    values: list[str] = Field(description="An enum's allowed values, in order.")


class AttributeDefinedOut(AttributeOut):
    changed: bool = Field(description="False: the same definition again, nothing recorded.")


class AttributeList(BaseModel):
    items: list[AttributeOut]


class SourceIn(BaseModel):
    """Where the customer came from, as the client knows it (kept only when the interaction
    is the customer's first contact)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceName | None = Field(default=None, examples=["newsletter"])
    medium: SourceName | None = Field(default=None, examples=["email"])
    campaign: SourceName | None = Field(default=None, examples=["spring-sale"])
    referrer: Referrer | None = Field(
        default=None, description="The page that led to the contact (personal)."
    )

    def to_inbound(self) -> InboundSource:
        return InboundSource(via="api", **self.model_dump())
