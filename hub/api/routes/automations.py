"""Rules and campaigns, for admins: define them (date rules, event rules, campaigns to a
segment), list them with their counts (scheduled, sent, skipped per reason, failed), change,
enable or disable them, delete them, and try one without sending anything (dry run).
docs/automation.md, "Rules" and "Campaigns"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.automation_models import (
    AutomationIn,
    AutomationList,
    AutomationOut,
    AutomationPatch,
    DryRunIn,
    DryRunOut,
    Kind,
)
from hub.api.openapi import errors, link
from hub.domain.automations import AutomationRecord
from hub.projections.automations import counts
from hub.runtime import Runtime
from hub.runtime.automation.control import cancel_pending
from hub.runtime.automation.dry_run import dry_run
from hub.web.access import Principal

router = APIRouter(prefix="/v1/automations", tags=["automations"])
Admin = Annotated[Principal, require("admin")]
#: The access log's name of a dry run's reads (it shows customers and their messages).
DRY_RUN_ACTION = "POST /v1/automations/{automation_id}/dry-run"

_TAKEN = (409, "`automation_name_taken`: another rule or campaign has that name (case ignored).")
_PLANNED = (
    409,
    "`campaign_planned`: the campaign's messages are planned already; only `enabled` changes.",
)
_INVALID = (
    422,
    "`invalid_command`: a field does not fit the kind (`details.field` names it); "
    "`segment_missing`: no such segment.",
)
_DRY_RUN = (422, "`dry_run_unsupported`: an event rule has no audience before its events.")
_LINKS = {
    "GetAutomation": link("GET", "/v1/automations/{automation_id}", automation_id="automation_id"),
    "ChangeAutomation": link(
        "PATCH", "/v1/automations/{automation_id}", automation_id="automation_id"
    ),
    "DryRunAutomation": link(
        "POST", "/v1/automations/{automation_id}/dry-run", automation_id="automation_id"
    ),
}


def out(runtime: Runtime, records: list[AutomationRecord]) -> list[AutomationOut]:
    """The records with their counts (one read of the views)."""
    with runtime.read() as conn:
        found = counts(conn, [r.automation_id for r in records])
    return [AutomationOut.of(r, found[r.automation_id]) for r in records]


@router.post(
    "",
    status_code=201,
    response_model=AutomationOut,
    responses={201: {"links": _LINKS}, **errors(_TAKEN, _INVALID)},
)
async def define_automation(body: AutomationIn, runtime: RuntimeDep, who: Admin) -> AutomationOut:
    """Define a date rule, an event rule or a campaign."""

    def define() -> AutomationOut:
        record = runtime.commands.automations.define(body.definition(), actor=who.name)
        return out(runtime, [record])[0]

    return await run_in_threadpool(define)


@router.get("", response_model=AutomationList)
async def list_automations(
    runtime: RuntimeDep, _: Admin, kind: Annotated[Kind | None, Query()] = None
) -> AutomationList:
    """Every rule and campaign (of ``kind``), by name, with its counts."""

    def load() -> AutomationList:
        return AutomationList(items=out(runtime, runtime.commands.automations.all(kind)))

    return await run_in_threadpool(load)


@router.get("/{automation_id}", response_model=AutomationOut)
async def get_automation(automation_id: UUID, runtime: RuntimeDep, _: Admin) -> AutomationOut:
    """One rule or campaign, with its counts."""

    def load() -> AutomationOut:
        return out(runtime, [runtime.commands.automations.get(automation_id)])[0]

    return await run_in_threadpool(load)


@router.patch(
    "/{automation_id}",
    response_model=AutomationOut,
    responses=errors(_TAKEN, _PLANNED, _INVALID),
)
async def change_automation(
    automation_id: UUID, body: AutomationPatch, runtime: RuntimeDep, who: Admin
) -> AutomationOut:
    """Change the fields given. Disabling it cancels the messages it planned that still
    wait; enabling it again plans from then on."""

    def change() -> AutomationOut:
        automations = runtime.commands.automations
        current = automations.get(automation_id)
        record, _ = automations.change(
            automation_id, body.applied_to(current.definition), actor=who.name
        )
        if current.definition.enabled and not record.definition.enabled:
            cancel_pending(runtime.commands, runtime.views.engine, automation_id, who.name)
        return out(runtime, [record])[0]

    return await run_in_threadpool(change)


@router.delete("/{automation_id}", status_code=204)
async def delete_automation(automation_id: UUID, runtime: RuntimeDep, who: Admin) -> Response:
    """Delete it, cancelling the messages it planned that still wait (again: nothing more
    happens; an id never given: 404)."""

    def delete() -> None:
        if runtime.commands.automations.delete(automation_id, actor=who.name):
            cancel_pending(runtime.commands, runtime.views.engine, automation_id, who.name)

    await run_in_threadpool(delete)
    return Response(status_code=204)


@router.post("/{automation_id}/dry-run", response_model=DryRunOut, responses=errors(_DRY_RUN))
async def dry_run_automation(
    automation_id: UUID, body: DryRunIn, runtime: RuntimeDep, who: Admin
) -> DryRunOut:
    """Who would get what, and who would be skipped and why (no consent, no channel, quiet
    hours, frequency cap, a missing variable), sending and recording nothing. Campaigns: the
    segment's members now; date rules: the customers whose date falls on ``date``."""

    def run() -> DryRunOut:
        record = runtime.commands.automations.get(automation_id)
        result = dry_run(
            runtime.commands,
            runtime.views.engine,
            runtime.settings,
            runtime.policy,
            record,
            now=datetime.now(UTC),
            on=body.on,
            limit=body.limit,
        )
        for row in result.rows:
            runtime.access_log.record(who, [row.customer_id], DRY_RUN_ACTION)
        return DryRunOut.of(result)

    return await run_in_threadpool(run)
