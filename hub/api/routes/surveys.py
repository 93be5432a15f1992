"""Survey policies: CSAT after a resolved conversation, NPS on its own schedule (admins
save, readers read). How they work is docs/surveys.md; the rules are
``hub.domain.surveys`` and the planning ``hub.runtime.surveys``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.domain.surveys import SurveyPolicy
from hub.events.common import Channel
from hub.web.access import Principal

router = APIRouter(tags=["surveys"])
Reader = Annotated[Principal, require("read")]
Admin = Annotated[Principal, require("admin")]
Kind = Literal["csat", "nps"]

_INVALID = (
    422,
    "`invalid_command`: a value out of range, an enabled survey without a template (or, NPS, "
    "without channels); `template_missing`, `segment_missing`: they do not exist "
    "(`details.field` says which).",
)


class SurveyPolicyIn(BaseModel):
    """A survey policy. Off until ``enabled``; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    template: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="The template that asks the question (per language)."
    )
    channels: Annotated[list[Channel], Field(max_length=9)] = Field(
        default_factory=list,
        description="CSAT: empty for the conversation's own channel; NPS: in preference order.",
    )
    delay_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="CSAT: minutes after the resolution (not if the customer wrote since, "
        "or the conversation was reopened).",
    )
    every_days: int = Field(
        default=30,
        ge=0,
        le=3660,
        description="At most one survey of this kind per customer in this many days; NPS: "
        "its schedule (each customer is asked once every this many days).",
    )
    segment_id: UUID | None = Field(
        default=None, description="Only customers of this segment (none: every customer)."
    )
    answer_hours: int = Field(
        default=72, ge=1, le=30 * 24, description="How long a reply still answers it."
    )
    comment_minutes: int = Field(
        default=30,
        ge=0,
        le=24 * 60,
        description="The customer's next message within this time is the score's comment.",
    )


class SurveyPolicyOut(SurveyPolicyIn):
    kind: Kind
    changed_at: dt.datetime | None = Field(description="Last saved; null if never.")

    @classmethod
    def of(cls, policy: SurveyPolicy, changed_at: dt.datetime | None) -> SurveyPolicyOut:
        values = policy.stored()
        return cls(**values, changed_at=changed_at)


class SurveyPolicyList(BaseModel):
    items: list[SurveyPolicyOut]


@router.get("/v1/survey-policies", response_model=SurveyPolicyList)
async def list_survey_policies(runtime: RuntimeDep, _: Reader) -> SurveyPolicyList:
    """Both survey policies (one never saved is off)."""
    found = await run_in_threadpool(runtime.commands.surveys.policies)
    return SurveyPolicyList(items=[SurveyPolicyOut.of(p, at) for p, at in found.values()])


@router.get("/v1/survey-policies/{kind}", response_model=SurveyPolicyOut)
async def get_survey_policy(kind: Kind, runtime: RuntimeDep, _: Reader) -> SurveyPolicyOut:
    """One survey policy."""
    found = await run_in_threadpool(runtime.commands.surveys.policies)
    return SurveyPolicyOut.of(*found[kind])


@router.put(
    "/v1/survey-policies/{kind}", response_model=SurveyPolicyOut, responses=errors(_INVALID)
)
async def save_survey_policy(
    kind: Kind, body: SurveyPolicyIn, runtime: RuntimeDep, who: Admin, response: Response
) -> SurveyPolicyOut:
    """Save a survey policy. It applies to resolutions recorded from now on (CSAT) and to the
    next NPS planning round."""
    wanted = SurveyPolicy.loaded({**body.model_dump(mode="json"), "kind": kind})
    surveys = runtime.commands.surveys
    await run_in_threadpool(lambda: surveys.save_policy(wanted, actor=who.name))
    found = await run_in_threadpool(surveys.policies)
    response.status_code = 200
    return SurveyPolicyOut.of(*found[kind])
