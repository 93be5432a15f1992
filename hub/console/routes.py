"""The console's pages and form posts: sign in, the queue, search, a customer, and the agent's
commands on a conversation (reply, note, assign, status), plus the live feed of a customer.

Every page works without JavaScript (forms post and redirect back); ``static/console.js`` adds
live updates, endless scrolling back and posting without a reload. Forms carry the session's
CSRF token (the sign-in form one of a pre-session cookie); a reply form also carries an
idempotency key, so a double submit sends once. Live feeds end once their session does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.templating import Jinja2Templates

from hub.api.auth import CREDENTIAL_ENDED, SCOPES, StreamCredential
from hub.api.errors import ApiError
from hub.api.positions import MAX_POSITION
from hub.console import present
from hub.console.queries import QueueFilter, assignees, customer_page, queue, timeline_after
from hub.domain.errors import DomainError, InvalidCommand
from hub.domain.outbound import QuietHours
from hub.events import CHANNEL_ADDRESS_KINDS
from hub.projections.timeline import TimelineItem
from hub.runtime import Runtime
from hub.store.tokens import Principal

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
present.install(templates.env)

SESSION_COOKIE = "hub_session"
#: A random value the sign-in form's CSRF token derives from (before there is a session).
LOGIN_COOKIE = "hub_login"
_LIVE_POLL_SECONDS = 2.0  # how often a live feed looks for what other processes wrote
_VISIBLE_WAIT_SECONDS = 2.0  # how long a command waits for the views to show its effect
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


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def current_agent(request: Request) -> Agent:
    session_id = request.cookies.get(SESSION_COOKIE)
    runtime = _runtime(request)
    principal = (
        await run_in_threadpool(runtime.sessions.principal, session_id) if session_id else None
    )
    if principal is None or "act" not in SCOPES[principal.role]:
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


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def _live_credential(request: Request) -> StreamCredential:
    """The re-check of a live feed's session: it ends when the agent signs out, the session
    expires or its token is revoked."""
    runtime = _runtime(request)
    session_id = request.cookies.get(SESSION_COOKIE) or ""

    def check() -> bool:
        principal = runtime.sessions.current(session_id)
        return principal is not None and "act" in SCOPES[principal.role]

    return StreamCredential(
        check, lambda: runtime.sessions.revocations, runtime.settings.stream_recheck_seconds
    )


def _ended() -> ServerSentEvent:
    """A live feed's last event: console.js stops listening and says the session ended."""
    return ServerSentEvent(raw_data=json.dumps(CREDENTIAL_ENDED), event="error")


def _invalid_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "before= is not a cursor this console gave")


def _safe_next(value: str | None) -> str:
    """Only a path of this site (no //host, no scheme): an open redirect otherwise."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


# -- signing in -----------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    """Whether cookies get ``Secure``: served over https, or behind a proxy that is."""
    public_url = _runtime(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https:")


def _login_page(
    request: Request, next_path: str, status: int = 200, error: str | None = None
) -> HTMLResponse:
    """The sign-in form, with the CSRF token of the visitor's pre-session cookie (set here
    when missing): a cross-site form cannot sign a victim in to the attacker's account."""
    pre_session = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = _page(
        request,
        "login.html",
        status=status,
        next=_safe_next(next_path),
        error=error,
        csrf=_runtime(request).sessions.csrf_token(pre_session),
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
    expected = _runtime(request).sessions.csrf_token(pre_session or "")
    if not pre_session or not hmac.compare_digest(csrf, expected):
        return _login_page(
            request,
            next,
            status=403,
            error="This sign-in form has expired or came from another site; sign in again.",
        )
    runtime = _runtime(request)
    opened = await run_in_threadpool(runtime.sessions.open, token.strip()) if token else None
    if opened is None or "act" not in SCOPES[opened[1].role]:
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
        await run_in_threadpool(_runtime(request).sessions.close, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the queue and search -------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    agent: AgentDep,
    status: Annotated[str, Query()] = "active",
    channel: Annotated[str, Query()] = "",
    assignee: Annotated[str, Query()] = "",
    before: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    runtime = _runtime(request)
    statuses = ("open", "pending") if status == "active" else (status,)
    if not set(statuses) <= set(STATUSES):
        statuses, status = ("open", "pending"), "active"
    who = {"": None, "me": agent.name, "none": ""}.get(assignee, assignee)
    wanted = QueueFilter(statuses, channel if channel in CHANNELS else None, who)

    def load() -> tuple[Any, Any, list[str]]:
        with runtime.read() as conn:
            rows, cursor = queue(conn, runtime.views, wanted, before)
            return rows, cursor, assignees(conn)

    try:
        rows, cursor, people = await run_in_threadpool(load)
    except ValueError:  # a cursor this console did not make
        raise _invalid_cursor() from None
    return _page(
        request,
        "queue.html",
        agent=agent,
        rows=rows,
        cursor=cursor,
        people=people,
        channels=CHANNELS,
        filters={"status": status, "channel": channel, "assignee": assignee},
    )


@router.get("/customers", response_class=HTMLResponse)
async def search_page(
    request: Request, agent: AgentDep, q: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    runtime = _runtime(request)
    text = q.strip()
    results: list[Any] = []
    if len(text) >= 2:

        def load() -> list[Any]:
            with runtime.read() as conn:
                found, _ = runtime.views.directory.search(conn, text, 50, None)
                return found

        results = await run_in_threadpool(load)
    return _page(request, "search.html", agent=agent, q=text, results=results)


# -- a customer -----------------------------------------------------------------------------


def _quiet(runtime: Runtime) -> QuietHours:
    d = runtime.settings.dispatch
    return QuietHours(d.quiet_hours_start, d.quiet_hours_end, d.default_time_zone, d.awake_window)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_view(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    runtime = _runtime(request)
    context = await run_in_threadpool(_customer_context, runtime, customer_id)
    if context is None:
        return _page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)
    if context["page"].profile.customer_id != customer_id:  # a merged customer: its group
        return RedirectResponse(f"/customers/{context['page'].profile.customer_id}", 303)
    return _page(request, "customer.html", agent=agent, error=error, **context)


def _customer_context(runtime: Runtime, customer_id: UUID) -> dict[str, Any] | None:
    with runtime.read() as conn:
        page = customer_page(conn, runtime.views, customer_id)
    if page is None:
        return None
    now = datetime.now(UTC)
    quiet = _quiet(runtime)
    outbound = runtime.store.app.outbound
    options = {}
    for conversation in page.active:
        try:
            options[conversation.conversation_id] = outbound.reply_options(
                conversation.conversation_id,
                policy=runtime.policy,
                quiet=quiet,
                known_channels=CHANNELS,
                now=now,
            )
        except DomainError:  # a conversation the views show before the store is read
            options[conversation.conversation_id] = []
    consent: dict[str, bool] = {}
    for member in page.group:
        with contextlib.suppress(DomainError):  # a member the store cannot show: skip it
            consent |= outbound.consent_of(member)
    profile = present.profile_facts(
        page.profile, consent, runtime.settings.dispatch.default_time_zone, now
    )
    return {
        "page": page,
        "profile": profile,
        "options": options,
        "keys": {c.conversation_id: uuid4().hex for c in page.active},
        "position": max((i.position for i in page.items), default=0),
    }


@router.get("/customers/{customer_id}/items", response_class=HTMLResponse)
async def older_items(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    before: Annotated[str, Query()],
) -> Response:
    """An older page of the timeline, as list items (endless scrolling back)."""
    runtime = _runtime(request)

    def load() -> tuple[list[TimelineItem], str | None]:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            return runtime.views.timeline.page(conn, group, 50, before)

    try:
        items, older = await run_in_threadpool(load)
    except ValueError:  # a cursor this console did not make
        raise _invalid_cursor() from None
    response = _page(request, "_items.html", agent=agent, items=items)
    if older:
        response.headers["X-Older"] = older
    return response


@router.get("/queue/live", response_class=EventSourceResponse)
async def queue_live(request: Request, agent: AgentDep) -> AsyncIterator[ServerSentEvent]:
    """``changed`` once the read models moved (the queue page then reloads its list; at most
    one event a second)."""
    runtime = _runtime(request)
    stopping: asyncio.Event = request.app.state.stopping

    def moved() -> dict[str, int]:
        return runtime.views.positions() | {"store": runtime.store_position()}

    credential = _live_credential(request)
    seen = await run_in_threadpool(moved)
    yield ServerSentEvent(comment="connected", retry=2000)
    while not stopping.is_set():
        await runtime.wait_for_change_or(stopping, min(_LIVE_POLL_SECONDS, credential.interval))
        if not await credential.holds():
            yield _ended()
            return
        now = await run_in_threadpool(moved)
        if now["store"] == seen["store"]:
            continue
        # Something was recorded: wait (briefly) for the views to show it, then say so.
        deadline = asyncio.get_running_loop().time() + _VISIBLE_WAIT_SECONDS
        while now == seen or min(v for k, v in now.items() if k != "store") < now["store"]:
            if asyncio.get_running_loop().time() > deadline or stopping.is_set():
                break
            await asyncio.sleep(0.05)
            now = await run_in_threadpool(moved)
        seen = now
        yield ServerSentEvent(data=str(now["store"]), event="changed")
        await asyncio.sleep(1.0)


@router.get("/customers/{customer_id}/live", response_class=EventSourceResponse)
async def live(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
) -> AsyncIterator[ServerSentEvent]:
    """New timeline items of this customer as HTML (``item``), and changed delivery ticks
    of the outbound messages on the page (``update``), as they happen; ``error`` and the end
    once the session no longer holds (checked before each batch and every few seconds)."""
    runtime = _runtime(request)
    stopping: asyncio.Event = request.app.state.stopping
    credential = _live_credential(request)

    def group_and_outbound() -> tuple[list[UUID], dict[UUID, str | None]]:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            items, _ = runtime.views.timeline.page(conn, group, 50, None)
        return group, {i.item_id: i.delivery_status for i in items if i.direction == "outbound"}

    group, watched = await run_in_threadpool(group_and_outbound)
    position = after
    yield ServerSentEvent(comment="connected", retry=2000)
    while not stopping.is_set():
        if not await credential.holds():
            yield _ended()
            return

        def changes(after: int) -> tuple[list[TimelineItem], list[TimelineItem]]:
            with runtime.read() as conn:
                new = timeline_after(conn, runtime.views, group, after)
                current = runtime.views.timeline.messages(conn, list(watched))
            changed = [i for i in current.values() if i.delivery_status != watched[i.item_id]]
            return new, changed

        new, changed = await run_in_threadpool(changes, position)
        for item in new:
            position = max(position, item.position)
            if item.direction == "outbound":
                watched[item.item_id] = item.delivery_status
            yield ServerSentEvent(raw_data=_item_html(item), event="item", id=str(position))
        for item in changed:
            watched[item.item_id] = item.delivery_status
            yield ServerSentEvent(raw_data=_item_html(item), event="update")
        if new or changed:
            continue
        await runtime.wait_for_change_or(stopping, min(_LIVE_POLL_SECONDS, credential.interval))
        await asyncio.sleep(0.05)  # the views follow the store: give them a moment


def _item_html(item: TimelineItem) -> str:
    html = templates.env.get_template("_item.html").render(item=item)
    return " ".join(html.split("\n"))  # one SSE data line


# -- commands on a conversation --------------------------------------------------------------


async def _act(
    request: Request, back: str, run: Callable[[], Any], visible: Callable[[Any], bool]
) -> Response:
    """Run an agent's command, wait (briefly) until the views show it (``visible`` of its
    result), and go ``back``; a refusal comes back as that page with the reason (or, to
    console.js, as JSON)."""
    try:
        result = await run_in_threadpool(run)
    except DomainError as exc:
        if _wants_fragment(request):
            return Response(
                json.dumps({"code": exc.code, "message": exc.message}),
                status_code=exc.status,
                media_type="application/json",
            )
        path, _, anchor = back.partition("#")
        fragment = f"#{anchor}" if anchor else ""
        return RedirectResponse(f"{path}?error={quote(exc.message)}{fragment}", 303)
    deadline = asyncio.get_running_loop().time() + _VISIBLE_WAIT_SECONDS
    while not await run_in_threadpool(visible, result):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    if _wants_fragment(request):
        return Response(status_code=204)
    return RedirectResponse(back, 303)


async def _command(
    request: Request,
    conversation_id: UUID,
    run: Callable[[], Any],
    visible: Callable[[Any], bool],
) -> Response:
    """:func:`_act` on a conversation: back to its customer, at the conversation."""
    customer = await run_in_threadpool(_customer_of, _runtime(request), conversation_id)
    return await _act(request, f"/customers/{customer}#c-{conversation_id}", run, visible)


def _customer_of(runtime: Runtime, conversation_id: UUID) -> str:
    with runtime.read() as conn:
        found = runtime.views.conversations.get(conn, conversation_id)
    return str(found.customer_id) if found else ""


async def _write(
    request: Request, conversation_id: UUID, text: str, what: str, run: Callable[[], Any]
) -> Response:
    """A command that writes ``text`` (a reply, a note) into the conversation, refused when
    empty; done once the item it returns is on the timeline."""
    if not text.strip():
        return await _command(request, conversation_id, _raise(f"write the {what} first"), _done)
    runtime = _runtime(request)

    def in_timeline(item_id: Any) -> bool:
        with runtime.read() as conn:
            return runtime.views.timeline.has_item(conn, item_id)

    return await _command(request, conversation_id, run, in_timeline)


def _done(_: Any) -> bool:
    return True


@router.post("/conversations/{conversation_id}/reply")
async def reply(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    text: Annotated[str, Form(max_length=10_000)] = "",
    channel: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    runtime = _runtime(request)
    return await _write(
        request,
        conversation_id,
        text,
        "reply",
        lambda: (
            runtime.reply(
                conversation_id,
                text,
                author=agent.name,
                channel=channel or None,
                idempotency_key=f"console:{key}" if key else None,
            ).message_id
        ),
    )


@router.post("/conversations/{conversation_id}/note")
async def note(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    text: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    runtime = _runtime(request)
    return await _write(
        request,
        conversation_id,
        text,
        "note",
        lambda: runtime.commands.add_note(conversation_id, text, agent.name),
    )


@router.post("/conversations/{conversation_id}/status")
async def status(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    status: Annotated[str, Form()] = "",
) -> Response:
    runtime = _runtime(request)
    return await _command(
        request,
        conversation_id,
        lambda: runtime.commands.change_status(conversation_id, status, agent.name),
        _conversation_shows(runtime, conversation_id, "status", status),
    )


@router.post("/conversations/{conversation_id}/assign")
async def assign(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    assignee: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    runtime = _runtime(request)
    who = agent.name if assignee == "me" else (assignee.strip() or None)
    return await _command(
        request,
        conversation_id,
        lambda: runtime.commands.assign(conversation_id, who, agent.name),
        _conversation_shows(runtime, conversation_id, "assignee", who),
    )


@router.post("/customers/{customer_id}/tags")
async def tags(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    add: Annotated[str, Form(max_length=50)] = "",
    remove: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    """Add or remove one tag of the customer (of the group's root)."""
    runtime = _runtime(request)

    def change() -> list[str]:
        with runtime.read() as conn:
            profile = runtime.views.directory.profile(conn, customer_id)
        current = list(profile.tags) if profile else []
        wanted = [t for t in current if t != remove.strip()]
        if add.strip():
            wanted.append(add.strip())
        return runtime.commands.set_tags(customer_id, wanted, agent.name)

    def shown(wanted: list[str]) -> bool:
        with runtime.read() as conn:
            profile = runtime.views.directory.profile(conn, customer_id)
        return profile is not None and sorted(profile.tags) == wanted

    return await _act(request, f"/customers/{customer_id}", change, shown)


def _conversation_shows(
    runtime: Runtime, conversation_id: UUID, field: str, value: Any
) -> Callable[[Any], bool]:
    def check(_: Any) -> bool:
        with runtime.read() as conn:
            found = runtime.views.conversations.get(conn, conversation_id)
        return found is not None and getattr(found, field) == value

    return check


def _raise(message: str) -> Callable[[], Any]:
    def fail() -> Any:
        raise InvalidCommand(message)

    return fail
