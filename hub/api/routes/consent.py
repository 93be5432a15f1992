"""Consent: the ledger per channel and purpose of a customer's merge group (``GET``), a change
with its source and evidence (``PUT``), and the double opt-in confirmation link the customer
opens without a login (``GET`` shows a page with a button, ``POST`` confirms).

The rules are ``hub.domain.consent``'s; ``hub.runtime.consent`` applies them on this hub.
Unsubscribe links are ``hub.api.routes.unsubscribe``.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from hub.api.auth import RuntimeDep, require
from hub.api.models import (
    ConfirmationOut,
    ConsentCellOut,
    ConsentChangeOut,
    ConsentEntryOut,
    ConsentIn,
    ConsentOut,
    ConsentPendingOut,
)
from hub.api.openapi import errors
from hub.domain.consent import ConsentCell, ConsentEntry, ConsentRequest
from hub.domain.errors import Conflict, DomainError
from hub.runtime import consent as desk
from hub.web.access import Principal
from hub.web.errors import ApiError
from hub.web.links import InvalidLink, link_page, refused_link_page

router = APIRouter(tags=["privacy"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
#: The access log's name of the read here (evidence text is personal data).
READ_ACTION = "GET /v1/customers/{customer_id}/consent"


def _cell(cell: ConsentCell) -> ConsentCellOut:
    line, waiting = cell.decided_by, cell.pending
    return ConsentCellOut(
        channel=cell.channel,
        purpose=cell.purpose,
        granted=cell.granted,
        default=cell.default,
        rule=cell.rule,
        decided_on=line.customer_id if line else None,
        decided_at=line.occurred_at if line else None,
        pending=(
            ConsentPendingOut(
                request_id=waiting.request_id,
                customer_id=waiting.customer_id,
                expires_at=waiting.expires_at,
            )
            if waiting is not None
            and waiting.request_id is not None
            and waiting.expires_at is not None
            else None
        ),
    )


def _entry(entry: ConsentEntry) -> ConsentEntryOut:
    return ConsentEntryOut(
        customer_id=entry.customer_id,
        kind=entry.kind,
        channel=entry.channel,
        purposes=list(entry.purposes),
        granted=entry.granted,
        source=entry.source,
        evidence=entry.evidence,
        message_id=entry.message_id,
        request_id=entry.request_id,
        actor=entry.actor,
        occurred_at=entry.occurred_at,
        recorded_at=entry.recorded_at,
        expires_at=entry.expires_at,
        status=entry.status,
    )


def _out(view: desk.ConsentView) -> ConsentOut:
    return ConsentOut(
        customer_id=view.customer_id,
        customer_ids=list(view.customer_ids),
        purposes=list(view.purposes),
        state=[_cell(c) for c in view.state],
        history=[_entry(e) for e in view.history],
    )


@router.get(
    "/v1/customers/{customer_id}/consent",
    response_model=ConsentOut,
    responses=errors(410),
)
async def get_consent(customer_id: UUID, runtime: RuntimeDep, who: Reader) -> ConsentOut:
    """The customer's consent as one person (the whole merge group): the state per channel
    and purpose (``default`` where no ledger line decides it and the default rule does:
    ``service`` is granted by the customer writing to you, other purposes need an opt-in),
    and every line of the ledger, oldest first, with its source, evidence and time, and the
    member it is recorded on. Double opt-in requests are lines of kind ``request``."""
    view = await run_in_threadpool(desk.consent_view, runtime, customer_id)
    runtime.access_log.record(who, view.customer_ids, READ_ACTION, len(view.history))
    return _out(view)


@router.put(
    "/v1/customers/{customer_id}/consent",
    response_model=ConsentChangeOut,
    responses=errors(
        (403, "`forbidden`: source `import` is for admin tokens only."),
        410,
        (
            422,
            "`unknown_purpose`: a purpose this hub does not have; `invalid_command`: an "
            "import without evidence.",
        ),
    ),
)
async def set_consent(
    customer_id: UUID, body: ConsentIn, runtime: RuntimeDep, who: Actor, request: Request
) -> ConsentChangeOut:
    """Record a change of consent (a line of the ledger) with its source and evidence, on
    every member of the customer's merge group whose address the channel reaches. A grant of
    email ``marketing`` (an opt-in purpose on a double opt-in channel) by an agent or the API
    does not grant yet: it records a request and answers with a signed confirmation URL in
    ``confirmations``, emailed to the customer when they have an email conversation and the
    hub has a public URL (``sent``), otherwise to be passed on. Answers the new state."""
    source = body.source or ("agent" if who.role == "agent" else "api")
    if source == "import" and who.role != "admin":
        raise ApiError(403, "forbidden", "source import is for admin tokens only")
    known = desk.rules_of(runtime).purposes
    unknown = [p for p in body.purposes if p not in known]
    if unknown:
        raise ApiError(
            422,
            "unknown_purpose",
            f"unknown purpose {unknown[0]!r}: one of {', '.join(known)}",
            purpose=unknown[0],
            purposes=list(known),
        )
    base_url = str(request.base_url)
    changed = await run_in_threadpool(
        lambda: desk.change_consent(
            runtime,
            customer_id,
            channel=body.channel,
            granted=body.granted,
            purposes=body.purposes,
            source=source,
            evidence=body.evidence,
            actor=who.name,
            base_url=base_url,
        )
    )
    out = _out(changed.view)
    return ConsentChangeOut(
        **out.model_dump(),
        recorded_on=list(changed.recorded_on),
        confirmations=[
            ConfirmationOut(
                request_id=c.request.request_id,
                customer_id=c.request.customer_id,
                channel=c.request.channel,
                purposes=list(c.request.purposes),
                expires_at=c.request.expires_at,
                url=c.url,
                sent=c.sent,
                message_id=c.message_id,
                note=c.note,
            )
            for c in changed.confirmations
        ],
    )


# -- the confirmation link (no login: the signed token is the customer's proof) ---------------


def _describe(request: ConsentRequest) -> str:
    what = " and ".join(escape(p) for p in request.purposes)
    return f"<strong>{what}</strong> messages by <strong>{escape(request.channel)}</strong>"


def _refused(error: DomainError) -> HTMLResponse:
    if isinstance(error, InvalidLink):
        return refused_link_page(error)
    texts = {
        "confirmation_expired": "This confirmation link has expired. Ask us for a new one.",
        "confirmation_cancelled": "Consent was withdrawn after this link was sent, so it no "
        "longer applies. Ask us for a new one if you changed your mind.",
        "customer_erased": "There is nothing to confirm any more.",
    }
    text = texts.get(error.code, "There is nothing to confirm with this link.")
    return link_page(
        "Not confirmed", f'<p data-code="{escape(error.code)}">{escape(text)}</p>', error.status
    )


@router.get("/consent/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirmation_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """The page a confirmation link opens: what would be granted, and a button. Opening it
    changes nothing (mail scanners open links), pressing the button does."""
    try:
        found = await run_in_threadpool(desk.confirmation_request, runtime, token)
    except DomainError as exc:
        return _refused(exc)
    if found.state == "confirmed":
        return link_page("Already confirmed", f"<p>You already agreed to {_describe(found)}.</p>")
    if found.state == "cancelled":
        return _refused(Conflict("confirmation_cancelled", "consent was withdrawn since"))
    form = (
        f"<p>Please confirm that you agree to receive {_describe(found)} from us. You can "
        "withdraw this at any time (every message has an unsubscribe link).</p>"
        f'<form method="post" action="{escape(desk.CONFIRM_PATH + token)}">'
        '<button type="submit">Yes, I agree</button></form>'
    )
    return link_page("Confirm your subscription", form)


@router.post("/consent/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirm(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """The customer pressed the button: the grant is recorded (source ``double_opt_in``).
    Again: already confirmed, nothing recorded twice."""
    try:
        done = await run_in_threadpool(desk.confirm, runtime, token)
    except DomainError as exc:
        return _refused(exc)
    return link_page("Thank you", f"<p>You agreed to {_describe(done)}.</p>")
