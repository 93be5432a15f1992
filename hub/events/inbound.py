"""The inbound contract: one interaction as a connector (built-in or third-party) hands it over.

Its field types and the rules beyond them (which addresses a channel carries, how far ahead
of the hub's clock a time may be) are defined here once: the HTTP API's request body
(``hub.api.models.InteractionIn``) is built from the same types and checked by the same
functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from hub.events.addresses import normalise_address
from hub.events.common import (
    CHANNEL_ADDRESS_KINDS,
    EARLIEST_OCCURRED_AT,
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

#: The fields of an interaction, with their limits.
ProviderMessageId = Annotated[Text, Field(min_length=1, max_length=512)]
MessageText = Annotated[Text, Field(max_length=MAX_TEXT)]
Subject = Annotated[Text, Field(max_length=998)]  # RFC 5322's line limit
ThreadRef = Annotated[Text, Field(max_length=512)]
References = Annotated[tuple[Text, ...], Field(max_length=100)]
ContactName = Annotated[Text, Field(max_length=200)]
Attachments = Annotated[tuple[Attachment, ...], Field(max_length=100)]


class InvalidInteraction(ValueError):
    """An interaction that breaks a rule beyond its fields' types; ``code`` names the rule
    (the API answers with it), ``details`` say what broke it."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def check_channel_carries(channel: str, address_kind: str) -> None:
    """Refuse (``address_not_for_channel``) an address of a kind ``channel`` does not carry
    (:data:`CHANNEL_ADDRESS_KINDS`: SMS carries phones, email emails...)."""
    if address_kind not in CHANNEL_ADDRESS_KINDS[channel]:
        raise InvalidInteraction(
            "address_not_for_channel",
            f"channel {channel!r} does not carry {address_kind!r} addresses",
            channel=channel,
            address_kind=address_kind,
        )


def check_occurred_at(occurred_at: datetime, now: datetime, max_skew: timedelta) -> None:
    """Refuse a time before 1970 (``occurred_at_out_of_range``) or more than ``max_skew``
    ahead of ``now`` (``occurred_at_in_future``: the sender's clock is wrong).

    Checked where a time enters the hub (the API, with the hub's clock and
    ``HUB_MAX_CLOCK_SKEW``); the contract itself checks only the first, as a later reader of
    an interaction (a processor, a replay) has no "now" of the sender's. The email parser
    does not refuse a lying ``Date`` header: it takes the time of receipt instead.
    """
    if occurred_at < EARLIEST_OCCURRED_AT:
        raise InvalidInteraction(
            "occurred_at_out_of_range",
            f"occurred_at is before {EARLIEST_OCCURRED_AT.isoformat()}",
            occurred_at=occurred_at.isoformat(),
        )
    if occurred_at > now + max_skew:
        raise InvalidInteraction(
            "occurred_at_in_future",
            f"occurred_at is more than {max_skew} in the future",
            occurred_at=occurred_at.isoformat(),
        )


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
    provider_message_id: ProviderMessageId = Field(
        description="The provider's own id of this message."
    )
    occurred_at: Instant = Field(description="When the provider says it happened (1970 on).")
    text: MessageText = ""
    subject: Subject | None = None
    thread_ref: ThreadRef | None = Field(
        default=None, description="Provider message id this one replies to (email: In-Reply-To)."
    )
    references: References = Field(
        default=(), description="Earlier provider message ids of the thread."
    )
    contact_name: ContactName | None = Field(
        default=None, description="The customer's name as the channel shows it."
    )
    attachments: Attachments = ()
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
        check_channel_carries(self.channel, self.address.partition(":")[0])
        return self
