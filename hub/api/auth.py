"""Bearer-token authentication and the scopes each role has."""

from __future__ import annotations

from typing import Annotated

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
