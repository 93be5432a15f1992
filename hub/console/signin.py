"""Signing in and out of the console.

An agent signs in with their API token (agent or admin role) and gets a session cookie; the
token itself is never kept in the browser. The sign-in form carries a CSRF token derived from
a pre-session cookie, so a cross-site form cannot sign a victim in to the attacker's account;
after sign-in every form carries the session's own token (``shared.checked_agent``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console.shared import LOGIN_COOKIE, SESSION_COOKIE, PostingAgent, page, runtime_of
from hub.web.access import may

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path of this site (no //host, no scheme): an open redirect otherwise."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _secure(request: Request) -> bool:
    """Whether cookies get ``Secure``: served over https, or behind a proxy that is."""
    public_url = runtime_of(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https:")


def _login_page(
    request: Request, next_path: str, status: int = 200, error: str | None = None
) -> HTMLResponse:
    """The sign-in form, with the CSRF token of the visitor's pre-session cookie (set here
    when missing): a cross-site form cannot sign a victim in to the attacker's account."""
    pre_session = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        status=status,
        next=_safe_next(next_path),
        error=error,
        csrf=runtime_of(request).sessions.csrf_token(pre_session),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        pre_session,
        httponly=True,
        secure=_secure(request),
        samesite="lax",
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next)


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    pre_session = request.cookies.get(LOGIN_COOKIE)
    expected = runtime_of(request).sessions.csrf_token(pre_session or "")
    if not pre_session or not hmac.compare_digest(csrf, expected):
        return _login_page(
            request,
            next,
            status=403,
            error="This sign-in form has expired or came from another site; sign in again.",
        )
    runtime = runtime_of(request)
    opened = await run_in_threadpool(runtime.sessions.open, token.strip()) if token else None
    if opened is None or not may(opened[1], "act"):
        if opened is not None:
            await run_in_threadpool(runtime.sessions.close, opened[0])
        error = (
            "This token may not work in the console (it needs the agent or admin role)."
            if opened is not None
            else "Unknown or revoked token."
        )
        return _login_page(request, next, status=401, error=error)
    session_id, principal = opened
    log.info("console: %s signed in", principal.name)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=12 * 3600,
        httponly=True,
        secure=_secure(request),
        samesite="lax",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")  # one pre-session per sign-in
    return response


@router.post("/logout")
async def logout(request: Request, agent: PostingAgent) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await run_in_threadpool(runtime_of(request).sessions.close, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
