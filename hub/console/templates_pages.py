"""The admins' pages of message templates (``/templates``): every template, and one template's
page with its edit form (a fieldset per variant: language, channel, SMS/chat text, email
subject, text and HTML, WhatsApp's approved template), its versions, deleting it, and a
preview for a customer (the text per channel, SMS segments and encoding, the email's size).

Plain forms, no JavaScript: saving posts the whole form and redirects back to the page (a
refused form comes back as it was sent, with the reason); a new variant is the blank fieldset
at the end, a variant is removed by emptying it. The rules are ``hub.domain.templates``.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hub.console.shared import Agent, AgentDep, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError, NotFound
from hub.domain.rendering import Rendered, email_size, sms_segments
from hub.domain.templates import CHANNELS, MAX_PART, Preview, TemplateRecord
from hub.runtime import Runtime
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
#: The access log's name of a preview in the console (it reads a customer's profile).
PREVIEW_ACTION = "console:template_preview"
#: The most variants the form takes (the domain's own limit is the API's).
MAX_FORM_VARIANTS = 50


def _admin(agent: Agent) -> None:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may manage message templates")


def _path(name: str) -> str:
    return f"/templates/{quote(name, safe='')}"


def _field(form: FormData, name: str) -> str | None:
    """A form field's text, None when empty or absent (limits are the domain's)."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.replace("\r\n", "\n")


#: The fields of a variant's fieldset (``v<i>_<part>``).
_PARTS = (
    "language",
    "channel",
    "text",
    "subject",
    "email_text",
    "html",
    "wa_name",
    "wa_language",
    "wa_parameters",
)


def _variant(got: dict[str, str | None]) -> dict[str, Any] | None:
    """The variant of one fieldset; None for an empty one."""
    contents = ("text", "subject", "email_text", "html", "wa_name", "wa_parameters")
    if not any(got[part] for part in contents):
        return None
    subject, email_text, html = got["subject"], got["email_text"], got["html"]
    email = {"subject": subject, "text": email_text, "html": html}
    whatsapp = {
        "name": (got["wa_name"] or "").strip(),
        "language": (got["wa_language"] or "").strip(),
        "parameters": (got["wa_parameters"] or "").splitlines(),
    }
    return {
        "language": (got["language"] or "").strip(),
        "channel": got["channel"],
        "text": got["text"],
        "email": email if subject or email_text or html else None,
        "whatsapp": whatsapp if got["wa_name"] or got["wa_parameters"] else None,
    }


def definition_of(form: FormData) -> dict[str, Any]:
    """The definition the edit form describes (the shape ``hub.domain.templates`` checks):
    ``defaults`` as ``key = value`` lines, the variants ``v0_...``, ``v1_...``, an empty one
    left out."""
    defaults: dict[str, str] = {}
    for line in (_field(form, "defaults") or "").splitlines():
        key, sep, value = line.partition("=")
        if line.strip():
            defaults[key.strip()] = value.strip() if sep else ""
    variants = []
    for i in range(MAX_FORM_VARIANTS):
        if f"v{i}_language" not in form:
            break
        variant = _variant({p: _field(form, f"v{i}_{p}") for p in _PARTS})
        if variant is not None:
            variants.append(variant)
    return {
        "default_language": (_field(form, "default_language") or "").strip(),
        "description": _field(form, "description"),
        "defaults": defaults,
        "variants": variants,
    }


def _form_values(record: TemplateRecord | None) -> dict[str, Any]:
    """What the edit form shows of a saved version (a blank variant after its own)."""
    if record is None:
        return {"default_language": "en", "description": "", "defaults": "", "variants": [{}]}
    variants = []
    for v in record.variants:
        email, whatsapp = v.get("email") or {}, v.get("whatsapp") or {}
        variants.append(
            {
                "language": v["language"],
                "channel": v["channel"] or "",
                "text": v.get("text") or "",
                "subject": email.get("subject") or "",
                "email_text": email.get("text") or "",
                "html": email.get("html") or "",
                "wa_name": whatsapp.get("name") or "",
                "wa_language": whatsapp.get("language") or "",
                "wa_parameters": "\n".join(whatsapp.get("parameters") or []),
            }
        )
    return {
        "default_language": record.default_language,
        "description": record.description or "",
        "defaults": "\n".join(f"{k} = {v}" for k, v in record.defaults.items()),
        "variants": [*variants, {}],
    }


def _submitted(form: FormData) -> dict[str, Any]:
    """The form as it was sent, to show again with the reason it was refused."""
    variants = []
    for i in range(MAX_FORM_VARIANTS):
        if f"v{i}_language" not in form:
            break
        variants.append({p: str(form.get(f"v{i}_{p}") or "") for p in _PARTS})
    if not variants or any(variants[-1].values()):
        variants.append({})
    return {
        "default_language": str(form.get("default_language") or ""),
        "description": str(form.get("description") or ""),
        "defaults": str(form.get("defaults") or ""),
        "variants": variants,
    }


def _shown(rendered: Rendered) -> dict[str, Any]:
    """One channel of a preview, with what it costs."""
    return {
        "r": rendered,
        "sms": sms_segments(rendered.text)
        if rendered.channel == "sms" and rendered.text is not None
        else None,
        "email_bytes": email_size(rendered) if rendered.channel == "email" else None,
    }


def _context(
    runtime: Runtime, name: str, version: int | None
) -> tuple[TemplateRecord | None, dict[str, Any]]:
    try:
        record: TemplateRecord | None = runtime.commands.templates.get(name, version)
    except NotFound:
        record = None
    return record, {"channels": CHANNELS, "max_part": MAX_PART, "path": _path(name)}


@router.get("/templates", response_class=HTMLResponse)
async def templates_page(
    request: Request,
    agent: AgentDep,
    deleted: str | None = None,
    name: str | None = None,
) -> Response:
    """Every template, and a box to open one by name (a new one: its empty form)."""
    _admin(agent)
    if name and name.strip():
        return RedirectResponse(_path(name.strip()), 303)
    found = await run_in_threadpool(runtime_of(request).commands.templates.all)
    return page(request, "templates.html", agent=agent, templates=found, deleted=deleted)


@router.get("/templates/{name}", response_class=HTMLResponse)
async def template_page(
    request: Request,
    name: str,
    agent: AgentDep,
    version: int | None = None,
    saved: int | None = None,
    customer_id: str | None = None,
    channel: str | None = None,
    language: str | None = None,
) -> Response:
    """A template's form (a new one's when nothing has the name), its versions, and a
    preview for ``customer_id`` when given."""
    _admin(agent)
    runtime = runtime_of(request)
    record, extra = await run_in_threadpool(_context, runtime, name, version)
    preview: list[dict[str, Any]] | None = None
    preview_error: str | None = None
    if customer_id and record is not None:
        try:
            found = await run_in_threadpool(
                _preview, runtime, agent, record, customer_id, channel or None, language or None
            )
            preview = [_shown(r) for r in found.rendered]
        except (DomainError, ValueError) as exc:
            preview_error = exc.message if isinstance(exc, DomainError) else str(exc)
    return page(
        request,
        "template.html",
        status=404 if record is None and version is not None else 200,
        agent=agent,
        template_name=name,
        record=record,
        form=_form_values(record),
        saved=saved,
        preview=preview,
        preview_error=preview_error,
        asked={"customer_id": customer_id or "", "channel": channel or "", "language": language},
        **extra,
    )


def _preview(
    runtime: Runtime,
    agent: Agent,
    record: TemplateRecord,
    customer_id: str,
    channel: str | None,
    language: str | None,
) -> Preview:
    try:
        customer = UUID(customer_id.strip())
    except ValueError:
        raise ValueError(f"{customer_id!r} is no customer id") from None
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f"no channel {channel!r}")
    commands = runtime.commands
    found = commands.templates.preview(
        commands.cipher,
        record.name,
        customer,
        channel=channel,
        language=language,
        version=record.version,
    )
    runtime.access_log.record(agent.principal, list(found.customer_ids), PREVIEW_ACTION)
    return found


@router.post("/templates/{name}")
async def save_template(request: Request, name: str, agent: PostingAgent) -> Response:
    """Save the form as the template's next version."""
    _admin(agent)
    runtime = runtime_of(request)
    form = await request.form()
    definition = definition_of(form)
    try:
        record, _ = await run_in_threadpool(
            lambda: runtime.commands.templates.save(name, definition, actor=agent.name)
        )
    except DomainError as exc:
        current, extra = await run_in_threadpool(_context, runtime, name, None)
        return page(
            request,
            "template.html",
            status=422,
            agent=agent,
            template_name=name,
            record=current,
            form=_submitted(form),
            error=exc.message,
            asked={"customer_id": "", "channel": "", "language": None},
            **extra,
        )
    return RedirectResponse(f"{_path(record.name)}?saved={record.version}", 303)


@router.post("/templates/{name}/delete")
async def delete_template(request: Request, name: str, agent: PostingAgent) -> Response:
    """Delete the template (its versions stay in the log)."""
    _admin(agent)
    runtime = runtime_of(request)
    with suppress(NotFound):  # gone already: the list shows it is
        await run_in_threadpool(lambda: runtime.commands.templates.delete(name, actor=agent.name))
    return RedirectResponse("/templates?" + urlencode({"deleted": name}), 303)
