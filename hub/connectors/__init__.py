"""Channel connectors: the port every connector implements, and the registry that finds them.

A connector imports only ``hub.events``, this package's ``base`` module and its own SDK
(STYLE.md rules 1-3). Built-in connectors are listed by name in :data:`BUILTIN`; third-party
ones register under the entry-point group ``interaction_hub.connectors``.
"""

from __future__ import annotations

from hub.connectors.base import (
    Connector,
    ConnectorError,
    DeliveryReport,
    InvalidSignature,
    OutboundMessage,
    PermanentError,
    RetryableError,
    SendResult,
)
from hub.connectors.registry import BUILTIN, ENTRY_POINT_GROUP, available, load

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Connector",
    "ConnectorError",
    "DeliveryReport",
    "InvalidSignature",
    "OutboundMessage",
    "PermanentError",
    "RetryableError",
    "SendResult",
    "available",
    "load",
]
