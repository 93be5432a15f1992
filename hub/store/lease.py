"""A named position in the store's log with a lease on it: only its holder moves the position.

The relay (``hub.stream.relay``) and the dispatcher (``hub.runtime.dispatcher``) each run one active
instance at a time this way; standbys take over when the holder stops renewing. A row in the
state database rather than a PostgreSQL advisory lock, so SQLite and PostgreSQL work alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Engine, MetaData, String, Table, select

from hub.sql import insert_ignoring_duplicates

metadata = MetaData()
relays = Table(
    "hub_relays",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
)


@functools.cache
def _create_tables(engine: Engine) -> None:
    """Create this module's tables once per engine (probes read them every few seconds)."""
    metadata.create_all(engine)


class LeaseLost(Exception):
    """Another process holds the lease now; this one must stop (publishing, dispatching)."""


@dataclass
class LogLease:
    """The lease and position row of one reader of the log (the relay, the dispatcher), in the
    state database; ``name`` tells the readers apart."""

    engine: Engine
    name: str
    owner: str
    seconds: float

    def __post_init__(self) -> None:
        _create_tables(self.engine)
        with self.engine.begin() as conn:
            insert_ignoring_duplicates(
                conn,
                relays,
                [{"name": self.name, "position": 0, "owner": None, "lease_until": None}],
            )

    @staticmethod
    def read(engine: Engine, name: str = "events") -> dict[str, Any]:
        """Position, owner and lease expiry of a relay (``{}`` before any relay ran)."""
        _create_tables(engine)
        with engine.connect() as conn:
            row = conn.execute(select(relays).where(relays.c.name == name)).mappings().first()
        if row is None:
            return {}
        until = row["lease_until"]
        return {
            "position": int(row["position"]),
            "owner": row["owner"],
            "lease_until": until.isoformat() if until is not None else None,
        }

    def _until(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            result = conn.execute(
                relays.update()
                .where(
                    relays.c.name == self.name,
                    (relays.c.owner == self.owner)
                    | relays.c.owner.is_(None)
                    | (relays.c.lease_until < now),
                )
                .values(owner=self.owner, lease_until=self._until())
            )
        return result.rowcount == 1

    def position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.scalar(select(relays.c.position).where(relays.c.name == self.name))
        return int(found or 0)

    def advance(self, position: int) -> None:
        """Move the position and renew the lease, only while the lease is still ours."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            result = conn.execute(
                relays.update()
                .where(
                    relays.c.name == self.name,
                    relays.c.owner == self.owner,
                    relays.c.lease_until >= now,
                )
                .values(position=position, lease_until=self._until())
            )
        if result.rowcount != 1:
            raise LeaseLost(f"relay {self.name!r}: lease lost by {self.owner}")

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                relays.update()
                .where(relays.c.name == self.name, relays.c.owner == self.owner)
                .values(owner=None, lease_until=None)
            )
