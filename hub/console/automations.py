"""The admins' pages of rules and campaigns (``/automations``): the list with each one's
counts, a form to define a date rule, an event rule or a campaign, one's page with its
counts, the form to change it, enable or disable it, and its dry run (who would get what,
who would be skipped and why). Plain forms; the engine is ``runtime.commands.automations``
and ``hub.runtime.automation``."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hub.console.shared import CHANNELS, Agent, AgentDep, PostingAgent, page, runtime_of
from hub.domain.automations import KINDS, PURPOSES, TRIGGER_TYPES, AutomationRecord, Definition
from hub.domain.errors import DomainError, NotFound
from hub.events.common import check_text
from hub.projections.automations import counts
from hub.runtime import Runtime
from hub.runtime.automation.control import cancel_pending
from hub.runtime.automation.dry_run import dry_run
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: The access log's name of a dry run shown (customers and their messages).
DRY_RUN_ACTION = "console: automation dry run"
_MAX_FIELD = 500


def _admin(agent: Agent) -> None:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may manage rules and campaigns")


class _Refused(Exception):
    """A form the console refuses before the domain sees it."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    if len(text) > _MAX_FIELD:
        raise _Refused(f"{name.replace('_', ' ')}: at most {_MAX_FIELD} characters")
    try:
        return check_text(text).strip()
    except ValueError as exc:
        raise _Refused(f"{name.replace('_', ' ')}: {exc}") from None


def _parsed(form: FormData, name: str, parse: Any) -> Any:
    text = _text(form, name)
    if not text:
        return None
    try:
        return parse(text)
    except (ValueError, OverflowError):
        raise _Refused(f"{name.replace('_', ' ')}: {text!r} is not valid here") from None


def _match(text: str) -> dict[str, Any]:
    """``data.status=resolved`` lines (or separated by commas) to conditions."""
    found: dict[str, Any] = {}
    for line in re.split(r"[\n,]+", text):
        if line.strip():
            path, sep, value = line.partition("=")
            if not sep:
                raise _Refused(f"match: {line.strip()!r} is no field=value")
            found[path.strip()] = value.strip()
    return found


def _definition(form: FormData, current: Definition | None = None) -> Definition:
    kind = current.kind if current else _text(form, "kind")
    channels = tuple(c for c in re.split(r"[\s,]+", _text(form, "channels")) if c)
    at = _parsed(form, "at", datetime.fromisoformat)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the form's datetime-local: taken as UTC, as labelled
    delay_hours = _parsed(form, "delay_hours", float) or 0.0
    if not 0 <= delay_hours <= 366 * 24:
        raise _Refused("delay: 0 to 8784 hours")
    return Definition(
        kind=kind,
        name=_text(form, "name"),
        description=_text(form, "description") or None,
        template=_text(form, "template"),
        channels=channels,
        purpose=_text(form, "purpose") or "service",
        enabled=form.get("enabled") is not None,
        date_field=_text(form, "date_field") or None,
        offset_days=_parsed(form, "offset_days", int) or 0,
        local_time=_parsed(form, "local_time", time.fromisoformat),
        yearly=form.get("yearly") is not None,
        event_type=_text(form, "event_type") or None,
        match=_match(_text(form, "match")),
        delay=timedelta(hours=delay_hours),
        segment_id=_parsed(form, "segment_id", UUID),
        at=at,
        on=_parsed(form, "date", date.fromisoformat),
        throttle=_parsed(form, "throttle", float),
    )


def _list_context(runtime: Runtime) -> dict[str, Any]:
    records = runtime.commands.automations.all()
    with runtime.read() as conn:
        found = counts(conn, [r.automation_id for r in records])
    return {
        "automations": [(r, found[r.automation_id]) for r in records],
        **_choices(runtime),
    }


def _choices(runtime: Runtime) -> dict[str, Any]:
    return {
        "kinds": KINDS,
        "purposes": PURPOSES,
        "channels": CHANNELS,
        "trigger_types": sorted(TRIGGER_TYPES),
        "segments": runtime.commands.segments.all(),
    }


def _one_context(runtime: Runtime, automation_id: UUID) -> dict[str, Any]:
    record = runtime.commands.automations.get(automation_id)
    with runtime.read() as conn:
        found = counts(conn, [automation_id])[automation_id]
    return {"automation": record, "counts": found, **_choices(runtime)}


def _back(automation_id: UUID | None = None, **query: object) -> RedirectResponse:
    path = f"/automations/{automation_id}" if automation_id else "/automations"
    shown = {k: v for k, v in query.items() if v is not None}
    return RedirectResponse(f"{path}?{urlencode(shown)}" if shown else path, 303)


@router.get("/automations", response_class=HTMLResponse)
async def automations_page(
    request: Request, agent: AgentDep, error: str | None = None, deleted: str | None = None
) -> Response:
    """Every rule and campaign with its counts, and the form to add one."""
    _admin(agent)
    context = await run_in_threadpool(_list_context, runtime_of(request))
    return page(request, "automations.html", agent=agent, error=error, deleted=deleted, **context)


@router.post("/automations")
async def create_automation(request: Request, agent: PostingAgent) -> Response:
    """Define one; back to the form with the reason when refused."""
    _admin(agent)
    runtime = runtime_of(request)
    form = await request.form()
    try:
        wanted = _definition(form)
        record = await run_in_threadpool(
            lambda: runtime.commands.automations.define(wanted, actor=agent.name)
        )
    except (_Refused, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        context = await run_in_threadpool(_list_context, runtime)
        return page(
            request,
            "automations.html",
            status=422,
            agent=agent,
            error=message,
            submitted=form,
            **context,
        )
    return _back(record.automation_id, done="created")


@router.get("/automations/{automation_id}", response_class=HTMLResponse)
async def automation_page(
    request: Request,
    automation_id: UUID,
    agent: AgentDep,
    error: str | None = None,
    done: str | None = None,
) -> Response:
    """One rule or campaign: its counts, its form, its buttons."""
    _admin(agent)
    try:
        context = await run_in_threadpool(_one_context, runtime_of(request), automation_id)
    except NotFound:
        return page(request, "automation.html", status=404, agent=agent, automation=None)
    return page(request, "automation.html", agent=agent, error=error, done=done, **context)


@router.post("/automations/{automation_id}")
async def change_automation(request: Request, automation_id: UUID, agent: PostingAgent) -> Response:
    """Save the form (or, with ``action``, only enable, disable or delete it)."""
    _admin(agent)
    runtime = runtime_of(request)
    form = await request.form()
    action = form.get("action")
    automations = runtime.commands.automations

    def run() -> str:
        current = automations.get(automation_id)
        if action == "delete":
            if automations.delete(automation_id, actor=agent.name):
                cancel_pending(runtime.commands, runtime.views.engine, automation_id, agent.name)
            return "deleted"
        if action in ("enable", "disable"):
            wanted = replace(current.definition, enabled=action == "enable")
        else:
            wanted = _definition(form, current.definition)
        record, _ = automations.change(automation_id, wanted, actor=agent.name)
        if current.definition.enabled and not record.definition.enabled:
            cancel_pending(runtime.commands, runtime.views.engine, automation_id, agent.name)
        return "saved"

    try:
        done = await run_in_threadpool(run)
    except NotFound as exc:
        return _back(error=exc.message)
    except (_Refused, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return _back(automation_id, error=message)
    return _back(deleted="1") if done == "deleted" else _back(automation_id, done=done)


@router.post("/automations/{automation_id}/dry-run", response_class=HTMLResponse)
async def dry_run_page(request: Request, automation_id: UUID, agent: PostingAgent) -> Response:
    """The rule's page with its dry run below."""
    _admin(agent)
    runtime = runtime_of(request)
    form = await request.form()

    def run() -> dict[str, Any]:
        context = _one_context(runtime, automation_id)
        record: AutomationRecord = context["automation"]
        on = _parsed(form, "date", date.fromisoformat)
        result = dry_run(
            runtime.commands,
            runtime.views.engine,
            runtime.settings,
            runtime.policy,
            record,
            now=datetime.now(UTC),
            on=on,
            limit=200,
        )
        for row in result.rows:
            runtime.access_log.record(agent.principal, [row.customer_id], DRY_RUN_ACTION)
        return context | {"run": result, "run_date": on}

    try:
        context = await run_in_threadpool(run)
    except NotFound:
        return page(request, "automation.html", status=404, agent=agent, automation=None)
    except (_Refused, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return _back(automation_id, error=message)
    return page(request, "automation.html", agent=agent, **context)
