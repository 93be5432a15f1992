"""Bearer-token authentication, the scopes each role has, and the re-check that ends a
long-lived stream once its credential is revoked."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.errors import ApiError
from hub.runtime import Runtime
from hub.store.tokens import Principal

#: What each role may do. ingest: record interactions and delivery reports; read: customers,
#: timelines, conversations; act: agent commands; events: the published event feed.
SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset({"ingest", "read", "act", "events", "admin"}),
    "agent": frozenset({"read", "act"}),
    "service": frozenset({"ingest", "read", "events"}),
}

_bearer = HTTPBearer(auto_error=False, description="A token from `hub tokens create`.")


# Dependencies are ``async``: FastAPI runs plain functions in its threadpool, three hops per
# request that measurably cost more than the work they do.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticated(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    token = credentials.credentials
    known, principal = runtime.tokens.cached(token)
    if not known:  # a database read: off the event loop
        principal = await run_in_threadpool(runtime.tokens.verify, token)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    return principal


def require(scope: str) -> object:
    """A dependency that lets through only principals whose role has ``scope``."""

    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if scope not in SCOPES[principal.role]:
            raise ApiError(
                403, "forbidden", f"role {principal.role!r} may not {scope}", scope=scope
            )
        return principal

    return Depends(check)


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
