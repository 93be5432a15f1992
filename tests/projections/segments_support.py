"""What the segment tests share: the directory's profile and attribute tables (made here when
the directory projection does not make them yet), and their rows written directly, as the
directory projection writes them from ``customer.profile_updated.v1``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    inspect,
)

from hub.sql import upsert

_metadata = MetaData()
#: The columns the segment filter reads (the directory projection owns these tables).
_profiles = Table(
    "directory_profiles",
    _metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("birthday", String(10)),
    Column("time_zone", String(64)),
    Column("language", String(35)),
    Column("company", Text),
    Column("source", String(100)),
    Column("source_medium", String(100)),
    Column("source_campaign", String(100)),
    Column("source_via", String(16)),
    Column("source_referrer", Text),
    Column("source_endpoint", String(300)),
)
_attributes = Table(
    "directory_attributes",
    _metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("key", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("text_value", Text),
    Column("number_value", Float),
    Column("bool_value", Boolean),
)


def ensure_profile_tables(engine: Engine) -> None:
    """Make the profile and attribute tables unless the views already have them."""
    existing = set(inspect(engine).get_table_names())
    for table in (_profiles, _attributes):
        if table.name not in existing:
            table.create(engine)


def set_profile(engine: Engine, customer_id: UUID, **fields: Any) -> None:
    """Write the customer's profile row (fields not given: empty)."""
    ensure_profile_tables(engine)
    row = {c.name: None for c in _profiles.columns} | {"customer_id": customer_id} | fields
    with engine.begin() as conn:
        upsert(conn, _profiles, [row])


def set_attribute(engine: Engine, customer_id: UUID, key: str, kind: str, value: Any) -> None:
    """Write one custom attribute of the customer, in the column its kind is kept in."""
    ensure_profile_tables(engine)
    row = {
        "customer_id": customer_id,
        "key": key,
        "kind": kind,
        "text_value": value if kind in ("string", "enum", "date") else None,
        "number_value": value if kind == "number" else None,
        "bool_value": value if kind == "boolean" else None,
    }
    with engine.begin() as conn:
        upsert(conn, _attributes, [row])
