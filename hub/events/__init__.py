"""The hub's contracts: the inbound interaction and the published domain events.

Everything a connector produces and a downstream service consumes is defined here, as frozen
pydantic v2 models. This package imports nothing else of the hub.
"""

from __future__ import annotations

from hub.events.addresses import Address, AddressError, AddressKind, normalise_address
from hub.events.common import (
    CHANNEL_ADDRESS_KINDS,
    Attachment,
    Channel,
    ConsentPurpose,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    ErasureReason,
)
from hub.events.inbound import ConsentSignal, InboundInteraction
from hub.events.published import (
    EVENT_CLASSES,
    EVENT_TYPES,
    ConversationAssigned,
    ConversationOpened,
    ConversationStatusChanged,
    CustomerConsentChanged,
    CustomerCreated,
    CustomerErased,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerTagsChanged,
    CustomerUnmerged,
    Envelope,
    InteractionDeliveryUpdated,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
    NoteAdded,
    PublishedEvent,
    decode_event,
    encode_event,
)

__all__ = [
    "CHANNEL_ADDRESS_KINDS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "Address",
    "AddressError",
    "AddressKind",
    "Attachment",
    "Channel",
    "ConsentPurpose",
    "ConsentSignal",
    "ConversationAssigned",
    "ConversationOpened",
    "ConversationStatus",
    "ConversationStatusChanged",
    "CustomerConsentChanged",
    "CustomerCreated",
    "CustomerErased",
    "CustomerIdentityLinked",
    "CustomerMerged",
    "CustomerProfileUpdated",
    "CustomerTagsChanged",
    "CustomerUnmerged",
    "DeliveryStatus",
    "Direction",
    "Envelope",
    "ErasureReason",
    "InboundInteraction",
    "InteractionDeliveryUpdated",
    "InteractionQueued",
    "InteractionReceived",
    "InteractionSent",
    "NoteAdded",
    "PublishedEvent",
    "decode_event",
    "encode_event",
    "normalise_address",
]
