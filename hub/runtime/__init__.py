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

Only the CLI (and tests) choose and build a runtime; ``hub.api.create_app`` takes one.
"""

from hub.runtime.core import Accepted, Runtime
from hub.runtime.group_commit import Unrecorded

__all__ = ["Accepted", "Runtime", "Unrecorded"]
