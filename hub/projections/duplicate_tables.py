"""The tables of the duplicates projection (``hub.projections.duplicates``) and the reads it
makes of them and of the merge groups, each in chunks of :data:`CHUNK` ids (a batch may touch
thousands of customers; databases bound the parameters of one statement)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar
from uuid import UUID

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    or_,
    select,
)

from hub.projections.duplicate_evidence import KeyRow
from hub.projections.merges import merges

CHUNK = 500
T = TypeVar("T")

metadata = MetaData()
duplicate_keys = Table(
    "duplicate_keys",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("key", String(400), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("value", Text, nullable=False),
    # When it was last seen: a mention is forgotten with its message's body (retention).
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_duplicate_keys_key", "key"),
)
#: One row per suggested pair of merge groups (their roots, the lower id first).
duplicate_pairs = Table(
    "duplicate_pairs",
    metadata,
    Column("customer_a", Uuid, primary_key=True),
    Column("customer_b", Uuid, primary_key=True),
    Column("score", Integer, nullable=False),
    Column("band", String(8), nullable=False),
    Column("evidence", JSON, nullable=False),
    Index("ix_duplicate_pairs_score", "score", "customer_a", "customer_b"),
    Index("ix_duplicate_pairs_b", "customer_b"),
)
#: Pairs of customers an agent said are different people (ids only).
duplicate_dismissals = Table(
    "duplicate_dismissals",
    metadata,
    Column("customer_a", Uuid, primary_key=True),
    Column("customer_b", Uuid, primary_key=True),
)


def ordered(a: UUID, b: UUID) -> tuple[UUID, UUID]:
    """A pair as stored: the lower id first."""
    return (a, b) if a < b else (b, a)


def chunks(items: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def roots(conn: Connection, customers: set[UUID]) -> dict[UUID, UUID]:
    """The root of each customer's merge group (itself when not merged)."""
    found = {c: c for c in customers}
    m = merges.c
    for chunk in chunks(sorted(customers)):
        for customer_id, root_id in conn.execute(
            select(m.customer_id, m.root_id).where(m.customer_id.in_(chunk))
        ):
            found[customer_id] = root_id
    return found


def groups(conn: Connection, roots: set[UUID]) -> dict[UUID, list[UUID]]:
    """Each root with the customers merged into its group (root first)."""
    groups = {r: [r] for r in roots}
    m = merges.c
    for chunk in chunks(sorted(roots)):
        for member, root in conn.execute(
            select(m.customer_id, m.root_id).where(m.root_id.in_(chunk))
        ):
            groups[root].append(member)
    return groups


def rows_of(conn: Connection, customers: Sequence[UUID]) -> list[KeyRow]:
    k = duplicate_keys.c
    rows: list[KeyRow] = []
    for chunk in chunks(sorted(set(customers))):
        query = select(k.customer_id, k.key, k.role, k.value).where(k.customer_id.in_(chunk))
        rows += [KeyRow(*r) for r in conn.execute(query)]
    return rows


def holders(conn: Connection, keys: set[str]) -> list[KeyRow]:
    k = duplicate_keys.c
    rows: list[KeyRow] = []
    for chunk in chunks(sorted(keys)):
        query = select(k.customer_id, k.key, k.role, k.value).where(k.key.in_(chunk))
        rows += [KeyRow(*r) for r in conn.execute(query)]
    return rows


def dismissed(conn: Connection, root_of: dict[UUID, UUID]) -> set[tuple[UUID, UUID]]:
    """The pairs of groups (roots) between which an agent dismissed any pair of members."""
    d = duplicate_dismissals.c
    found: set[tuple[UUID, UUID]] = set()
    for chunk in chunks(sorted(root_of)):
        for a, b in conn.execute(
            select(d.customer_a, d.customer_b).where(
                or_(d.customer_a.in_(chunk), d.customer_b.in_(chunk))
            )
        ):
            found.add(ordered(root_of.get(a, a), root_of.get(b, b)))
    return found
