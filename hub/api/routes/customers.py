"""Customers: lookup by address, search, profile, and the unified timeline."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection

from hub.api.auth import RuntimeDep, require
from hub.api.history import AS_OF_DESCRIPTION, TimelineAsOfPage, timeline_page_as_of
from hub.api.models import (
    ConversationOut,
    CustomerDetailOut,
    CustomerOut,
    CustomerPage,
    DateTimeText,
    MergeIn,
    MergeOut,
    TagsIn,
    TimelineItemOut,
    TimelinePage,
    UnmergeIn,
)
from hub.api.openapi import errors
from hub.events import AddressError, normalise_address
from hub.projections.service_queries import sla_states
from hub.runtime import Runtime
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1/customers", tags=["customers"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
#: The access log's names of the reads here (``hub.store.access_log``).
FIND_ACTION = "GET /v1/customers"
TIMELINE_ACTION = "GET /v1/customers/{customer_id}/timeline"


@router.get(
    "",
    response_model=CustomerPage,
    responses=errors(
        (400, "`invalid_cursor`: cursor= is not a next_cursor this API gave."),
        (
            422,
            "`invalid_query`: not exactly one of address= and q=, or q= only spaces; "
            "`invalid_address`: address= is not an address.",
        ),
    ),
)
def find_customers(
    runtime: RuntimeDep,
    who: Reader,
    address: Annotated[str | None, Query(description="Exact address, e.g. phone:+1555...")] = None,
    q: Annotated[
        str | None, Query(min_length=2, max_length=200, description="Name, email or phone part.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> CustomerPage:
    """Find the customer who owns an address, or search customers by name, email or phone
    fragment (cursor-paginated)."""
    if (address is None) == (q is None):
        raise ApiError(422, "invalid_query", "give exactly one of address= or q=")
    if q is not None and len(q.strip()) < 2:
        # Search ignores surrounding spaces: "  " would otherwise match every customer.
        raise ApiError(422, "invalid_query", "q= needs at least 2 characters besides spaces")
    views = runtime.views
    if address is not None:
        try:
            normalised = str(
                normalise_address(address, default_region=runtime.settings.default_region)
            )
        except AddressError as exc:
            raise ApiError(422, "invalid_address", str(exc), reason=exc.reason) from None
        with runtime.read() as conn:
            found = views.directory.by_address(conn, normalised)
            if found is not None:
                found = views.directory.profile(conn, found.customer_id) or found
                runtime.access_log.record(
                    who, [found.customer_id, *found.merged_customer_ids], FIND_ACTION
                )
        return CustomerPage(
            items=[CustomerOut.model_validate(found)] if found else [], next_cursor=None
        )
    assert q is not None
    after = None
    if cursor:
        try:
            after = UUID(cursor)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "cursor is not one this API gave") from None
    with runtime.read() as conn:
        records, last = views.directory.search(conn, q, limit, after)
    for r in records:  # one entry per customer shown (never the query: it is personal)
        runtime.access_log.record(who, [r.customer_id, *r.merged_customer_ids], FIND_ACTION)
    return CustomerPage(
        items=[CustomerOut.model_validate(r) for r in records],
        next_cursor=str(last) if last else None,
    )


def _missing(runtime: Runtime, conn: Connection, customer_id: UUID) -> ApiError:
    """Why a customer is not in the views: erased (410) or unknown (404)."""
    if runtime.views.erased_among(conn, [customer_id]):
        return ApiError(
            410, "customer_erased", f"customer {customer_id}'s personal data was erased"
        )
    return ApiError(404, "not_found", f"no customer {customer_id}")


@router.get("/{customer_id}", response_model=CustomerDetailOut, responses=errors(410))
def get_customer(customer_id: UUID, runtime: RuntimeDep, who: Reader) -> CustomerDetailOut:
    """A customer's profile, identities and open conversations. A customer merged into
    another is shown as that one (its ``customer_id`` in the answer)."""
    with runtime.read() as conn:
        record = runtime.views.directory.profile(conn, customer_id)
        if record is None:
            raise _missing(runtime, conn, customer_id)
        group = [record.customer_id, *record.merged_customer_ids]
        conversations = runtime.views.conversations.for_customer(conn, group)
        slas = sla_states(conn, [c.conversation_id for c in conversations])
    runtime.access_log.record(who, group, "GET /v1/customers/{customer_id}")
    return CustomerDetailOut(
        **CustomerOut.model_validate(record).model_dump(),
        open_conversations=[
            ConversationOut.of(c, slas.get(c.conversation_id)) for c in conversations
        ],
    )


@router.get(
    "/{customer_id}/timeline",
    response_model=TimelinePage | TimelineAsOfPage,
    responses=errors(
        (400, "`invalid_cursor`: before= is not a next_cursor this API gave."),
        (404, "`not_found`: no customer has the id, or none had appeared by as_of=."),
        410,
        (422, "`invalid_as_of`: as_of= has no UTC form the hub can hold."),
    ),
)
async def get_timeline(
    customer_id: UUID,
    runtime: RuntimeDep,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    as_of: Annotated[DateTimeText | None, Query(description=AS_OF_DESCRIPTION)] = None,
) -> TimelinePage:
    """Newest first, every channel interleaved by the time things happened; with a merged
    group, every member's items. With ``as_of``, the timeline as the hub knew it then,
    rebuilt from its event log (docs/history.md), with the conversations as they were."""
    if as_of is not None:
        return await run_in_threadpool(
            timeline_page_as_of, runtime, who, TIMELINE_ACTION, customer_id, as_of, limit, before
        )

    def load() -> TimelinePage:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            try:
                items, cursor = runtime.views.timeline.page(conn, group, limit, before)
            except ValueError:
                raise ApiError(
                    400, "invalid_cursor", "before= is not a cursor this API gave"
                ) from None
            if (
                not items
                and before is None
                and runtime.views.directory.get(conn, customer_id) is None
            ):
                raise _missing(runtime, conn, customer_id)
        runtime.access_log.record(who, group, TIMELINE_ACTION, len(items))
        return TimelinePage(
            customer_id=group[0],
            items=[TimelineItemOut.model_validate(i) for i in items],
            next_cursor=cursor,
        )

    return await run_in_threadpool(load)


@router.post(
    "/{customer_id}/merge",
    response_model=MergeOut,
    responses=errors(
        (
            409,
            "`already_merged`: the duplicate is merged into another customer; unmerge it. "
            "`merge_group_too_large`: the group would hold more customers than "
            "HUB_IDENTITY__MAX_GROUP_SIZE.",
        ),
        410,
        (422, "`invalid_command`: a customer cannot be merged into itself."),
    ),
)
async def merge_customer(
    customer_id: UUID, body: MergeIn, runtime: RuntimeDep, who: Actor
) -> MergeOut:
    """Merge a duplicate (``body.customer_id``) into this customer: from now on both show as
    one, with every address and the whole timeline. Recorded with who and why; undo with
    ``/unmerge``."""
    result = await run_in_threadpool(
        lambda: runtime.commands.identity.merge(
            customer_id, body.customer_id, actor=who.name, reason=body.reason
        )
    )
    return MergeOut(
        customer_id=result.customer_id,
        merged_customer_id=result.merged_customer_id,
        changed=result.changed,
    )


@router.post("/{customer_id}/unmerge", response_model=MergeOut)
async def unmerge_customer(
    customer_id: UUID, body: UnmergeIn, runtime: RuntimeDep, who: Actor
) -> MergeOut:
    """Undo the merge of this customer: it stands on its own again with everything it had."""
    result = await run_in_threadpool(
        lambda: runtime.commands.identity.unmerge(customer_id, actor=who.name, reason=body.reason)
    )
    return MergeOut(
        customer_id=result.customer_id,
        merged_customer_id=result.merged_customer_id,
        changed=result.changed,
    )


@router.put("/{customer_id}/tags", response_model=TagsIn, responses=errors(410))
async def set_tags(customer_id: UUID, body: TagsIn, runtime: RuntimeDep, who: Actor) -> TagsIn:
    """Set the customer's tags (the whole set; the same set again records nothing)."""
    tags = await run_in_threadpool(runtime.commands.set_tags, customer_id, body.tags, who.name)
    return TagsIn(tags=tags)
