"""The admins' page of survey policies (``/surveys``): CSAT and NPS, each its form (on or
off, the template that asks, channels, delay, how often, the segment, the answer and comment
windows), the templates and segments to choose from. Plain forms: saving posts one policy
and redirects back (a refused form comes back as sent, with the reason). The rules are
``hub.domain.surveys``; docs/surveys.md says what each field does."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hub.console.shared import CHANNELS, Agent, AgentDep, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError
from hub.domain.surveys import KINDS, SurveyPolicy
from hub.runtime import Runtime
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)
_NUMBERS = ("delay_minutes", "every_days", "answer_hours", "comment_minutes")


def _admin(agent: Agent) -> None:
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may manage surveys")


class _Refused(Exception):
    """A form the console refuses before the domain sees it."""


def _policy(kind: str, form: FormData) -> SurveyPolicy:
    """The policy a form describes (limits are the domain's)."""
    values: dict[str, Any] = {"kind": kind, "enabled": form.get("enabled") == "on"}
    template = form.get("template")
    values["template"] = (
        template.strip() if isinstance(template, str) and template.strip() else None
    )
    values["channels"] = tuple(c for c in form.getlist("channels") if isinstance(c, str))
    for name in _NUMBERS:
        text = form.get(name)
        try:
            values[name] = int(text) if isinstance(text, str) else 0
        except ValueError:
            raise _Refused(f"{name.replace('_', ' ')}: a whole number") from None
    segment = form.get("segment_id")
    try:
        values["segment_id"] = UUID(segment) if isinstance(segment, str) and segment else None
    except ValueError:
        raise _Refused("segment: not one of the list") from None
    return SurveyPolicy(**values)


def _choices(runtime: Runtime) -> dict[str, Any]:
    """The templates and segments a policy may name."""
    templates = runtime.commands.templates.all()
    segments = runtime.commands.segments.all()
    return {
        "template_names": sorted(t.name for t in templates),
        "segments": sorted(((s.segment_id, s.name) for s in segments), key=lambda s: s[1]),
    }


async def _page(
    request: Request,
    agent: Agent,
    *,
    refused: tuple[str, str, SurveyPolicy] | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    runtime = runtime_of(request)
    found = await run_in_threadpool(runtime.commands.surveys.policies)
    choices = await run_in_threadpool(_choices, runtime)
    policies = {kind: policy for kind, (policy, _) in found.items()}
    changed = {kind: at for kind, (_, at) in found.items()}
    if refused is not None:
        policies[refused[0]] = refused[2]
    return page(
        request,
        "surveys.html",
        status=422 if refused else 200,
        agent=agent,
        policies=policies,
        changed=changed,
        channels=CHANNELS,
        refused=refused[:2] if refused else None,
        saved=saved,
        **choices,
    )


@router.get("/surveys", response_class=HTMLResponse)
async def surveys_page(request: Request, agent: AgentDep, saved: str | None = None) -> HTMLResponse:
    _admin(agent)
    return await _page(request, agent, saved=saved if saved in KINDS else None)


@router.post("/surveys/{kind}", response_class=HTMLResponse)
async def save_survey(request: Request, kind: str, agent: PostingAgent) -> Response:
    _admin(agent)
    if kind not in KINDS:
        raise ApiError(404, "not_found", f"no survey kind {kind!r}")
    form = await request.form()
    try:
        policy = _policy(kind, form)
    except _Refused as exc:
        return await _page(request, agent, refused=(kind, str(exc), SurveyPolicy(kind=kind)))
    surveys = runtime_of(request).commands.surveys
    try:
        await run_in_threadpool(lambda: surveys.save_policy(policy, actor=agent.principal.name))
    except DomainError as exc:
        field = exc.details.get("field")
        reason = f"{field.replace('_', ' ')}: {exc.message}" if field else exc.message
        return await _page(request, agent, refused=(kind, reason, replace(policy)))
    return RedirectResponse(f"/surveys?saved={kind}#{kind}", 303)
