"""Merged customers as groups: the ``directory_merges`` table, the fold of merge and unmerge
events into it, and the reads that resolve a customer to its group.

A merge moves nothing (docs/architecture.md, "Merges: a pointer, not a move"): each merged
customer has a row naming the customer it was merged into and the root of its group, and a
customer without a row is its own root. The directory projection owns the table; this module
keeps its pointer-following apart from the directory's names, addresses and search.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    Table,
    Uuid,
    bindparam,
    or_,
    select,
)

from hub.events import CustomerMerged, CustomerUnmerged
from hub.projections.base import utc

metadata = MetaData()
#: One row per customer merged into another (a customer without a row is its own root).
merges = Table(
    "directory_merges",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("into_customer_id", Uuid, nullable=False),
    Column("root_id", Uuid, nullable=False),
    Column("merged_at", DateTime(timezone=True), nullable=False),
    Index("ix_merges_root", "root_id"),
)
#: A chain of merges longer than this is a bug in the data, not a group.
_MAX_DEPTH = 64


def apply_merge(conn: Connection, event: CustomerMerged | CustomerUnmerged) -> None:
    """Record or undo one merge, then recompute the roots of the groups it touched."""
    m = merges.c
    touched = {event.customer_id}
    old_root = conn.scalar(select(m.root_id).where(m.customer_id == event.customer_id))
    touched.add(old_root or event.customer_id)
    conn.execute(merges.delete().where(m.customer_id == event.customer_id))
    if isinstance(event, CustomerMerged):
        into = event.data.into_customer_id
        conn.execute(
            merges.insert().values(
                customer_id=event.customer_id,
                into_customer_id=into,
                root_id=into,
                merged_at=utc(event.occurred_at),
            )
        )
        touched.add(conn.scalar(select(m.root_id).where(m.customer_id == into)) or into)
    # Every row of the touched groups, roots recomputed by following the pointers.
    rows = {
        r.customer_id: r.into_customer_id
        for r in conn.execute(
            select(m.customer_id, m.into_customer_id).where(
                or_(m.root_id.in_(list(touched)), m.customer_id.in_(list(touched)))
            )
        )
    }
    parents = dict(rows)
    for r in conn.execute(
        select(m.customer_id, m.into_customer_id).where(
            m.customer_id.in_([p for p in rows.values() if p not in rows])
        )
    ):
        parents[r.customer_id] = r.into_customer_id
    updates = [{"b_id": cid, "root_id": _root(cid, parents)} for cid in rows]
    if updates:
        conn.execute(merges.update().where(m.customer_id == bindparam("b_id")), updates)


def root_of(conn: Connection, customer_id: UUID) -> UUID:
    """The customer a group is shown as (the customer itself when not merged)."""
    found = conn.scalar(select(merges.c.root_id).where(merges.c.customer_id == customer_id))
    return found if found is not None else customer_id


def group_of(conn: Connection, customer_id: UUID) -> list[UUID]:
    """The customers shown as one with ``customer_id``: its root first, then the merged ones
    in the order they were merged."""
    root = root_of(conn, customer_id)
    members = conn.scalars(
        select(merges.c.customer_id)
        .where(merges.c.root_id == root)
        .order_by(merges.c.merged_at, merges.c.customer_id)
    )
    return [root, *members]


def roots_of(conn: Connection, customer_ids: Sequence[UUID]) -> dict[UUID, UUID]:
    """The root of each of ``customer_ids`` that is merged into another (others are absent)."""
    m = merges.c
    return dict(
        conn.execute(  # type: ignore[arg-type]
            select(m.customer_id, m.root_id).where(m.customer_id.in_(list(customer_ids)))
        ).all()
    )


def with_members(conn: Connection, customer_ids: Sequence[UUID]) -> set[UUID]:
    """Those of ``customer_ids`` that are the root of a group (something was merged into them)."""
    m = merges.c
    return set(conn.scalars(select(m.root_id).where(m.root_id.in_(list(customer_ids))).distinct()))


def _root(customer_id: UUID, parents: dict[UUID, UUID]) -> UUID:
    for _ in range(_MAX_DEPTH):
        parent = parents.get(customer_id)
        if parent is None:
            return customer_id
        customer_id = parent
    raise ValueError(f"merge chain deeper than {_MAX_DEPTH} at {customer_id}")
