"""Request and response bodies of the segments API (``hub.api.routes.segments``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from hub.api.models import CustomerOut
from hub.domain.segments import MAX_DESCRIPTION, MAX_NAME, SegmentRecord
from hub.events.common import Text
from hub.events.segments import FilterTree

#: Trimmed by the domain, which refuses a name of spaces alone (``invalid_command``).
SegmentName = Annotated[Text, Field(min_length=1, max_length=MAX_NAME)]
_FILTER = (
    "The filter: a JSON tree of conditions (`all`, `any`, `not`; `tag`, `attribute`, "
    "`channel`, `consent`, `language`, `time_zone`, `source`, `first_contact`, "
    "`last_contact`, `open_conversations`), at most 8 levels deep and 100 conditions "
    "(`invalid_filter` otherwise, like a value that does not fit its comparison; "
    "docs/segments.md)."
)


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SegmentName = Field(
        description="Unique on the hub, case ignored; surrounding spaces are dropped."
    )
    description: Annotated[Text, Field(max_length=MAX_DESCRIPTION)] | None = None
    filter: FilterTree = Field(description=_FILTER)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterTree = Field(description=_FILTER)


class SegmentOut(BaseModel):
    segment_id: UUID
    name: str
    description: str | None
    filter: dict[str, Any] = Field(
        description="The filter as stored: the tree of `SegmentIn.filter`, every key named, "
        "nothing unset."
    )
    created_at: datetime
    updated_at: datetime
    created_by: str | None = Field(description="Who defined it (a token's name).")
    updated_by: str | None = Field(description="Who changed it last.")

    @classmethod
    def of(cls, record: SegmentRecord) -> SegmentOut:
        return cls(
            segment_id=record.segment_id,
            name=record.name,
            description=record.description,
            filter=record.filter,
            created_at=record.created_at,
            updated_at=record.updated_at,
            created_by=record.created_by,
            updated_by=record.updated_by,
        )


class SegmentList(BaseModel):
    items: list[SegmentOut] = Field(description="Every segment, by name.")


class SegmentCustomers(BaseModel):
    segment_id: UUID | None = Field(description="The segment read, or null for a preview.")
    total: int = Field(
        description="How many customers match in all (a merged group counts once). Counted "
        "by the views; reused for up to 2 s after they moved (docs/segments.md)."
    )
    items: list[CustomerOut] = Field(description="Newest customers first.")
    next_cursor: str | None = Field(description="`cursor=` of the next page; null on the last.")
