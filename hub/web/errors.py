"""One error shape for every failure of the API and the console:
``{"error": {"code", "message", "details"}}``: the model the OpenAPI document shows
(:class:`ErrorResponse`), :class:`ApiError` for a reason the domain does not know, and the
handlers that answer every failure with that body (``hub.api.openapi`` documents them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from hub.domain.errors import DomainError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class FieldError(BaseModel):
    """One reason a request does not match the schema (``details`` of ``validation_error``)."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names.")
    type: str = Field(description="What kind of problem (pydantic's error type).")
    message: str


class ErrorDetail(BaseModel):
    """What went wrong: a machine-readable ``code``, a message for people, and details."""

    # Always sent, so the response schema requires them (defaults are only for building one).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: str = Field(
        description="Machine-readable reason; each response's description lists the codes.",
        examples=["not_found", "validation_error"],
    )
    message: str = Field(description="For people; may change between versions.")
    details: dict[str, JsonValue] | list[FieldError] = Field(
        default_factory=dict,
        description="Context of the code (ids, limits...); for validation_error, the list "
        "of problems.",
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error raised by a route for a reason the domain does not know (bad cursor...)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
        for e in exc.errors()
    ]


def _allowed_methods(request: Request, headers: Mapping[str, str] | None) -> str:
    """Every method some route of the path takes (with those ``headers`` allow already).
    Starlette's 405 names only those of the first route that matched the path, so with one
    route per method (GET and DELETE of one path) it would not name them all, as the Allow
    header must (RFC 9110)."""
    path = request.scope["path"]
    given = (headers or {}).get("Allow", "")
    allowed = {m.strip() for m in given.split(",") if m.strip()}
    for route in iter_route_contexts(request.app.routes):
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            allowed |= set(methods)
    return ", ".join(sorted(allowed))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        # RFC 6750: a 401 for a missing or bad token names the scheme to authenticate with
        # (not so a webhook's bad signature, which is no bearer token).
        unauthorized = exc.status == 401 and exc.code == "unauthorized"
        headers = {"WWW-Authenticate": "Bearer"} if unauthorized else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        # StoreUnavailable (503) tells the client to retry, like a raw database failure does.
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "malformed_json", "the body is not valid JSON", details)
        return error_response(
            422, "validation_error", "the request does not match the schema", details
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = exc.headers
        if exc.status_code == 405 and request.scope.get("type") == "http":
            headers = {**(headers or {}), "Allow": _allowed_methods(request, headers)}
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(PersistenceError)
    @app.exception_handler(DBAPIError)
    async def _store(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database failure: %s", type(exc).__name__)
        return error_response(
            503,
            "store_unavailable",
            "the store is unavailable, retry later",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected error, see the hub's log")
