"""The agent's commands from the console's forms: reply, note, status and assignment of a
conversation, and a customer's tags and consent.

A command runs on the runtime, then waits (briefly) until the views show its effect, so the
page it redirects to shows it too. A refusal comes back as that page with the reason (to
console.js, as JSON). A reply form carries an idempotency key, so a double submit sends once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from hub.console.shared import VISIBLE_WAIT_SECONDS, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError, InvalidCommand
from hub.events.common import check_text
from hub.runtime import Runtime
from hub.runtime.consent import change_consent
from hub.web.access import may
from hub.web.errors import ApiError

router = APIRouter(include_in_schema=False)


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


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
    deadline = asyncio.get_running_loop().time() + VISIBLE_WAIT_SECONDS
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
    customer = await run_in_threadpool(_customer_of, runtime_of(request), conversation_id)
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
    runtime = runtime_of(request)

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
    runtime = runtime_of(request)
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


@router.post("/customers/{customer_id}/conversations")
async def start_conversation(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    channel: Annotated[str, Form(max_length=20)] = "",
    text: Annotated[str, Form(max_length=10_000)] = "",
    subject: Annotated[str, Form(max_length=998)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A conversation the agent starts (``hub.domain.new_conversation``); done once its
    first message is on the timeline, back at the customer."""
    runtime = runtime_of(request)
    back = f"/customers/{customer_id}"

    def run() -> Any:
        if not text.strip():
            raise InvalidCommand("write the message first")
        return runtime.start_conversation(
            customer_id,
            channel,
            text,
            author=agent.name,
            subject=subject.strip() or None,
            idempotency_key=f"console:{key}" if key else None,
        ).message_id

    def in_timeline(item_id: Any) -> bool:
        with runtime.read() as conn:
            return runtime.views.timeline.has_item(conn, item_id)

    return await _act(request, back, run, in_timeline)


@router.post("/conversations/{conversation_id}/note")
async def note(
    request: Request,
    conversation_id: UUID,
    agent: PostingAgent,
    text: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    runtime = runtime_of(request)
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
    runtime = runtime_of(request)
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
    runtime = runtime_of(request)
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
    runtime = runtime_of(request)

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


@router.post("/customers/{customer_id}/erase")
async def erase(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    reason: Annotated[str, Form(max_length=40)] = "",
    confirm: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """An admin erases the customer (and its merge group), having typed "erase"."""
    if not may(agent.principal, "admin"):
        raise ApiError(403, "forbidden", "only an admin may erase a customer")
    back = f"/customers/{customer_id}"
    if confirm.strip().lower() != "erase":
        return RedirectResponse(f"{back}?error={quote('type erase to confirm')}#erase-title", 303)
    runtime = runtime_of(request)
    try:
        report = await run_in_threadpool(
            runtime.erase, customer_id, actor=agent.name, reason=reason
        )
    except DomainError as exc:
        return RedirectResponse(f"{back}?error={quote(exc.message)}#erase-title", 303)
    return page(
        request,
        "erased.html",
        agent=agent,
        customer_id=customer_id,
        erased=report.customer_ids,
        kafka_expiry=report.kafka_copies_expire_by,
    )


@router.post("/customers/{customer_id}/consent")
async def consent(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    channel: Annotated[str, Form(max_length=20)] = "",
    purpose: Annotated[str, Form(max_length=40)] = "",
    granted: Annotated[str, Form(max_length=20)] = "",
    evidence: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Grant or withdraw consent for one channel and purpose of the customer (the whole
    merge group), with the agent's evidence; an email marketing grant asks the customer to
    confirm (double opt-in: the page shows the link)."""
    runtime = runtime_of(request)

    def change() -> Any:
        if granted not in ("yes", "no"):
            raise InvalidCommand("choose grant or withdraw")
        if evidence and not _is_text(evidence):
            raise InvalidCommand("the evidence holds characters that are not text")
        return change_consent(
            runtime,
            customer_id,
            channel=channel,
            granted=granted == "yes",
            purposes=[purpose],
            source="agent",
            evidence=evidence.strip() or None,
            actor=agent.name,
        )

    return await _act(request, f"/customers/{customer_id}", change, _done)


def _is_text(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return True


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


#: :func:`_act` for the forms of other route modules (``customer_actions``).
act = _act
