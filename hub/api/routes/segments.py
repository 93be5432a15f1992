"""Segments: saved filters over the directory (define, list, read, change, delete), the
customers a segment holds (paged, with the total), and an ad-hoc filter's customers without
saving it (``preview``). The filter language is ``hub.events.segments``; docs/segments.md."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.models import CustomerOut
from hub.api.openapi import errors, link
from hub.api.segment_models import (
    PreviewIn,
    SegmentCustomers,
    SegmentIn,
    SegmentList,
    SegmentOut,
)
from hub.events.segments import Filter
from hub.runtime import Runtime
from hub.runtime import segments as desk
from hub.web.access import Principal

router = APIRouter(prefix="/v1/segments", tags=["segments"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
#: The access log's names of the reads here.
CUSTOMERS_ACTION = "GET /v1/segments/{segment_id}/customers"
PREVIEW_ACTION = "POST /v1/segments/preview"

_TAKEN = (409, "`segment_name_taken`: another segment has that name (case ignored).")
_INVALID = (
    422,
    "`invalid_filter`: the filter compares a defined attribute against a value its type "
    "does not hold, or names a consent purpose this hub does not have.",
)
#: From a segment defined to the operations on it (clients and stateful tests follow them).
_LINKS = {
    "GetSegment": link("GET", "/v1/segments/{segment_id}", segment_id="segment_id"),
    "ChangeSegment": link("PUT", "/v1/segments/{segment_id}", segment_id="segment_id"),
    "DeleteSegment": link("DELETE", "/v1/segments/{segment_id}", segment_id="segment_id"),
    "SegmentCustomers": link("GET", "/v1/segments/{segment_id}/customers", segment_id="segment_id"),
}
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[UUID | None, Query(description="next_cursor of the previous page")]


@router.post(
    "",
    status_code=201,
    response_model=SegmentOut,
    responses={201: {"links": _LINKS}, **errors(_TAKEN, _INVALID)},
)
async def define_segment(body: SegmentIn, runtime: RuntimeDep, who: Actor) -> SegmentOut:
    """Save a filter under a name."""

    def define() -> SegmentOut:
        desk.check(runtime, body.filter)
        record = runtime.commands.segments.define(
            body.name, body.filter, description=body.description, actor=who.name
        )
        return SegmentOut.of(record)

    return await run_in_threadpool(define)


@router.get("", response_model=SegmentList)
async def list_segments(runtime: RuntimeDep, who: Reader) -> SegmentList:
    """Every segment, by name."""
    found = await run_in_threadpool(runtime.commands.segments.all)
    return SegmentList(items=[SegmentOut.of(r) for r in found])


@router.post("/preview", response_model=SegmentCustomers, responses=errors(_INVALID))
async def preview_segment(
    body: PreviewIn,
    runtime: RuntimeDep,
    who: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SegmentCustomers:
    """The customers a filter matches, as a segment's would be, without saving it."""
    return await run_in_threadpool(
        _customers, runtime, who, body.filter, None, limit, cursor, PREVIEW_ACTION
    )


@router.get("/{segment_id:uuid}", response_model=SegmentOut)
async def get_segment(segment_id: UUID, runtime: RuntimeDep, who: Reader) -> SegmentOut:
    """One segment's definition."""
    record = await run_in_threadpool(runtime.commands.segments.get, segment_id)
    return SegmentOut.of(record)


@router.put("/{segment_id:uuid}", response_model=SegmentOut, responses=errors(_TAKEN, _INVALID))
async def change_segment(
    segment_id: UUID, body: SegmentIn, runtime: RuntimeDep, who: Actor
) -> SegmentOut:
    """Replace the segment's name, description and filter (the same again records nothing)."""

    def change() -> SegmentOut:
        desk.check(runtime, body.filter)
        record, _ = runtime.commands.segments.change(
            segment_id, body.name, body.filter, description=body.description, actor=who.name
        )
        return SegmentOut.of(record)

    return await run_in_threadpool(change)


@router.delete("/{segment_id:uuid}", status_code=204)
async def delete_segment(segment_id: UUID, runtime: RuntimeDep, who: Actor) -> Response:
    """Delete the segment (again: nothing more happens; an id never given: 404)."""
    await run_in_threadpool(lambda: runtime.commands.segments.delete(segment_id, actor=who.name))
    return Response(status_code=204)


@router.get("/{segment_id:uuid}/customers", response_model=SegmentCustomers)
async def segment_customers(
    segment_id: UUID,
    runtime: RuntimeDep,
    who: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SegmentCustomers:
    """The customers the segment holds now, newest first (a merged group as one customer),
    with how many it holds in all."""

    def load() -> SegmentCustomers:
        record = runtime.commands.segments.get(segment_id)
        return _customers(runtime, who, record.tree, segment_id, limit, cursor, CUSTOMERS_ACTION)

    return await run_in_threadpool(load)


def _customers(
    runtime: Runtime,
    who: Principal,
    tree: Filter,
    segment_id: UUID | None,
    limit: int,
    cursor: UUID | None,
    action: str,
) -> SegmentCustomers:
    if segment_id is None:
        desk.check(runtime, tree)
    found = desk.customers(runtime, tree, limit, str(cursor) if cursor else None)
    for r in found.customers:  # one entry per customer shown
        runtime.access_log.record(who, [r.customer_id, *r.merged_customer_ids], action)
    return SegmentCustomers(
        segment_id=segment_id,
        total=found.total,
        items=[CustomerOut.model_validate(r) for r in found.customers],
        next_cursor=found.next_cursor,
    )
