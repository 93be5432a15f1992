"""The customer's profile card: shown on the customer page, edited in place (``profile.js``
swaps the form into the card and the saved card back, no reload), or on its own page without
JavaScript; and the admins' page of custom attributes (docs/profile.md).

A save sends only what the agent changed (each input carries the value it was shown), so two
agents editing different fields of one profile do not undo each other.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hub.console import present
from hub.console.shared import (
    VISIBLE_WAIT_SECONDS,
    AgentDep,
    PostingAgent,
    page,
    runtime_of,
)
from hub.domain.errors import DomainError
from hub.domain.profile import ProfileState
from hub.domain.profile_values import (
    ATTRIBUTE_KINDS,
    PROFILE_FIELDS,
    AttributeDefinition,
    ProfileRejected,
)
from hub.runtime import Runtime
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: The access log's name of opening a profile's form (it shows personal data).
EDIT_ACTION = "console:profile_edit"


def _fetch(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def _error(exc: DomainError) -> Response:
    """A refusal for profile.js: the code, the message, and the field it is about."""
    body = {"code": exc.code, "message": exc.message, "field": exc.details.get("field")}
    return Response(json.dumps(body), status_code=exc.status, media_type="application/json")


# -- the card and its form --------------------------------------------------------------------


def _card(runtime: Runtime, customer_id: UUID) -> dict[str, Any] | None:
    """What ``_profile_card.html`` shows, from the views."""
    with runtime.read() as conn:
        record = runtime.views.directory.profile(conn, customer_id)
    if record is None:
        return None
    now = datetime.now(UTC)
    facts = present.profile_facts(record, {}, runtime.settings.dispatch.default_time_zone, now)
    return {"p": record, "profile": facts}


def _form(runtime: Runtime, customer_id: UUID) -> dict[str, Any]:
    """What ``_profile_form.html`` shows: the profile as the domain has it (the language an
    agent set, not the channel's guess), the attributes defined, the guessed language."""
    state = runtime.commands.profile.profile(customer_id)
    card = _card(runtime, state.customer_id)
    return {
        "state": state,
        "definitions": runtime.commands.profile.attributes(),
        "p": card["p"] if card else None,
        "guessed_language": card["p"].language if card else None,
        "zones": present.time_zones(),
    }


@router.get("/customers/{customer_id}/profile", response_class=HTMLResponse)
async def edit_profile(request: Request, customer_id: UUID, agent: AgentDep) -> Response:
    """The form: in the card (``X-Requested-With: fetch``), or a page of its own."""
    runtime = runtime_of(request)
    try:
        context = await run_in_threadpool(_form, runtime, customer_id)
    except DomainError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    group = [context["state"].customer_id]
    if context["p"] is not None:
        group += list(context["p"].merged_customer_ids)
    runtime.access_log.record(agent.principal, group, EDIT_ACTION)
    name = "_profile_form.html" if _fetch(request) else "profile_edit.html"
    return page(request, name, agent=agent, **context)


def _changes(form: FormData, definitions: list[AttributeDefinition]) -> dict[str, Any]:
    """The merge patch of what the agent changed: each input against the value it showed."""
    changes: dict[str, Any] = {}

    def text(name: str) -> str:
        found = form.get(name)
        return found if isinstance(found, str) else ""

    for name in PROFILE_FIELDS:
        if name in form and text(name) != text(f"shown.{name}"):
            changes[name] = text(name).strip() or None
    attributes: dict[str, Any] = {}
    for d in definitions:
        field, shown = f"attr.{d.key}", f"shown.attr.{d.key}"
        if shown not in form:
            continue  # not in the form the agent saw (defined since)
        value = ("true" if text(field) else "false") if d.kind == "boolean" else text(field)
        if value != text(shown):
            attributes[d.key] = _typed(d, value)
    if attributes:
        changes["attributes"] = attributes
    return changes


def _typed(definition: AttributeDefinition, text: str) -> Any:
    """A form's text as the attribute's value (blank: removed)."""
    if definition.kind == "boolean":
        return text == "true"
    if not text.strip():
        return None
    if definition.kind != "number":
        return text
    try:
        number = float(text.strip().replace(",", "."))
    except ValueError:
        raise ProfileRejected(
            "invalid_attribute", f"attributes.{definition.key}", "expected a number"
        ) from None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _shows(runtime: Runtime, state: ProfileState) -> bool:
    """Whether the views show the profile the command left."""
    with runtime.read() as conn:
        record = runtime.views.directory.profile(conn, state.customer_id)
    if record is None:
        return False
    return (
        record.display_name == state.display_name
        and record.birthday == state.birthday
        and record.time_zone == state.time_zone
        and record.company == state.company
        and record.attributes == state.attributes
        and (state.language is None or record.language == state.language)
    )


@router.post("/customers/{customer_id}/profile")
async def save_profile(request: Request, customer_id: UUID, agent: PostingAgent) -> Response:
    """Save the form: the card again (to profile.js), or back to the customer's page."""
    runtime = runtime_of(request)
    form = await request.form()

    def save() -> ProfileState:
        changes = _changes(form, runtime.commands.profile.attributes())
        return runtime.commands.profile.update(customer_id, changes, actor=agent.name)

    try:
        state = await run_in_threadpool(save)
    except DomainError as exc:
        if _fetch(request):
            return _error(exc)
        context = await run_in_threadpool(_form, runtime, customer_id)
        return page(
            request,
            "profile_edit.html",
            status=exc.status,
            agent=agent,
            error=exc.message,
            error_field=exc.details.get("field"),
            submitted=form,
            **context,
        )
    deadline = asyncio.get_running_loop().time() + VISIBLE_WAIT_SECONDS
    while not await run_in_threadpool(_shows, runtime, state):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    if not _fetch(request):
        return RedirectResponse(f"/customers/{state.customer_id}", 303)
    card = await run_in_threadpool(_card, runtime, state.customer_id)
    if card is None:  # not projected yet: the page shows it once it is
        return Response(status_code=204)
    return page(request, "_profile_card.html", agent=agent, **card)


# -- attributes (admins) ---------------------------------------------------------------------


@router.get("/attributes", response_class=HTMLResponse)
async def attributes_page(
    request: Request, agent: AgentDep, key: str = "", error: str | None = None
) -> Response:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may define attributes")
    definitions = await run_in_threadpool(runtime_of(request).commands.profile.attributes)
    editing = next((d for d in definitions if d.key == key), None)
    return page(
        request,
        "attributes.html",
        agent=agent,
        definitions=definitions,
        editing=editing,
        kinds=ATTRIBUTE_KINDS,
        error=error,
    )


@router.post("/attributes")
async def define_attribute(request: Request, agent: PostingAgent) -> Response:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may define attributes")
    form = await request.form()
    values = [v.strip() for v in str(form.get("values", "")).splitlines() if v.strip()]
    runtime = runtime_of(request)
    try:
        await run_in_threadpool(
            lambda: runtime.commands.profile.define_attribute(
                str(form.get("key", "")).strip(),
                str(form.get("type", "")),
                str(form.get("label", "")),
                values,
                actor=agent.name,
            )
        )
    except DomainError as exc:
        if _fetch(request):
            return _error(exc)
        return RedirectResponse(f"/attributes?error={quote(exc.message)}", 303)
    if _fetch(request):
        return Response(status_code=204)
    return RedirectResponse("/attributes", 303)
