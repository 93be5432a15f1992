"""Vocabulary shared by every contract: channels, directions, statuses, attachments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

#: No interaction is older; times near ``datetime.min`` cannot even be converted to UTC.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)


def _refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters (\\u0000) are not allowed")
    return value


def _in_range(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if in_utc < EARLIEST_OCCURRED_AT:
        raise ValueError(f"time before {EARLIEST_OCCURRED_AT.isoformat()}")
    return value


#: Text without NUL characters: PostgreSQL text cannot hold NUL, and one stored event that a
#: read model cannot take would hold up that read model.
Text = Annotated[str, AfterValidator(_refuse_nul)]
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
    url: Text | None = Field(
        default=None, max_length=2048, description="Where the provider serves the file, if known."
    )
