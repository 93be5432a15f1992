"""Data rights: erasure of a customer (GDPR art. 17), by an admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.events import ErasureReason
from hub.runtime.erasure import ErasureReport
from hub.web.access import Principal

router = APIRouter(prefix="/v1/customers", tags=["privacy"])
Admin = Annotated[Principal, require("admin")]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ErasureReason = Field(
        description="Why (a code, recorded in the published `customer.erased.v1`; never free "
        "text, which could itself be personal)."
    )


class ErasureOut(BaseModel):
    customer_ids: list[UUID] = Field(
        description="Every customer erased: the whole merge group of the one asked for."
    )
    erased_at: datetime
    already_erased: bool = Field(description="True when a previous request had erased them.")
    files_compacted: bool = Field(
        description="False when SQLite readers kept the write-ahead log from being truncated "
        "in time; the next checkpoint finishes it."
    )
    removed: dict[str, int] = Field(
        description="Rows removed besides the views: dead letters naming the customer's "
        "addresses, connectors' rows (chat mailboxes)."
    )
    kafka_copies_expire_by: datetime | None = Field(
        description="The distributed runtime: events published before the erasure stay on "
        "the Kafka topics hub.inbound and hub.events, in plaintext, until their retention "
        "ends at the latest at this time (null: this hub writes no Kafka topics)."
    )
    message: str = Field(description="The same, for people.")

    @classmethod
    def of(cls, report: ErasureReport) -> ErasureOut:
        expiry = report.kafka_copies_expire_by
        message = (
            f"erased {len(report.customer_ids)} customer(s)"
            + (" (they were erased already)" if report.already_erased else "")
            + (
                f"; copies on Kafka expire by {expiry.isoformat()}"
                if expiry is not None
                else "; no copy left on this hub"
            )
        )
        return cls(
            customer_ids=list(report.customer_ids),
            erased_at=report.erased_at,
            already_erased=report.already_erased,
            files_compacted=report.files_compacted,
            removed=report.removed,
            kafka_copies_expire_by=expiry,
            message=message,
        )


@router.post(
    "/{customer_id}/erase",
    response_model=ErasureOut,
    responses=errors(
        (404, "`not_found`: no such customer."),
        (422, "`invalid_command`: `reason` is not one of the erasure reasons."),
    ),
)
async def erase_customer(
    customer_id: UUID, body: ErasureIn, runtime: RuntimeDep, who: Admin
) -> ErasureOut:
    """Erase the customer's personal data, and that of every customer merged with it (one
    person): their data keys are destroyed, `customer.erased.v1` is published for each, and
    every plaintext copy the hub holds (views, search, conversations, dead letters, chat
    mailboxes, caches, database files) is gone when this answers. Idempotent."""
    report = await run_in_threadpool(runtime.erase, customer_id, actor=who.name, reason=body.reason)
    return ErasureOut.of(report)
