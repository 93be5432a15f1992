"""Recording interactions of the generic API channel, and delivery reports for them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.persistence import DataError
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from hub.api.auth import RuntimeDep, require
from hub.api.models import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    DeliveryIn,
    DeliveryOut,
    ErrorBody,
    InteractionIn,
    RecordedOut,
)
from hub.api.openapi import errors, link
from hub.domain.application import Recorded
from hub.domain.errors import DomainError
from hub.events import InboundInteraction
from hub.events.inbound import InvalidInteraction, check_occurred_at
from hub.runtime import Accepted
from hub.runtime.group_commit import Unrecorded
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1", tags=["interactions"])

#: Where the ids of a recorded interaction lead: the operations on its customer,
#: conversation and message.
_RECORDED_LINKS = {
    **{
        name: link(method, f"/v1/customers/{{customer_id}}{tail}", customer_id="customer_id")
        for name, method, tail in (
            ("GetCustomer", "GET", ""),
            ("GetTimeline", "GET", "/timeline"),
            ("SetConsent", "PUT", "/consent"),
            ("SetTags", "PUT", "/tags"),
            ("Merge", "POST", "/merge"),
            ("Unmerge", "POST", "/unmerge"),
        )
    },
    **{
        name: link(
            method,
            f"/v1/conversations/{{conversation_id}}{tail}",
            conversation_id="conversation_id",
        )
        for name, method, tail in (
            ("GetConversation", "GET", ""),
            ("Reply", "POST", "/messages"),
            ("AddNote", "POST", "/notes"),
            ("SetStatus", "PUT", "/status"),
            ("SetAssignee", "PUT", "/assignee"),
        )
    },
    "GetMessage": link("GET", "/v1/messages/{message_id}", message_id="message_id"),
    "ReportDelivery": link("POST", "/v1/messages/{message_id}/delivery", message_id="message_id"),
}

Ingest = Annotated[Principal, require("ingest")]


@router.post(
    "/interactions",
    status_code=202,
    response_model=RecordedOut,
    responses={
        200: {
            "model": RecordedOut,
            "description": "Recorded before: nothing new.",
            "links": _RECORDED_LINKS,
        },
        202: {"links": _RECORDED_LINKS},
        **errors(
            (
                422,
                "`invalid_address`, `address_not_for_channel`: the address cannot be used; "
                "`occurred_at_out_of_range`, `occurred_at_in_future`: the time is not "
                "accepted (before 1970, or ahead of the hub's clock by more than allowed); "
                "`unrecordable`: the store refused its data.",
            )
        ),
    },
)
async def record_interaction(
    body: InteractionIn, runtime: RuntimeDep, response: Response, _: Ingest
) -> RecordedOut:
    """Record one interaction. 202 when new (recorded, or in the distributed runtime accepted
    for recording: then only the message id is known); the same (channel,
    provider_message_id) again answers 200 with the ids first given and records nothing."""
    settings = runtime.settings
    try:
        item = body.to_inbound(settings.default_region, settings.max_clock_skew)
    except InvalidInteraction as exc:
        runtime.metrics.rejected.labels(exc.code).inc()
        raise ApiError(422, exc.code, exc.message, **exc.details) from None
    (result,) = await runtime.submit([item])
    if isinstance(result, Unrecorded):
        raise _unrecorded(result)
    out = _outcome(result)
    duplicate = out.status == "duplicate"
    if duplicate:
        response.status_code = 200
    return RecordedOut.model_validate(
        out.model_dump(exclude={"index", "error"}) | {"duplicate": duplicate}
    )


@router.post(
    "/interactions/batch",
    response_model=BatchOut,
    responses=errors(
        (413, "`batch_too_large`: more interactions than a batch holds (HUB_MAX_BATCH_ITEMS)."),
        (422, "`empty_batch`: no interaction (a bad item is rejected in its result, not here)."),
    ),
)
async def record_batch(body: BatchIn, runtime: RuntimeDep, _: Ingest) -> BatchOut:
    """Record up to 1,000 interactions in one store transaction. Bad items are reported one
    by one and the good ones recorded."""
    settings = runtime.settings
    if len(body.interactions) > settings.max_batch_items:
        raise ApiError(
            413,
            "batch_too_large",
            f"a batch holds at most {settings.max_batch_items} interactions",
            items=len(body.interactions),
        )
    if not body.interactions:
        raise ApiError(422, "empty_batch", "the batch holds no interaction")
    results: list[BatchItemOut | None] = []
    good: list[tuple[int, InboundInteraction]] = []
    for index, raw in enumerate(body.interactions):
        try:
            item = InteractionIn.model_validate(raw).to_inbound(
                settings.default_region, settings.max_clock_skew
            )
        except ValidationError as exc:
            results.append(_rejected(index, "validation_error", _first_error(exc), exc))
            runtime.metrics.rejected.labels("validation_error").inc()
            continue
        except InvalidInteraction as exc:
            results.append(_rejected(index, exc.code, exc.message, None, exc.details))
            runtime.metrics.rejected.labels(exc.code).inc()
            continue
        results.append(None)
        good.append((index, item))
    recorded = await runtime.submit([item for _, item in good]) if good else []
    for (index, _item), result in zip(good, recorded, strict=True):
        if isinstance(result, Unrecorded):
            error = _unrecorded(result)
            results[index] = _rejected(index, error.code, error.message, None, error.details)
        else:
            results[index] = _outcome(result, index)
    final = [r for r in results if r is not None]
    return BatchOut(
        recorded=sum(r.status == "recorded" for r in final),
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


@router.post(
    "/messages/{message_id}/delivery",
    response_model=DeliveryOut,
    responses=errors(
        (422, "`occurred_at_out_of_range`, `occurred_at_in_future`: the time is not accepted.")
    ),
)
async def report_delivery(
    message_id: UUID, body: DeliveryIn, runtime: RuntimeDep, _: Ingest
) -> DeliveryOut:
    """Report a delivery status of a message (sent, delivered, read, failed...). Statuses only
    move forward: a late or repeated report changes nothing."""
    now = datetime.now(UTC)
    occurred_at = body.occurred_at or now
    # The same bounds as for interactions: the time is published in the event.
    try:
        check_occurred_at(occurred_at, now, runtime.settings.max_clock_skew)
    except InvalidInteraction as exc:
        raise ApiError(422, exc.code, exc.message, **exc.details) from None
    status = await run_in_threadpool(
        runtime.commands.update_delivery,
        message_id,
        body.status,
        occurred_at,
        body.error_code,
        body.error_message,
    )
    return DeliveryOut(message_id=message_id, delivery_status=status)


def _outcome(result: Recorded | Accepted, index: int = 0) -> BatchItemOut:
    if isinstance(result, Accepted):
        return BatchItemOut(index=index, status="accepted", message_id=result.message_id)
    return BatchItemOut(
        index=index,
        status="duplicate" if result.duplicate else "recorded",
        message_id=result.message_id,
        customer_id=result.customer_id,
        conversation_id=result.conversation_id,
    )


def _unrecorded(result: Unrecorded) -> DomainError | ApiError:
    """The error of an item that failed on its own (the others of its group were recorded):
    a domain error as it is, data the database refused as 422, anything else as the hub's
    own fault (its log has the traceback)."""
    error = result.error
    if isinstance(error, DomainError | ApiError):
        return error
    if isinstance(error, DataError):
        return ApiError(422, "unrecordable", "the store refused the interaction's data")
    return ApiError(500, "internal_error", "unexpected error, see the hub's log")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "item"
    return f"{where}: {first.get('msg')}"


def _rejected(
    index: int,
    code: str,
    message: str,
    exc: ValidationError | None,
    details: dict[str, Any] | None = None,
) -> BatchItemOut:
    if exc is not None:
        details = {
            "errors": [
                {"loc": list(e["loc"]), "type": e["type"], "message": e["msg"]}
                for e in exc.errors()
            ]
        }
    return BatchItemOut(
        index=index,
        status="rejected",
        error=ErrorBody(code=code, message=message, details=details or {}),
    )
