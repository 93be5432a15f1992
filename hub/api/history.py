"""The timeline as the hub knew it at a moment, in the API: the answer of
``GET /v1/customers/{id}/timeline?as_of=`` and how the route reads it (docs/history.md).

The reading itself is ``hub.runtime.history``; here are the API's rules around it: an erased
customer is 410 as for today's timeline, a customer that had not appeared by then 404, a
moment no calendar can hold in UTC 422, and the read goes to the access log.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from hub.api.models import ConversationOut, TimelineItemOut, TimelinePage
from hub.projections.base import utc
from hub.runtime import Runtime
from hub.runtime.history import NotKnownThen, timeline_as_of
from hub.web.access import Principal
from hub.web.errors import ApiError

AS_OF_DESCRIPTION = (
    "Answer the timeline as the hub knew it at this moment (RFC 3339 with an offset): only "
    "what had been recorded by then, with the delivery states, conversation states and "
    "merges of then. A moment still to come answers what is recorded so far."
)


class TimelineAsOfPage(TimelinePage):
    as_of: datetime = Field(description="The moment asked for (as_of=), in UTC.")
    position: int = Field(
        description="The store position the answer stops at: the last event recorded at or "
        "before as_of (0: none)."
    )
    conversations: list[ConversationOut] = Field(
        description="The conversations of the customer (of its group then) as they were then: "
        "status, assignee, message count; newest activity first."
    )


def timeline_page_as_of(
    runtime: Runtime,
    who: Principal,
    action: str,
    customer_id: UUID,
    as_of: datetime,
    limit: int,
    before: str | None,
) -> TimelineAsOfPage:
    """One page of the customer's timeline as of ``as_of``, its read logged as ``action``.
    Blocking: call it in a thread."""
    moment = _in_utc(as_of)
    with runtime.read() as conn:
        if runtime.views.erased_among(conn, [customer_id]):
            raise ApiError(
                410, "customer_erased", f"customer {customer_id}'s personal data was erased"
            )
    try:
        found = timeline_as_of(runtime.store, runtime.views, customer_id, moment, limit, before)
    except NotKnownThen:
        raise ApiError(
            404, "not_found", f"no customer {customer_id} was known to the hub at {moment}"
        ) from None
    except ValueError:
        raise ApiError(400, "invalid_cursor", "before= is not a cursor this API gave") from None
    runtime.access_log.record(who, found.group, action, len(found.items))
    return TimelineAsOfPage(
        customer_id=found.customer_id,
        items=[TimelineItemOut.model_validate(i) for i in found.items],
        next_cursor=found.next_cursor,
        as_of=moment,
        position=found.position,
        conversations=[ConversationOut.model_validate(c) for c in found.conversations],
    )


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; 422 for one that has no UTC form (year 1 at +14:00)."""
    try:
        return utc(moment)
    except OverflowError:
        raise ApiError(
            422, "invalid_as_of", "as_of= is outside the range of times the hub can hold"
        ) from None
