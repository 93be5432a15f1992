"""Export of everything the hub holds about a customer (GDPR art. 15 and 20): one JSON document
for the whole merge group, streamed (``hub.runtime.export``; its schema: docs/export.schema.json).
Admin only: the export is itself a read of personal data and goes into the access log."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.events.export import ExportDocument
from hub.runtime.export import prepare_export
from hub.web.access import Principal

router = APIRouter(tags=["privacy"])
Admin = Annotated[Principal, require("admin")]
#: How the export is named in the access log.
ACTION = "GET /v1/customers/{customer_id}/export"


@router.get(
    "/v1/customers/{customer_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "model": ExportDocument,
            "description": "The export (a download: `Content-Disposition: attachment`).",
        },
        **errors(410),
    },
)
async def export_customer(customer_id: UUID, runtime: RuntimeDep, who: Admin) -> StreamingResponse:
    """Everything the hub holds about the person (the customer's whole merge group) as one
    JSON document: profile, identities with their provenance, the consent ledger, every
    conversation with its messages (text, subject, attachments' metadata, delivery history),
    notes, status changes and assignments, merges, and the access log entries about them.
    Read from the event store and streamed, so any size exports in bounded memory. Recorded
    in the access log (action `GET /v1/customers/{customer_id}/export`)."""
    export = await run_in_threadpool(prepare_export, runtime, customer_id)
    return StreamingResponse(
        export.recorded_chunks(who, ACTION),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{export.customer_id}.json"',
            "Cache-Control": "no-store",
        },
    )
