"""Storage adapters: the eventsourcing recorders, the key store and the read-model database.

``open_store(settings)`` is the one place that turns configuration into these objects.
"""

from __future__ import annotations

from hub.store.store import Store, open_store

__all__ = ["Store", "open_store"]
