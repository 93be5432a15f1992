"""The inbound contract: one interaction as a connector (built-in or third-party) hands it over.

Its field types and the rules beyond them (which addresses a channel carries, how far ahead
of the hub's clock a time may be) are defined here once: the HTTP API's request body
(``hub.api.models.InteractionIn``) is built from the same types and checked by the same
functions.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from hub.events.addresses import AddressError, normalise_address
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
    check_text,
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


def _blank_is_none(value: str) -> str | None:
    """Text without its surrounding space; blank text is no value."""
    return value.strip() or None


#: A name of where a customer came from (utm_source, utm_medium, utm_campaign, a mapped source).
SourceName = Annotated[Text, Field(max_length=100), AfterValidator(_blank_is_none)]
#: The page that led a customer to the company (the chat page's ``document.referrer``).
Referrer = Annotated[Text, Field(max_length=2000), AfterValidator(_blank_is_none)]

_ENDPOINT = re.compile(r"^([a-z][a-z0-9_]{0,31}):(.+)$")
MAX_ENDPOINT = 300


def normalise_endpoint(raw: str) -> str:
    """The company's own address an interaction was sent to, ``kind:value``: a phone number or
    email normalised like a customer's address (``phone:+37060000000``), any other kind (a
    page id, a bot) as given with its kind in lower case; ``ValueError`` for anything else."""
    kind, _, value = raw.strip().partition(":")
    text = f"{kind.lower()}:{value.strip()}"
    found = _ENDPOINT.match(text)
    if found is None:
        raise ValueError(
            "an endpoint is kind:value, e.g. phone:+37060000000 or email:sales@example.com"
        )
    if found.group(1) in ("phone", "email"):
        try:
            text = str(normalise_address(text))
        except AddressError as exc:
            raise ValueError(exc.reason) from None
    if len(text) > MAX_ENDPOINT:
        raise ValueError(f"an endpoint is at most {MAX_ENDPOINT} characters")
    return text


def endpoint_of(kind: str, value: str | None) -> str | None:
    """:func:`normalise_endpoint` of ``kind:value`` for a connector, which keeps the message
    whatever its endpoint: None when there is none or it is not one."""
    if not value:
        return None
    try:
        return normalise_endpoint(check_text(f"{kind}:{value}"))
    except ValueError:
        return None


#: A company endpoint (:func:`normalise_endpoint`).
Endpoint = Annotated[Text, Field(max_length=MAX_ENDPOINT), AfterValidator(normalise_endpoint)]


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


class InboundSource(Frozen):
    """Where a customer came from, as the sender of an interaction knows it. Only a customer's
    first contact sets it (docs/profile.md): the chat widget's page (``chat_page``: its
    utm_* parameters and referrer) wins over an API client's (``api``), which wins over the
    company endpoint written to."""

    via: Literal["chat_page", "api"] = Field(
        default="api", description="Who tells: the chat widget's page, or an API client."
    )
    source: SourceName | None = Field(default=None, description="e.g. utm_source: newsletter.")
    medium: SourceName | None = Field(default=None, description="e.g. utm_medium: email.")
    campaign: SourceName | None = Field(default=None, description="e.g. utm_campaign: spring.")
    referrer: Referrer | None = Field(
        default=None, description="The page that led to the contact (personal: encrypted)."
    )

    @property
    def empty(self) -> bool:
        return not (self.source or self.medium or self.campaign or self.referrer)


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
    source: InboundSource | None = Field(
        default=None,
        description="Where the customer came from (utm_* of a page, a referrer); kept only "
        "when this is the customer's first contact.",
    )
    endpoint: Endpoint | None = Field(
        default=None,
        description="The company's own address the customer wrote to (kind:value: the number, "
        "mailbox, page or bot); the first contact's may map to a source "
        "(HUB_ACQUISITION__ENDPOINTS).",
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
