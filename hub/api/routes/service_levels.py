"""Business calendars and SLA policies: save (admins), read, list, delete. What they measure
is docs/analytics.md; the rules are ``hub.domain.calendars`` and
``hub.domain.service_levels``. A change applies to what the service projection measures from
then on; ``hub projections rebuild service`` measures the past again with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.api.service_models import CalendarIn, DefinitionList, DefinitionOut, SlaPolicyIn
from hub.domain.service_levels import DefinitionRecord
from hub.web.access import Principal

router = APIRouter(tags=["service levels"])
Reader = Annotated[Principal, require("read")]
Admin = Annotated[Principal, require("admin")]

_CALENDAR_INVALID = (
    422,
    "`invalid_command`: a name, a time zone, intervals that overlap or end before they "
    "start, a country or subdivision the holidays data does not know, a calendar never "
    "open (`details.field` says where).",
)
_POLICY_INVALID = (
    422,
    "`invalid_command`: a name, no target at all, or a calendar that does not exist "
    "(`details.field`); `segment_missing`: a segment that does not exist or was deleted "
    "(`details.field` is `segments`, `details.segment_id` says which).",
)
_IN_USE = (409, "`calendar_in_use`: an SLA policy counts in it (`details.policies`).")
_SAVED: dict[int | str, dict[str, Any]] = {201: {"model": DefinitionOut, "description": "Created."}}


async def _save(
    save: Callable[..., tuple[DefinitionRecord, bool]],
    name: str,
    body: dict[str, Any],
    who: Principal,
    response: Response,
) -> DefinitionOut:
    record, created = await run_in_threadpool(lambda: save(name, body, actor=who.name))
    response.status_code = 201 if created else 200
    return DefinitionOut.of(record)


@router.put(
    "/v1/calendars/{name}",
    response_model=DefinitionOut,
    responses={**_SAVED, **errors(_CALENDAR_INVALID)},
)
async def save_calendar(
    name: str, body: CalendarIn, runtime: RuntimeDep, who: Admin, response: Response
) -> DefinitionOut:
    """Save a business calendar (201 when new). The one named `default` counts the times of
    conversations no SLA policy covers."""
    body_json = body.model_dump(mode="json")
    return await _save(
        runtime.commands.service_levels.save_calendar, name, body_json, who, response
    )


@router.get("/v1/calendars", response_model=DefinitionList)
async def list_calendars(runtime: RuntimeDep, _: Reader) -> DefinitionList:
    """Every business calendar, by name."""
    found = await run_in_threadpool(runtime.commands.service_levels.calendars)
    return DefinitionList(items=[DefinitionOut.of(r) for r in found])


@router.get("/v1/calendars/{name}", response_model=DefinitionOut)
async def get_calendar(name: str, runtime: RuntimeDep, _: Reader) -> DefinitionOut:
    """One calendar as stored."""
    record = await run_in_threadpool(runtime.commands.service_levels.calendar, name)
    return DefinitionOut.of(record)


@router.delete("/v1/calendars/{name}", status_code=204, responses=errors(_IN_USE))
async def delete_calendar(name: str, runtime: RuntimeDep, who: Admin) -> Response:
    """Delete a calendar no SLA policy counts in."""
    commands = runtime.commands.service_levels
    await run_in_threadpool(lambda: commands.delete_calendar(name, actor=who.name))
    return Response(status_code=204)


@router.put(
    "/v1/sla-policies/{name}",
    response_model=DefinitionOut,
    responses={**_SAVED, **errors(_POLICY_INVALID)},
)
async def save_policy(
    name: str, body: SlaPolicyIn, runtime: RuntimeDep, who: Admin, response: Response
) -> DefinitionOut:
    """Save an SLA policy (201 when new). Open conversations it covers from now on carry its
    due times; a breach is recorded as `conversation.sla_breached.v1` when it happens."""
    save = runtime.commands.service_levels.save_policy
    return await _save(save, name, body.model_dump(mode="json"), who, response)


@router.get("/v1/sla-policies", response_model=DefinitionList)
async def list_policies(runtime: RuntimeDep, _: Reader) -> DefinitionList:
    """Every SLA policy, by name."""
    found = await run_in_threadpool(runtime.commands.service_levels.policies)
    return DefinitionList(items=[DefinitionOut.of(r) for r in found])


@router.get("/v1/sla-policies/{name}", response_model=DefinitionOut)
async def get_policy(name: str, runtime: RuntimeDep, _: Reader) -> DefinitionOut:
    """One SLA policy as stored."""
    record = await run_in_threadpool(runtime.commands.service_levels.policy, name)
    return DefinitionOut.of(record)


@router.delete("/v1/sla-policies/{name}", status_code=204)
async def delete_policy(name: str, runtime: RuntimeDep, who: Admin) -> Response:
    """Delete an SLA policy (conversations measured against it keep their figures until a
    rebuild)."""
    commands = runtime.commands.service_levels
    await run_in_threadpool(lambda: commands.delete_policy(name, actor=who.name))
    return Response(status_code=204)
