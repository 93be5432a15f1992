"""The inbound contract: one interaction as a connector (built-in or third-party) hands it over."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hub.events.addresses import normalise_address
from hub.events.common import (
    CHANNEL_ADDRESS_KINDS,
    Attachment,
    Channel,
    ConsentPurpose,
    Direction,
    Frozen,
    Instant,
    Metadata,
    Text,
)

MAX_TEXT = 64 * 1024


class ConsentSignal(Frozen):
    """The customer gave or withdrew consent with this message (an SMS STOP or START, an
    unsubscribe): the hub records it in the customer's consent ledger for the channel."""

    granted: bool
    purposes: tuple[ConsentPurpose, ...] = Field(
        default=("service", "marketing"), min_length=1, description="What it covers."
    )
    reason: Text = Field(
        min_length=1, max_length=200, description="e.g. sms_keyword:STOP, list_unsubscribe."
    )


class InboundInteraction(Frozen):
    """One message on a channel, inbound from a customer or outbound from the company.

    ``(channel, provider_message_id)`` identifies it: the same pair again is a replay and is
    recorded once only. ``address`` is the customer's side of the exchange, already normalised
    (``phone:+4915112345678``); a connector builds it with ``hub.events.normalise_address``.
    """

    type: Literal["interaction.inbound.v1"] = "interaction.inbound.v1"
    channel: Channel
    direction: Direction
    address: str = Field(description="Normalised customer address, kind:value.")
    provider_message_id: Text = Field(
        min_length=1, max_length=512, description="The provider's own id of this message."
    )
    occurred_at: Instant = Field(description="When the provider says it happened (1970 on).")
    text: Text = Field(default="", max_length=MAX_TEXT)
    subject: Text | None = Field(default=None, max_length=998)
    thread_ref: Text | None = Field(
        default=None,
        max_length=512,
        description="Provider message id this one replies to (email: In-Reply-To).",
    )
    references: tuple[Text, ...] = Field(
        default=(), max_length=100, description="Earlier provider message ids of the thread."
    )
    contact_name: Text | None = Field(
        default=None, max_length=200, description="The customer's name as the channel shows it."
    )
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=100)
    metadata: Metadata = Field(default_factory=dict)
    consent: ConsentSignal | None = Field(
        default=None, description="A consent change this message carries (STOP, START...)."
    )

    @field_validator("address")
    @classmethod
    def _address_is_normalised(cls, value: str) -> str:
        normalised = str(normalise_address(value))
        if normalised != value:
            raise ValueError(f"address must be normalised: {normalised!r}")
        return value

    @model_validator(mode="after")
    def _channel_carries_address(self) -> InboundInteraction:
        kind = self.address.partition(":")[0]
        if kind not in CHANNEL_ADDRESS_KINDS[self.channel]:
            raise ValueError(f"channel {self.channel!r} does not carry {kind!r} addresses")
        return self
