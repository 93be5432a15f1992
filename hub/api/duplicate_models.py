"""Request and response bodies of the duplicate suggestion routes and the identity blocklist
(``hub.api.routes.duplicates``)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from hub.events.common import Text
from hub.events.duplicate_keys import MAX_BLOCKLIST_ENTRIES
from hub.projections.directory import CustomerRecord
from hub.projections.duplicate_evidence import Evidence
from hub.projections.duplicate_queries import MergePreview, Suggestion

BandName = Literal["high", "medium", "low"]


class DuplicateCustomerOut(BaseModel):
    """A customer of a suggestion: its merge group's root, as the directory shows it."""

    customer_id: UUID
    display_name: str | None
    addresses: list[str] = Field(description="Every address of the group (kind:value).")
    merged_customer_ids: list[UUID] = Field(
        default_factory=list, description="Customers already merged into this one."
    )

    @classmethod
    def of(cls, record: CustomerRecord) -> DuplicateCustomerOut:
        return cls(
            customer_id=record.customer_id,
            display_name=record.display_name,
            addresses=[i.address for i in record.identities],
            merged_customer_ids=list(record.merged_customer_ids),
        )


class EvidenceOut(BaseModel):
    """One reason to think the two are one person."""

    kind: str = Field(
        description="same_email, same_phone, same_phone_other_country, mentioned_address, "
        "mentioned_number_other_country, verified_visitor, both_mentioned, email_local_part, "
        "phone_suffix, same_name, same_first_name, similar_name, name_part, first_name_part, "
        "names_differ (docs/duplicates.md).",
        examples=["same_email"],
    )
    detail: str = Field(description="What was found, in words (personal data).")
    weight: int = Field(description="Points it adds to the score (negative: against).")

    @classmethod
    def of(cls, item: Evidence) -> EvidenceOut:
        return cls(kind=item["kind"], detail=item["detail"], weight=item["weight"])


class SuggestionOut(BaseModel):
    customer: DuplicateCustomerOut = Field(description="The other customer.")
    score: int = Field(ge=0, le=100)
    band: BandName = Field(
        description="high: a strong identifier (same mailbox or number, an address the other "
        "mentioned, a verified chat visitor); medium: e.g. a name with a matching mailbox name "
        "or phone suffix; low: e.g. the same name alone."
    )
    evidence: list[EvidenceOut]


class SuggestionsOut(BaseModel):
    customer_id: UUID = Field(description="The customer asked about (its group's root).")
    items: list[SuggestionOut] = Field(description="Highest score first.")


class PairOut(BaseModel):
    customers: list[DuplicateCustomerOut] = Field(min_length=2, max_length=2)
    score: int = Field(ge=0, le=100)
    band: BandName
    evidence: list[EvidenceOut]

    @classmethod
    def of(cls, found: Suggestion) -> PairOut:
        return cls(
            customers=[DuplicateCustomerOut.of(found.first), DuplicateCustomerOut.of(found.second)],
            score=found.score,
            band=found.band,
            evidence=[EvidenceOut.of(e) for e in found.evidence],
        )


class PairPage(BaseModel):
    items: list[PairOut] = Field(
        description="Highest score first; a page may hold fewer than `limit` when blocklisted "
        "evidence was left out."
    )
    next_cursor: str | None


class ChannelCountOut(BaseModel):
    channel: str
    survivor: int = Field(description="Messages of the customer merged into.")
    merged: int = Field(description="Messages of the customer merged.")
    total: int


class FieldChoiceOut(BaseModel):
    name: str = Field(description="A profile field, or attributes.<key>.")
    survivor: JsonValue
    merged: JsonValue
    result: JsonValue = Field(description="What the merged profile shows.")
    source: Literal["survivor", "merged", "both"] | None = Field(
        description="Whose value it shows (both: lists joined)."
    )
    conflict: bool = Field(description="Both set, to different values: the survivor's wins.")


class PreviewOut(BaseModel):
    """What the merged customer would show: the survivor (the customer in the path, merged
    into) keeps its id and wins every conflicting field it has set."""

    survivor: DuplicateCustomerOut
    merged: DuplicateCustomerOut
    channels: list[ChannelCountOut] = Field(description="Messages per channel.")
    fields: list[FieldChoiceOut]
    conflicts: list[str] = Field(description="The fields whose values differ.")

    @classmethod
    def of(cls, preview: MergePreview) -> PreviewOut:
        return cls(
            survivor=DuplicateCustomerOut.of(preview.survivor),
            merged=DuplicateCustomerOut.of(preview.merged),
            channels=[
                ChannelCountOut(
                    channel=name,
                    survivor=preview.survivor_channels.get(name, 0),
                    merged=preview.merged_channels.get(name, 0),
                    total=total,
                )
                for name, total in preview.channels.items()
            ],
            fields=[
                FieldChoiceOut(
                    name=f.name,
                    survivor=_json(f.survivor),
                    merged=_json(f.merged),
                    result=_json(f.result),
                    source=f.source,
                    conflict=f.conflict,
                )
                for f in preview.fields
            ],
            conflicts=[f.name for f in preview.conflicts],
        )


def _json(value: object) -> JsonValue:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class DecisionOut(BaseModel):
    customer_id: UUID
    other_customer_id: UUID
    dismissed: bool = Field(description="True: not the same person; false: undone.")
    changed: bool = Field(description="False when it was so already (nothing recorded).")


class BlocklistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[Text] = Field(
        max_length=MAX_BLOCKLIST_ENTRIES,
        description="Every address of the hub's blocklist (the whole list): email:... or "
        "phone:... (normalised), `*` matching anything (email:*@example.net).",
        examples=[["email:office@example.net", "phone:+37060000000"]],
    )


class BlocklistOut(BaseModel):
    entries: list[str] = Field(description="Set through this API, normalised and sorted.")
    configured: list[str] = Field(description="From HUB_IDENTITY__BLOCKLIST.")
    builtin: list[str] = Field(description="Always blocked (info@, noreply@, test@example.com...).")
