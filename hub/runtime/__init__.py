"""The runtime core: what the API, the console and the CLI see of a running hub, whichever
runtime drives it.

- ``core``: :class:`Runtime`, the commands, queries and change notification over one store
  and its views; ``hub.embedded`` and ``hub.stream`` subclass it (they differ only in how
  interactions reach the processor and how the projections are fed).
- ``group_commit``: concurrent requests' interactions recorded in one transaction, one bad
  item never failing the others.
- ``gateway``: the connectors of one process, and the one way what they receive enters the
  hub (dead letters for what cannot be recorded).
- ``dispatcher``: sends agents' replies through the connectors, as the domain decided.

- ``views``: the views of a store, as every runtime (and the projection process) opens them.

Only the CLI (and tests) choose and build a runtime; ``hub.api.create_app`` takes one.

The classes below are imported when first asked for (PEP 562), not with the package: the
projection process (``hub.embedded.process``) needs ``views`` alone, and the channels, the
webhooks and the rest that ``core`` brings would cost it memory it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.runtime.core import Accepted, Runtime
    from hub.runtime.group_commit import Unrecorded

__all__ = ["Accepted", "Runtime", "Unrecorded"]

_HOMES = {"Accepted": "hub.runtime.core", "Runtime": "hub.runtime.core"}
_HOMES["Unrecorded"] = "hub.runtime.group_commit"


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
