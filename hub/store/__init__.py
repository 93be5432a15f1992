"""Storage adapters: the eventsourcing recorders, the key store and the read-model database.

``open_store(settings)`` is the one place that turns configuration into these objects. The
other modules hold what lives beside the events in the state database: API tokens and console
sessions, dead letters, the leases of the log's readers; ``hub.store.database`` is the one
module that tells SQLite and PostgreSQL apart, and ``hub.store.transfer`` moves a hub's stored
state from one store to another.
"""

from __future__ import annotations

from hub.store.commits import CommitSignal
from hub.store.database import create_db_engine, schema_lock
from hub.store.dead_letters import DeadLetter, DeadLetters, NewDeadLetter, Original
from hub.store.lease import LeaseLost, LogLease
from hub.store.sessions import SessionStore
from hub.store.store import Store, open_store
from hub.store.tokens import TokenStore

__all__ = [
    "CommitSignal",
    "DeadLetter",
    "DeadLetters",
    "LeaseLost",
    "LogLease",
    "NewDeadLetter",
    "Original",
    "SessionStore",
    "Store",
    "TokenStore",
    "create_db_engine",
    "open_store",
    "schema_lock",
]
