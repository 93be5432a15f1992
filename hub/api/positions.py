"""Store positions as clients send them back (``after=``, ``Last-Event-ID``): checked against
the store's range here, so an out-of-range number is a 4xx rather than a database overflow."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from hub.api.errors import ApiError

#: Positions are notification ids, a signed 64-bit column in both backends.
MAX_POSITION = 2**63 - 1

_DECIMAL = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes "²" (superscript two)


async def _last_event_id(
    value: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The id: of the last event received (a reconnecting EventSource "
            "sends it): the stream resumes after it.",
        ),
    ] = None,
) -> int | None:
    """The position of a ``Last-Event-ID`` header; None when absent or empty (the SSE spec
    sends none before the first id). Anything that is not a position this hub gave answers
    400 ``invalid_cursor``: resuming from a guess could skip events silently. A dependency,
    so the answer is an error response and not a stream aborted after its 200."""
    if not value:
        return None
    if _DECIMAL.fullmatch(value) is None or int(value) > MAX_POSITION:
        raise ApiError(
            400,
            "invalid_cursor",
            f"Last-Event-ID must be a position from 0 to {MAX_POSITION} (an id: of this stream)",
        )
    return int(value)


#: The ``Last-Event-ID`` a stream resumes after (None: not sent).
LastEventId = Annotated[int | None, Depends(_last_event_id)]
