"""What the segment tests share: rows of the directory's profile and attribute tables
(``hub.projections.profiles``) written directly, as the directory projection writes them from
``customer.profile_updated.v1``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from hub.projections.profiles import attributes as _attributes
from hub.projections.profiles import profiles as _profiles
from hub.sql import upsert


def ensure_profile_tables(engine: Engine) -> None:
    """Make the profile and attribute tables unless the views already have them."""
    for table in (_profiles, _attributes):
        table.create(engine, checkfirst=True)


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
