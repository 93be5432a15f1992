"""The sandbox on a running hub (``HUB_SANDBOX``, ``hub serve --demo``; the connector is
``hub.connectors.sandbox``): what the customer simulator and the demo use of it, so that the
web and demo packages reach it through the runtime, as they reach everything else."""

from __future__ import annotations

from hub.connectors.sandbox import (
    INBOUND_HOOK,
    SIGNATURE_HEADER,
    SandboxConnector,
    is_loopback,
    sign,
)
from hub.runtime.core import Runtime

__all__ = [
    "INBOUND_HOOK",
    "SIGNATURE_HEADER",
    "SandboxConnector",
    "is_loopback",
    "sandbox_of",
    "sign",
]


def sandbox_of(runtime: Runtime) -> SandboxConnector | None:
    """The sandbox connector of this process, or None when the sandbox is off."""
    connector = runtime.gateway.by_name.get("sandbox")
    return connector if isinstance(connector, SandboxConnector) else None
