"""Duplicate suggestions: a customer's possible duplicates, the review queue, the preview of a
merge, "not the same person" and its undo, and the identity blocklist (docs/duplicates.md).

Merging a pair is ``POST /v1/customers/{id}/merge`` (``hub.api.routes.customers``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.duplicate_models import (
    BandName,
    BlocklistIn,
    BlocklistOut,
    DecisionOut,
    DuplicateCustomerOut,
    EvidenceOut,
    PairOut,
    PairPage,
    PreviewOut,
    SuggestionOut,
    SuggestionsOut,
)
from hub.api.openapi import errors
from hub.domain.duplicates import Decision
from hub.events.duplicate_keys import BUILTIN_BLOCKLIST
from hub.runtime import Runtime
from hub.runtime import duplicates as desk
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(tags=["duplicates"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
Admin = Annotated[Principal, require("admin")]
#: The access log's names of the reads here (suggestions show names and addresses).
SUGGESTIONS_ACTION = "GET /v1/customers/{customer_id}/duplicates"
QUEUE_ACTION = "GET /v1/duplicates"
PREVIEW_ACTION = "GET /v1/customers/{customer_id}/duplicates/{other_id}/preview"
_PAIR = "/v1/customers/{customer_id}/duplicates/{other_id}"


def _absent(runtime: Runtime, customer_id: UUID) -> ApiError:
    """Why a customer is not in the views: erased (410) or unknown (404)."""
    with runtime.read() as conn:
        erased = runtime.views.erased_among(conn, [customer_id])
    if erased:
        return ApiError(
            410, "customer_erased", f"customer {customer_id}'s personal data was erased"
        )
    return ApiError(404, "not_found", f"no customer {customer_id}")


@router.get(
    "/v1/customers/{customer_id}/duplicates",
    response_model=SuggestionsOut,
    responses=errors(410),
)
async def customer_duplicates(
    customer_id: UUID, runtime: RuntimeDep, who: Reader
) -> SuggestionsOut:
    """The customers that may be the same person as this one (its whole merge group),
    highest score first, each with its evidence. Pairs an agent dismissed, pairs already
    merged and evidence from blocklisted or shared addresses are left out."""

    def load() -> SuggestionsOut:
        with runtime.read() as conn:
            record = runtime.views.directory.profile(conn, customer_id)
        if record is None:
            raise _absent(runtime, customer_id)
        found = desk.suggestions(runtime, customer_id)
        shown = [record.customer_id, *record.merged_customer_ids]
        for s in found:
            other = s.other_than(record.customer_id)
            shown += [other.customer_id, *other.merged_customer_ids]
        runtime.access_log.record(who, shown, SUGGESTIONS_ACTION, len(found))
        return SuggestionsOut(
            customer_id=record.customer_id,
            items=[
                SuggestionOut(
                    customer=DuplicateCustomerOut.of(s.other_than(record.customer_id)),
                    score=s.score,
                    band=s.band,
                    evidence=[EvidenceOut.of(e) for e in s.evidence],
                )
                for s in found
            ],
        )

    return await run_in_threadpool(load)


@router.get(
    "/v1/duplicates",
    response_model=PairPage,
    responses=errors((400, "`invalid_cursor`: cursor= is not a next_cursor this API gave.")),
)
async def review_queue(
    runtime: RuntimeDep,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    band: Annotated[BandName | None, Query(description="Only this band.")] = None,
) -> PairPage:
    """Every suggested pair of customers, highest score first (the review queue)."""

    def load() -> PairPage:
        try:
            found, following = desk.queue(runtime, limit, cursor, band)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "cursor is not one this API gave") from None
        for s in found:
            ids = [s.first.customer_id, *s.first.merged_customer_ids]
            ids += [s.second.customer_id, *s.second.merged_customer_ids]
            runtime.access_log.record(who, ids, QUEUE_ACTION)
        return PairPage(items=[PairOut.of(s) for s in found], next_cursor=following)

    return await run_in_threadpool(load)


@router.get(
    f"{_PAIR}/preview",
    response_model=PreviewOut,
    responses=errors(
        (409, "`same_group`: the two are merged into one already."),
        410,
        (422, "`invalid_command`: the two ids are the same customer."),
    ),
)
async def merge_preview(
    customer_id: UUID, other_id: UUID, runtime: RuntimeDep, who: Reader
) -> PreviewOut:
    """What merging ``other_id`` into ``customer_id`` would show: messages per channel of each
    side and together, and every profile field with the value that wins (the customer in the
    path, merged into, keeps its value when it has one). Merge with
    ``POST /v1/customers/{customer_id}/merge``."""
    if customer_id == other_id:
        raise ApiError(422, "invalid_command", "a customer cannot be merged into itself")

    def load() -> PreviewOut:
        for cid in (customer_id, other_id):
            with runtime.read() as conn:
                known = runtime.views.directory.get(conn, cid) is not None
            if not known:
                raise _absent(runtime, cid)
        preview = desk.preview(runtime, customer_id, other_id)
        if preview is None:
            raise _absent(runtime, customer_id)
        if preview.survivor.customer_id == preview.merged.customer_id:
            raise ApiError(409, "same_group", "these customers are merged into one already")
        shown = [preview.survivor.customer_id, *preview.survivor.merged_customer_ids]
        shown += [preview.merged.customer_id, *preview.merged.merged_customer_ids]
        runtime.access_log.record(who, shown, PREVIEW_ACTION)
        return PreviewOut.of(preview)

    return await run_in_threadpool(load)


def _decision(found: Decision) -> DecisionOut:
    return DecisionOut(
        customer_id=found.customer_id,
        other_customer_id=found.other_customer_id,
        dismissed=found.dismissed,
        changed=found.changed,
    )


@router.post(
    f"{_PAIR}/dismiss",
    response_model=DecisionOut,
    responses=errors(
        (409, "`same_group`: the two are merged into one; unmerge first."),
        410,
        (422, "`invalid_command`: the two ids are the same customer."),
    ),
)
async def dismiss(
    customer_id: UUID, other_id: UUID, runtime: RuntimeDep, who: Actor
) -> DecisionOut:
    """Not the same person: recorded on both customers (``customer.duplicate_dismissed.v1``),
    so the pair (and any pair of their merge groups) is never suggested again. Again:
    nothing new is recorded."""
    found = await run_in_threadpool(
        lambda: runtime.commands.duplicates.dismiss(customer_id, other_id, actor=who.name)
    )
    return _decision(found)


@router.post(
    f"{_PAIR}/restore",
    response_model=DecisionOut,
    responses=errors(410, (422, "`invalid_command`: the two ids are the same customer.")),
)
async def restore(
    customer_id: UUID, other_id: UUID, runtime: RuntimeDep, who: Actor
) -> DecisionOut:
    """Undo a "not the same person" (``customer.duplicate_restored.v1``): the pair may be
    suggested again."""
    found = await run_in_threadpool(
        lambda: runtime.commands.duplicates.restore(customer_id, other_id, actor=who.name)
    )
    return _decision(found)


# -- the identity blocklist ----------------------------------------------------------------


def _blocklist(runtime: Runtime, entries: list[str]) -> BlocklistOut:
    return BlocklistOut(
        entries=entries,
        configured=desk.configured_entries(runtime),
        builtin=list(BUILTIN_BLOCKLIST),
    )


@router.get("/v1/identity-blocklist", response_model=BlocklistOut, tags=["duplicates"])
async def get_blocklist(runtime: RuntimeDep, _: Reader) -> BlocklistOut:
    """Addresses never used as evidence of a duplicate nor linked automatically: the list
    set here, those configured (HUB_IDENTITY__BLOCKLIST) and the built-in ones."""
    entries = await run_in_threadpool(runtime.commands.duplicates.blocklist.stored)
    return _blocklist(runtime, entries)


@router.put(
    "/v1/identity-blocklist",
    response_model=BlocklistOut,
    responses=errors(
        (422, "`invalid_command`: an entry is not an email or phone address or pattern.")
    ),
)
async def put_blocklist(body: BlocklistIn, runtime: RuntimeDep, who: Admin) -> BlocklistOut:
    """Replace the hub's list (admins). Entries are normalised (a phone number to E.164,
    an email lowercased); the same list again records nothing. Takes effect at once."""
    entries = await run_in_threadpool(
        lambda: runtime.commands.duplicates.blocklist.replace(body.entries, actor=who.name)
    )
    return _blocklist(runtime, entries)
