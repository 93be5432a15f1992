"""Access log: who read whose personal data (admin), for a customer's whole merge group.

The entries hold ids only (``hub.store.access_log``); reading them is not itself logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(tags=["privacy"])
Admin = Annotated[Principal, require("admin")]


class AccessEntryOut(BaseModel):
    """One read of a customer's personal data."""

    model_config = ConfigDict(from_attributes=True)  # built from hub.store.access_log entries

    id: UUID
    at: datetime = Field(description="When it was read (UTC).")
    customer_id: UUID = Field(
        description="The customer it was read as (the root of a merged group read as one)."
    )
    principal_id: UUID | None = Field(
        description="The id of the token (or of the console session's token) that read it; "
        "null for the HUB_ADMIN_TOKEN."
    )
    principal_name: str = Field(description="The token's name.")
    role: Literal["admin", "agent", "service"]
    action: str = Field(
        description="The route template (e.g. `GET /v1/customers/{customer_id}/timeline`) or "
        "the console action (e.g. `console:customer_page`)."
    )
    items: int = Field(
        description="How many items were shown: timeline items; 1 for a profile, a message, a "
        "conversation or a search hit; 0 for a live feed opened."
    )


class AccessLogPage(BaseModel):
    customer_id: UUID = Field(description="The customer asked for.")
    customer_ids: list[UUID] = Field(description="The merge group the entries cover, root first.")
    items: list[AccessEntryOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as ?before= for the next (older) page.")


@router.get(
    "/v1/customers/{customer_id}/access-log",
    response_model=AccessLogPage,
    responses=errors((400, "`invalid_cursor`: before= is not a next_cursor this API gave.")),
)
async def get_access_log(
    customer_id: UUID,
    runtime: RuntimeDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AccessLogPage:
    """Who read this customer's personal data (any member of its merge group, also while it
    was merged into another), when, through what, and how much; newest first. Entries of an
    erased customer stay (they hold ids only) until they age out
    (``HUB_RETENTION__ACCESS_LOG_DAYS``, default 730)."""
    cursor = None
    if before is not None:
        try:
            cursor = UUID(before)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "before= is not a cursor this API gave") from None

    def load() -> AccessLogPage:
        with runtime.read() as conn:
            group = runtime.views.directory.group(conn, customer_id)
            known = runtime.views.directory.get(conn, group[0]) is not None
        try:
            entries, older = runtime.access_log.entries(group, limit, cursor)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "before= is not a cursor this API gave") from None
        if not entries and not known and cursor is None:
            raise ApiError(404, "not_found", f"no customer {customer_id}")
        return AccessLogPage(
            customer_id=customer_id,
            customer_ids=group,
            items=[AccessEntryOut.model_validate(e) for e in entries],
            next_cursor=str(older) if older else None,
        )

    return await run_in_threadpool(load)
