"""Vocabulary shared by every contract: channels, directions, statuses, attachments."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

#: No interaction is older; times near ``datetime.min`` cannot even be converted to UTC.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)


def check_text(value: str) -> str:
    """``value`` if every store, encoder and reader can hold it, else ``ValueError``.

    Refused: NUL (PostgreSQL text cannot hold it) and lone UTF-16 surrogates (U+D800-U+DFFF,
    which JSON escapes such as ``"\\ud800"`` decode to: no UTF-8 encoder takes them, so such a
    string could be validated but never encrypted, stored or published)."""
    if "\x00" in value:
        raise ValueError("NUL characters (\\u0000) are not allowed")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"lone surrogate code point U+{ord(value[exc.start]):04X} at {exc.start}: "
                "not valid Unicode text"
            ) from None
    return value


def scrub_text(value: str) -> str:
    """``value`` with what :func:`check_text` refuses replaced by U+FFFD (the replacement
    character): for text a provider already sent, which must be kept rather than refused."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value


def _in_range(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if in_utc < EARLIEST_OCCURRED_AT:
        raise ValueError(f"time before {EARLIEST_OCCURRED_AT.isoformat()}")
    return value


#: How deep metadata may nest, and the integer range every JSON encoder and database takes.
MAX_METADATA_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)


def check_json(value: Any, depth: int = 0) -> None:
    """Raise ``ValueError`` unless ``value`` is JSON that every encoder of the hub takes back:
    keys and strings as :func:`check_text`, integers within 64 bits, finite numbers, at most
    :data:`MAX_METADATA_DEPTH` levels (orjson refuses the rest, and an event that cannot be
    encoded would block every reader of the published log)."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict | list | tuple):
        if depth >= MAX_METADATA_DEPTH:
            raise ValueError(f"nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key)
                check_json(item, depth + 1)
        else:
            for item in value:
                check_json(item, depth + 1)
    else:
        raise ValueError(f"not a JSON value: {type(value).__name__}")


def _checked_metadata(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    check_json(value)
    return value


def scrub_json(value: Any) -> Any:
    """``value`` with every key and string scrubbed (:func:`scrub_text`): for JSON a provider
    sent, after its signature was checked."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub_text(str(k)): scrub_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v) for v in value]
    return value


#: Free-form JSON a client attaches to an interaction (:func:`check_json`).
Metadata = Annotated[dict[str, JsonValue], AfterValidator(_checked_metadata)]

#: Text without NUL characters or lone surrogates (:func:`check_text`): one stored event that
#: a store, an encoder or a read model cannot take would fail its whole write group or hold up
#: every reader after it.
Text = Annotated[str, AfterValidator(check_text)]


def _web_url(value: str) -> str:
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        raise ValueError("only http:// and https:// URLs are allowed")
    return value


#: A link an agent may click: http or https only (never ``javascript:`` or ``data:``).
WebUrl = Annotated[str, AfterValidator(check_text), AfterValidator(_web_url)]
#: An aware time from 1970 on, convertible to UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]

Channel = Literal[
    "email", "sms", "whatsapp", "chat", "messenger", "instagram", "telegram", "voice", "api"
]
Direction = Literal["inbound", "outbound"]
ConversationStatus = Literal["open", "pending", "resolved"]
DeliveryStatus = Literal[
    "received", "accepted", "queued", "sent", "delivered", "read", "undelivered", "failed"
]
#: Why a message goes out: replies and notices the customer expects, or marketing.
ConsentPurpose = Literal["service", "marketing"]
AddressKind = Literal["email", "phone", "chat", "messenger", "instagram", "telegram"]

#: Which address kinds a channel can carry. SMS, WhatsApp and voice share the phone identity;
#: the generic API channel accepts any kind.
CHANNEL_ADDRESS_KINDS: dict[str, frozenset[str]] = {
    "email": frozenset({"email"}),
    "sms": frozenset({"phone"}),
    "whatsapp": frozenset({"phone"}),
    "voice": frozenset({"phone"}),
    "chat": frozenset({"chat", "email"}),
    "messenger": frozenset({"messenger"}),
    "instagram": frozenset({"instagram"}),
    "telegram": frozenset({"telegram"}),
    "api": frozenset({"email", "phone", "chat", "messenger", "instagram", "telegram"}),
}


class Frozen(BaseModel):
    """Base of every contract model: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Attachment(Frozen):
    """Metadata of a file that came with a message; the hub stores no file content."""

    name: Text = Field(min_length=1, max_length=255, description="File name as sent.")
    content_type: str = Field(
        min_length=3, max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+", description="MIME type."
    )
    size: int = Field(ge=0, description="Size in bytes.")
    url: WebUrl | None = Field(
        default=None,
        max_length=2048,
        description="Where the provider serves the file, if known (http or https only).",
    )
