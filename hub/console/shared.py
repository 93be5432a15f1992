"""What the console's route modules share: the signed-in agent of a request (and the CSRF
check of a form post), the templates, the session cookies and :class:`LoginRequired`.

A visitor without a session who opens a page gets :class:`LoginRequired`, which
``hub.console.install`` answers with a redirect to the sign-in form.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hub.console import present
from hub.events import CHANNEL_ADDRESS_KINDS
from hub.runtime import Runtime
from hub.web.access import Principal, may
from hub.web.errors import ApiError

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
present.install(templates.env)

SESSION_COOKIE = "hub_session"
#: A random value the sign-in form's CSRF token derives from (before there is a session).
LOGIN_COOKIE = "hub_login"
VISIBLE_WAIT_SECONDS = 2.0  # how long a command waits for the views to show its effect
STATUSES = ("open", "pending", "resolved")
#: The channels a connector can send on (voice has none yet; the API channel only records).
CHANNELS = tuple(c for c in CHANNEL_ADDRESS_KINDS if c not in ("api", "voice"))


class LoginRequired(Exception):
    """Raised by a page for a visitor without a session: answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Agent:
    """The signed-in agent of a request, with the CSRF token their forms must send."""

    def __init__(self, principal: Principal, csrf: str) -> None:
        self.principal = principal
        self.name = principal.name
        self.csrf = csrf


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def current_agent(request: Request) -> Agent:
    session_id = request.cookies.get(SESSION_COOKIE)
    runtime = runtime_of(request)
    principal = (
        await run_in_threadpool(runtime.sessions.principal, session_id) if session_id else None
    )
    if principal is None or not may(principal, "act"):
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return Agent(principal, runtime.sessions.csrf_token(session_id or ""))


AgentDep = Annotated[Agent, Depends(current_agent)]


async def checked_agent(
    request: Request, agent: AgentDep, csrf: Annotated[str, Form()] = ""
) -> Agent:
    """The agent of a form post, whose form carried their CSRF token."""
    if not hmac.compare_digest(csrf, agent.csrf):
        raise ApiError(403, "stale_form", "the form is stale or came from another site; reload")
    return agent


PostingAgent = Annotated[Agent, Depends(checked_agent)]


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def invalid_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "before= is not a cursor this console gave")
