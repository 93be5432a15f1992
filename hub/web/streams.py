"""What long-lived responses (the API's event stream, the console's live feeds) share: the
store positions a client may send back, the re-check that ends a stream once its credential is
revoked, and the error event it ends with.

Positions come back as ``after=`` or ``Last-Event-ID``: they are checked against the store's
range here, so an out-of-range number is a 4xx rather than a database overflow.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.concurrency import run_in_threadpool

from hub.web.errors import ApiError

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


#: The error a stream ends with when its credential no longer holds (its final SSE event).
CREDENTIAL_ENDED: dict[str, Any] = {
    "error": {
        "code": "unauthorized",
        "message": "the token or session of this stream was revoked or has ended",
        "details": {},
    }
}


class StreamCredential:
    """Whether the token or session a long-lived stream was opened with still holds.

    A stream asks :meth:`holds` before each batch it sends and at least every ``interval``
    seconds while idle. The database is asked (``check``, a keyed lookup past every cache) at
    most once per ``interval``, and at once when ``revocations`` (a counter of this process's
    revocations and sign-outs) moved: so a revocation ends the stream within ``interval``
    in any process, before the next batch in the process that made it.
    """

    def __init__(
        self, check: Callable[[], bool], revocations: Callable[[], int], interval: float
    ) -> None:
        self._check = check
        self._revocations = revocations
        self.interval = interval
        self._due = 0.0  # the first call checks: authentication may have used a cache
        self._seen = revocations()

    async def holds(self) -> bool:
        revocations = self._revocations()
        if time.monotonic() < self._due and revocations == self._seen:
            return True
        self._seen = revocations  # read before the check: a later revocation is seen next time
        valid = await run_in_threadpool(self._check)
        self._due = time.monotonic() + self.interval
        return valid
