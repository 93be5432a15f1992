"""What an agent does to a customer's identity from the customer's page: merge another
customer into this one (search for them, the merge preview, a reason), unmerge a member of
the group (with a reason), and link an email address or a phone number (with a reason).

The preview and the merge are the duplicates page's (``hub.console.duplicates``), the search
is the search page's, the forms' handling is ``hub.console.commands``'; every command is
recorded with the agent and their reason. The partial is ``_customer_actions.html``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.console import commands, duplicates, search
from hub.console.shared import AgentDep, PostingAgent, page, runtime_of
from hub.domain.errors import DomainError, InvalidCommand
from hub.events.common import check_text
from hub.projections.directory import CustomerRecord
from hub.projections.queries import CustomerPage
from hub.runtime import Runtime
from hub.runtime.linking import link_to_customer

router = APIRouter(include_in_schema=False)
#: The longest reason a form takes (the API's merge reason has the same limit).
REASON_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Members:
    """The other customers a merged group shows as one (each with its Unmerge)."""

    records: list[CustomerRecord]


def members(runtime: Runtime, shown: CustomerPage) -> Members:
    """The members of the page's group besides its root, for ``_customer_actions.html``."""
    others = list(shown.profile.merged_customer_ids)
    if not others:
        return Members([])
    with runtime.read() as conn:
        return Members(runtime.views.directory.get_many(conn, others))


def _reason(value: str) -> str:
    """The agent's reason, required, as text every store can hold."""
    reason = value.strip()
    if not reason:
        raise InvalidCommand("give a reason")
    try:
        return check_text(reason)
    except ValueError:
        raise InvalidCommand("the reason holds characters that are not text") from None


# -- merging another customer into this one ---------------------------------------------------


@router.get("/customers/{customer_id}/merge", response_class=HTMLResponse)
async def merge_search(
    request: Request,
    customer_id: UUID,
    agent: AgentDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Find the customer to merge into this one (the search page's customer search, this
    customer's own group left out)."""
    runtime = runtime_of(request)
    text = q.strip()

    def load() -> tuple[CustomerRecord | None, list[CustomerRecord]]:
        with runtime.read() as conn:
            this = runtime.views.directory.profile(conn, customer_id)
        if this is None:
            return None, []
        found = search.customers_matching(runtime, agent, text) if text else []
        group = {this.customer_id, *this.merged_customer_ids}
        return this, [r for r in found if r.customer_id not in group]

    this, found = await run_in_threadpool(load)
    if this is None:
        return page(request, "missing.html", status=404, agent=agent, customer_id=customer_id)
    return page(
        request,
        "customer_merge.html",
        agent=agent,
        customer=this,
        q=text,
        found=found,
        name_of=duplicates.name_of,
    )


@router.get("/customers/{customer_id}/merge/{other_id}", response_class=HTMLResponse)
async def merge_preview(
    request: Request,
    customer_id: UUID,
    other_id: UUID,
    agent: AgentDep,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """The duplicates page's merge preview of ``other_id`` into this customer, with a reason
    to give and the merge button."""
    return await duplicates.show_preview(
        request,
        agent,
        customer_id,
        other_id,
        "customer_merge_preview.html",
        error,
        reason_length=REASON_LENGTH,
    )


@router.post("/customers/{customer_id}/merge/{other_id}")
async def merge(
    request: Request,
    customer_id: UUID,
    other_id: UUID,
    agent: PostingAgent,
    reason: Annotated[str, Form(max_length=REASON_LENGTH)] = "",
) -> Response:
    """Merge ``other_id`` into this customer with the agent's reason, then show the customer;
    a refusal (no reason, merged elsewhere, too large a group) comes back to the preview."""
    back = f"/customers/{customer_id}/merge/{other_id}"
    try:
        given = _reason(reason)
    except DomainError as exc:
        return await commands.act(request, back, _refuse(exc), _always)
    return await duplicates.merge_then_show(request, agent, customer_id, other_id, given, back)


# -- unmerging a member -------------------------------------------------------------------


@router.post("/customers/{customer_id}/unmerge")
async def unmerge(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    reason: Annotated[str, Form(max_length=REASON_LENGTH)] = "",
) -> Response:
    """The member ``customer_id`` stands on its own again (with everything it had); back to
    the group it left, at the members' list."""
    runtime = runtime_of(request)

    def root() -> UUID:
        with runtime.read() as conn:
            return runtime.views.directory.root(conn, customer_id)

    back = f"/customers/{await run_in_threadpool(root)}#members-title"

    def run() -> Any:
        return runtime.commands.identity.unmerge(
            customer_id, actor=agent.name, reason=_reason(reason)
        )

    def apart(_: Any) -> bool:
        return root() == customer_id

    return await commands.act(request, back, run, apart)


# -- linking an address -------------------------------------------------------------------


@router.post("/customers/{customer_id}/addresses")
async def link_address(
    request: Request,
    customer_id: UUID,
    agent: PostingAgent,
    address: Annotated[str, Form(max_length=320)] = "",
    verified: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=REASON_LENGTH)] = "",
) -> Response:
    """Link an email address or a phone number to the customer, verified or not; refused
    (shown on the page) when it is not valid or another customer owns it."""
    runtime = runtime_of(request)

    def run() -> int:
        link_to_customer(
            runtime,
            customer_id,
            address,
            verified=verified == "yes",
            reason=_reason(reason),
            actor=agent.name,
        )
        return runtime.store_position()

    def shown(position: int) -> bool:
        return runtime.views.low_water_mark(["directory"]) >= position

    return await commands.act(request, f"/customers/{customer_id}#link-title", run, shown)


def _refuse(exc: DomainError) -> Any:
    def fail() -> Any:
        raise exc

    return fail


def _always(_: Any) -> bool:
    return True
