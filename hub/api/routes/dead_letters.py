"""Dead letters, for operators (admin only): list them, read one's original decrypted, retry it
after a fix, or drop it. The same operations as ``hub dead-letters``."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, JsonValue

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.events.common import scrub_json
from hub.store.dead_letters import DeadLetter, Kind, Original
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(prefix="/v1/dead-letters", tags=["operations"])
Admin = Annotated[Principal, require("admin")]

#: Request headers shown masked: credentials, not what an operator needs to read.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class DeadLetterOut(BaseModel):
    """What was received but could not be recorded (without its original)."""

    id: UUID
    kind: Kind = Field(
        description="email: a raw message; webhook: a provider request; interaction: an "
        "inbound interaction's JSON (an item that failed to record, or a hub.inbound record)."
    )
    source: str = Field(description="The connector it came from, or hub.inbound.")
    reason: str = Field(description="Why it could not be recorded.")
    received_at: datetime
    size: int = Field(description="Bytes of the original (a mail, a request body, a record).")
    attempts: int = Field(description="Retries that failed.")
    last_error: str | None = Field(description="Why the last retry failed.")
    last_attempt_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls.model_validate(letter, from_attributes=True)


class OriginalOut(BaseModel):
    """The original, readable: the body as text when it is UTF-8, else base64."""

    fields: dict[str, JsonValue] = Field(
        description="webhook: method, hook, url, headers (credentials masked), query; "
        "email: how it came (an IMAP mailbox and UID); interaction: the record's key."
    )
    body: str = Field(description="The raw mail, the request body or the interaction JSON.")
    body_encoding: Literal["utf-8", "base64"]
    json_body: JsonValue = Field(
        default=None, description="The body parsed, when it is JSON (a webhook, an interaction)."
    )


class DeadLetterDetailOut(DeadLetterOut):
    original: OriginalOut


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_after: UUID | None = Field(description="Pass as ?after= for the next (older) page.")


class RetryOut(BaseModel):
    """A retry that recorded the original: the dead letter is gone."""

    id: UUID
    recorded: int = Field(description="Interactions recorded now.")
    duplicates: int = Field(description="Interactions the store held already (not recorded again).")
    reports: int = Field(description="Delivery reports applied.")


_NOT_FOUND = (404, "`not_found`: no dead letter has this id (retried, dropped or purged).")


@router.get("", response_model=DeadLetterPage, responses=errors(_NOT_FOUND))
async def list_dead_letters(
    runtime: RuntimeDep,
    _: Admin,
    kind: Kind | None = None,
    source: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="e.g. email, twilio")
    ] = None,
    after: Annotated[UUID | None, Query(description="next_after of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    """Newest first."""
    letters = await run_in_threadpool(
        runtime.dead_letters.list, limit, after=after, kind=kind, source=source
    )
    return DeadLetterPage(
        items=[DeadLetterOut.of(letter) for letter in letters],
        next_after=letters[-1].id if len(letters) == limit else None,
    )


@router.get("/{letter_id}", response_model=DeadLetterDetailOut, responses=errors(_NOT_FOUND))
async def get_dead_letter(letter_id: UUID, runtime: RuntimeDep, _: Admin) -> DeadLetterDetailOut:
    """One dead letter with its original, decrypted."""
    letter = await run_in_threadpool(runtime.dead_letters.get, letter_id)
    assert letter.original is not None
    return DeadLetterDetailOut(
        **DeadLetterOut.of(letter).model_dump(), original=readable(letter.original)
    )


@router.post(
    "/{letter_id}/retry",
    response_model=RetryOut,
    responses=errors(
        _NOT_FOUND,
        (
            422,
            "`retry_failed`: it still cannot be recorded; the dead letter stays, with "
            "`details.attempts` and `details.error`.",
        ),
    ),
)
async def retry_dead_letter(letter_id: UUID, runtime: RuntimeDep, _: Admin) -> RetryOut:
    """Hand the original to the path it came in by again (a mail to the parser, a webhook
    request to its connector, whose signature must verify again, an interaction to the
    store). Recorded once: what the store holds already is not recorded again."""
    outcome = await runtime.gateway.retry(letter_id)
    if not outcome.succeeded:
        raise ApiError(
            422,
            "retry_failed",
            f"still cannot be recorded: {outcome.error}",
            attempts=outcome.letter.attempts,
            error=outcome.error,
        )
    return RetryOut(
        id=letter_id,
        recorded=outcome.recorded,
        duplicates=outcome.duplicates,
        reports=outcome.reports,
    )


@router.delete("/{letter_id}", status_code=204, responses=errors(_NOT_FOUND))
async def drop_dead_letter(letter_id: UUID, runtime: RuntimeDep, _: Admin) -> Response:
    """Forget a dead letter and its original."""
    if not await run_in_threadpool(runtime.dead_letters.drop, letter_id):
        raise ApiError(404, "not_found", f"no dead letter {letter_id}")
    return Response(status_code=204)


def readable(original: Original) -> OriginalOut:
    """The original as an operator reads it (``hub dead-letters show`` prints the same)."""
    fields: dict[str, Any] = scrub_json(dict(original.fields))  # JSON a response can carry
    headers = fields.get("headers")
    if isinstance(headers, Mapping):
        fields["headers"] = {
            k: ("(masked)" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()
        }
    try:
        body, encoding = original.body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(original.body).decode(), "base64"
    parsed = _json(body) if original.kind != "email" and encoding == "utf-8" else None
    return OriginalOut(fields=fields, body=body, body_encoding=encoding, json_body=parsed)


def _json(text: str) -> JsonValue:
    """``text`` parsed, or None when it is not JSON that a response can carry again."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        parsed: JsonValue = json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return None
    return parsed
