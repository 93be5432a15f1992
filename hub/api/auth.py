"""Bearer-token authentication of the API: the runtime of a request, the principal of its
token, and the dependency that lets through only roles with a scope (``hub.web.access``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.runtime import Runtime
from hub.web.access import SCOPES, Principal
from hub.web.errors import ApiError

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
