"""Vocabulary shared by every contract: channels, directions, statuses, attachments."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    JsonValue,
    TypeAdapter,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from typing_extensions import TypeAliasType

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


#: A JSON Schema pattern every dialect reads (Python, ECMA 262, Rust): no NUL. Lone
#: surrogates cannot be written in one (Rust and JavaScript refuse \uD800 in a pattern), so
#: only descriptions name them.
NUL_FREE_PATTERN = r"^[^\u0000]*$"

#: The shape of a metadata value, for its JSON Schema only (validation: :func:`check_json`).
#: Written as pydantic writes JsonValue: mypy follows a recursive alias only in this form.
if TYPE_CHECKING:
    MetadataValue: TypeAlias = (
        str | float | bool | list["MetadataValue"] | dict[str, "MetadataValue"] | None
    )
else:
    MetadataValue = TypeAliasType(
        "MetadataValue",
        Annotated[str, Field(pattern=NUL_FREE_PATTERN)]
        | float  # "number": JSON Schema cannot tell 2**70 from 2.0**70; the description does
        | bool
        | list["MetadataValue"]
        | dict[str, "MetadataValue"]
        | None,
    )


class _MetadataJsonSchema:
    """The JSON Schema of :data:`Metadata`: what :func:`check_json` enforces, as far as JSON
    Schema can say it (no NUL in keys and strings), the rest in the description."""

    def __get_pydantic_json_schema__(
        self, _: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(TypeAdapter(dict[str, MetadataValue]).core_schema)
        value = handler.resolve_ref_schema(schema["additionalProperties"])
        for shape in (schema, *value["anyOf"]):
            if shape.get("type") == "object":
                shape["propertyNames"] = {"pattern": NUL_FREE_PATTERN}
        schema["description"] = (
            "Free-form JSON: keys and strings without NUL or lone surrogates, integers within "
            f"64 bits, at most {MAX_METADATA_DEPTH} levels deep."
        )
        return schema


#: Free-form JSON a client attaches to an interaction (:func:`check_json`).
Metadata = Annotated[dict[str, JsonValue], AfterValidator(_checked_metadata), _MetadataJsonSchema()]


def _text_json_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = NUL_FREE_PATTERN
    # A field's own description stays (it says what the field is).
    schema.setdefault(
        "description", "Text: NUL (U+0000) and lone surrogates (U+D800-U+DFFF) are refused."
    )


#: Text without NUL characters or lone surrogates (:func:`check_text`): one stored event that
#: a store, an encoder or a read model cannot take would fail its whole write group or hold up
#: every reader after it.
Text = Annotated[
    str,
    AfterValidator(check_text),
    Field(json_schema_extra=_text_json_schema),
]


def _web_url(value: str) -> str:
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        raise ValueError("only http:// and https:// URLs are allowed")
    return value


def _json_integer(value: object) -> object:
    # JSON true/false and "12" are no integers, whatever lax int parsing makes of them.
    if isinstance(value, bool | str):
        raise ValueError("expected an integer")
    return value


#: An integer as JSON writes it (no boolean, no string of digits).
JsonInteger = Annotated[int, BeforeValidator(_json_integer)]

#: A link an agent may click: http or https only (never ``javascript:`` or ``data:``).
WebUrl = Annotated[
    str,
    AfterValidator(check_text),
    AfterValidator(_web_url),
    Field(json_schema_extra={"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\u0000]*$"}),
]
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
#: Why a customer was erased: the grounds of GDPR art. 17(1), the company's own retention
#: policy, or test data.
ErasureReason = Literal[
    "data_subject_request",
    "consent_withdrawn",
    "objection",
    "unlawfully_processed",
    "legal_obligation",
    "child_data",
    "retention_expired",
    "test_data",
]
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
    # At most 2**53 - 1: what every JSON reader keeps exact (JavaScript's too); beyond 64 bits
    # no encoder of the hub takes it at all.
    size: JsonInteger = Field(ge=0, le=2**53 - 1, description="Size in bytes.")
    url: WebUrl | None = Field(
        default=None,
        max_length=2048,
        description="Where the provider serves the file, if known (http or https only).",
    )
