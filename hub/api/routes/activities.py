"""Business activity: the company's other systems (shop, billing, booking) record what a
customer did, shown on the customer's timeline and published as ``activity.recorded.v1``
(docs/activities.md; the rules are ``hub.domain.activities``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from hub.api.activity_models import (
    ActivityBatchIn,
    ActivityBatchItemOut,
    ActivityBatchOut,
    ActivityIn,
    ActivityOut,
)
from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.domain.activities import ActivityRecorded, ActivitySpec, check_activity
from hub.domain.errors import DomainError
from hub.runtime import Runtime
from hub.web.access import Principal
from hub.web.errors import ApiError, ErrorDetail

router = APIRouter(prefix="/v1/activities", tags=["activities"])
#: The systems that record interactions record activities too (a ``service`` token).
Ingest = Annotated[Principal, require("ingest")]
MAX_BATCH = 500

_INVALID = (
    422,
    "`invalid_command`: a rule across fields (an amount without its currency, a custom "
    "activity without a name, both customer_id and address, no customer named at all), an "
    "address that cannot be normalised, or a time in the future (`details.field`).",
)


def _spec(runtime: Runtime, body: ActivityIn) -> ActivitySpec:
    settings = runtime.settings
    return check_activity(
        body.fields(),
        default_region=settings.default_region,
        latest=datetime.now(UTC) + settings.max_clock_skew,
    )


@router.post(
    "",
    status_code=201,
    response_model=ActivityOut,
    responses={
        200: {"model": ActivityOut, "description": "Recorded before: nothing new."},
        **errors(
            (
                404,
                "`not_found`: no such customer_id, or an external_id the hub does not know "
                "given alone (send it once with customer_id or address).",
            ),
            (409, "`external_id_taken`: the external_id belongs to another customer."),
            410,
            _INVALID,
        ),
    },
)
async def record_activity(
    body: ActivityIn, runtime: RuntimeDep, response: Response, _: Ingest
) -> ActivityOut:
    """Record something the customer did in another system (201). The same (source,
    source_id) again answers 200 with the ids first given and records nothing."""
    spec = _spec(runtime, body)
    recorded = await run_in_threadpool(runtime.commands.activities.record, spec)
    if recorded.duplicate:
        response.status_code = 200
    return ActivityOut(
        activity_id=recorded.activity_id,
        customer_id=recorded.customer_id,
        duplicate=recorded.duplicate,
    )


@router.post(
    "/batch",
    response_model=ActivityBatchOut,
    responses=errors(
        (413, f"`batch_too_large`: more than {MAX_BATCH} activities."),
        (422, "`empty_batch`: no activity (a bad item is rejected in its result, not here)."),
    ),
)
async def record_batch(body: ActivityBatchIn, runtime: RuntimeDep, _: Ingest) -> ActivityBatchOut:
    """Record up to 500 activities in one store transaction. Each item gets its own result:
    a bad one (`validation_error`, `invalid_command`, `not_found`, `customer_erased`,
    `external_id_taken`) is rejected on its own and the others recorded."""
    if len(body.activities) > MAX_BATCH:
        raise ApiError(
            413,
            "batch_too_large",
            f"a batch holds at most {MAX_BATCH} activities",
            items=len(body.activities),
        )
    if not body.activities:
        raise ApiError(422, "empty_batch", "the batch holds no activity")
    results: list[ActivityBatchItemOut | None] = []
    good: list[tuple[int, ActivitySpec]] = []
    for index, raw in enumerate(body.activities):
        try:
            spec = _spec(runtime, ActivityIn.model_validate(raw))
        except ValidationError as exc:
            details = {
                "errors": [
                    {"loc": list(e["loc"]), "type": e["type"], "message": e["msg"]}
                    for e in exc.errors()
                ]
            }
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "item"
            message = f"{where}: {first.get('msg')}"
            results.append(_rejected(index, "validation_error", message, details))
            continue
        except DomainError as exc:
            results.append(_rejected(index, exc.code, exc.message, exc.details))
            continue
        results.append(None)
        good.append((index, spec))
    commands = runtime.commands.activities
    outcomes = await run_in_threadpool(commands.record_many, [s for _, s in good])
    for (index, _item), outcome in zip(good, outcomes, strict=True):
        results[index] = _outcome(index, outcome)
    final = [r for r in results if r is not None]
    return ActivityBatchOut(
        recorded=sum(r.status == "recorded" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


def _outcome(index: int, outcome: ActivityRecorded | DomainError) -> ActivityBatchItemOut:
    if isinstance(outcome, DomainError):
        return _rejected(index, outcome.code, outcome.message, outcome.details)
    return ActivityBatchItemOut(
        index=index,
        status="duplicate" if outcome.duplicate else "recorded",
        activity_id=outcome.activity_id,
        customer_id=outcome.customer_id,
    )


def _rejected(index: int, code: str, message: str, details: dict[str, Any]) -> ActivityBatchItemOut:
    return ActivityBatchItemOut(
        index=index,
        status="rejected",
        error=ErrorDetail(code=code, message=message, details=details),
    )
