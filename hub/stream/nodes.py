"""Which processes of the distributed runtime are running, and with which roles.

Every ``hub run`` process keeps a row in ``hub_nodes`` (state database) fresh while it runs and
removes it when it stops cleanly; ``hub status`` lists the rows, marking those not seen for a
while as gone (a process killed without its shutdown leaves its row behind until then).
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, delete, select

from hub.projections.base import as_utc
from hub.sql import upsert

metadata = MetaData()
nodes = Table(
    "hub_nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("roles", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


@functools.cache
def _create_tables(engine: Engine) -> None:
    """Create this module's tables once per engine (probes read them every few seconds)."""
    metadata.create_all(engine)


#: How often a node says it is alive, and after how long without that it counts as gone.
HEARTBEAT_SECONDS = 5.0
GONE_AFTER = timedelta(seconds=30)


@dataclass
class NodeRegistry:
    """This process's row in ``hub_nodes``."""

    engine: Engine
    roles: tuple[str, ...]
    address: str  # where its probes answer, host:port
    node_id: str = field(default_factory=lambda: f"node-{uuid.uuid4().hex[:12]}")
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        _create_tables(self.engine)

    def heartbeat(self) -> None:
        row = {
            "node_id": self.node_id,
            "roles": ",".join(self.roles),
            "host": f"{socket.gethostname()} {self.address}",
            "pid": os.getpid(),
            "started_at": self.started_at,
            "seen_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            upsert(conn, nodes, [row])

    def leave(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.node_id == self.node_id))


def running_nodes(engine: Engine) -> list[dict[str, Any]]:
    """Every registered node, newest first, with ``alive`` false once it missed heartbeats."""
    _create_tables(engine)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(select(nodes).order_by(nodes.c.started_at.desc())).mappings().all()
    found = []
    for row in rows:
        seen = as_utc(row["seen_at"])
        found.append(
            {
                "node_id": row["node_id"],
                "roles": row["roles"].split(","),
                "host": row["host"],
                "pid": row["pid"],
                "seen_seconds_ago": round((now - seen).total_seconds(), 1),
                "alive": now - seen < GONE_AFTER,
            }
        )
    return found
