"""Message templates: save a version (admins), read any version, list, delete, and preview one
for a customer (the text per channel, SMS segments and encoding, the email's size). The rules
are ``hub.domain.templates`` and ``hub.domain.rendering``; docs/automation.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.api.template_models import PreviewIn, PreviewOut, TemplateIn, TemplateList, TemplateOut
from hub.web.access import Principal

router = APIRouter(prefix="/v1/templates", tags=["templates"])
Reader = Annotated[Principal, require("read")]
Admin = Annotated[Principal, require("admin")]
#: The access log's name of the preview (it reads a customer's profile).
PREVIEW_ACTION = "POST /v1/templates/{name}/preview"

_INVALID = (
    422,
    "`template_invalid`: the name, the syntax, a filter, a name starting with `_`, or a "
    "variant without what its channel needs (`details.field` says where); "
    "`template_variable_unknown`: a variable that is no profile variable, no defined "
    "attribute, no `event.` field and not declared in `defaults` (`details.variable`).",
)
_RENDER = (
    422,
    "`template_variable_missing`: a variable has no value for this customer and no default "
    "(`details.variable`); `template_no_variant`: no variant serves the channel; "
    "`template_render_failed`: the template failed on these values.",
)
_ERASED = (410, "`customer_erased`: the customer's personal data was erased.")
Version = Annotated[int | None, Query(ge=1, description="A version; none: the latest.")]


@router.put(
    "/{name}",
    response_model=TemplateOut,
    responses={201: {"model": TemplateOut, "description": "Created."}, **errors(_INVALID)},
)
async def save_template(
    name: str, body: TemplateIn, runtime: RuntimeDep, who: Admin, response: Response
) -> TemplateOut:
    """Save the template's next version (201 for a new template); the same definition as the
    latest again records nothing and answers that version."""
    record, created = await run_in_threadpool(
        lambda: runtime.commands.templates.save(name, body.model_dump(), actor=who.name)
    )
    response.status_code = 201 if created else 200
    return TemplateOut.of(record)


@router.get("", response_model=TemplateList)
async def list_templates(runtime: RuntimeDep, _: Reader) -> TemplateList:
    """Every template's latest version, by name."""
    found = await run_in_threadpool(runtime.commands.templates.all)
    return TemplateList(items=[TemplateOut.of(r) for r in found])


@router.get("/{name}", response_model=TemplateOut)
async def get_template(
    name: str, runtime: RuntimeDep, _: Reader, version: Version = None
) -> TemplateOut:
    """The template's latest version, or `version` (404 for one it never had)."""
    record = await run_in_threadpool(runtime.commands.templates.get, name, version)
    return TemplateOut.of(record)


@router.delete("/{name}", status_code=204)
async def delete_template(name: str, runtime: RuntimeDep, who: Admin) -> Response:
    """Delete the template (again: nothing more happens; a name never saved: 404). Its
    versions stay in the log: messages sent with them stay explained."""
    await run_in_threadpool(lambda: runtime.commands.templates.delete(name, actor=who.name))
    return Response(status_code=204)


@router.post("/{name}/preview", response_model=PreviewOut, responses=errors(_RENDER, _ERASED))
async def preview_template(
    name: str, body: PreviewIn, runtime: RuntimeDep, who: Reader
) -> PreviewOut:
    """The template rendered for a customer on each channel (or `channel`): the text, an
    email's subject, HTML and size in bytes, SMS segments and encoding, WhatsApp's approved
    template and parameters. Recorded in the customer's access log."""

    def render() -> PreviewOut:
        commands = runtime.commands
        found = commands.templates.preview(
            commands.cipher,
            name,
            body.customer_id,
            channel=body.channel,
            language=body.language,
            event=body.event,
            version=body.version,
        )
        runtime.access_log.record(who, list(found.customer_ids), PREVIEW_ACTION)
        return PreviewOut.of(found)

    return await run_in_threadpool(render)
