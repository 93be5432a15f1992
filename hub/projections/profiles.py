"""The directory's profile tables: what agents set on a customer (birthday, time zone,
language, company, custom attributes) and where it came from (the acquisition source).

Tables of their own, so hubs from before them need no migration; the directory projection
(``hub.projections.directory``) owns them and calls :func:`apply_profiles`. Segments query
them by these names and columns (docs/segments.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    select,
)

from hub.events import CustomerCreated, CustomerProfileUpdated, Envelope
from hub.sql import upsert

metadata = MetaData()
profiles = Table(
    "directory_profiles",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("birthday", String(10)),
    Column("time_zone", String(64)),
    #: The language an agent set (the channel's guess stays in directory_facts.language).
    Column("language", String(35)),
    Column("company", Text),
    Column("source", String(100)),
    Column("source_medium", String(100)),
    Column("source_campaign", String(100)),
    Column("source_via", String(16)),
    Column("source_referrer", Text),
    Column("source_endpoint", String(300)),
)
attributes = Table(
    "directory_attributes",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("key", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("text_value", Text),  # string, enum, and a date as YYYY-MM-DD
    Column("number_value", Float),
    Column("bool_value", Boolean),
    Index("ix_attributes_key_text", "key", "text_value"),
    Index("ix_attributes_key_number", "key", "number_value"),
)

#: The profile fields of ``directory_profiles`` an agent edits, and their column lengths.
_FIELDS = {"birthday": 10, "time_zone": 64, "language": 35, "company": None}
#: The acquisition source's fields -> (column, length).
_SOURCE = {
    "source": ("source", 100),
    "medium": ("source_medium", 100),
    "campaign": ("source_campaign", 100),
    "via": ("source_via", 16),
    "referrer": ("source_referrer", None),
    "endpoint": ("source_endpoint", 300),
}
_COLUMNS = [c.name for c in profiles.columns if c.name != "customer_id"]


@dataclass(frozen=True, slots=True)
class Profile:
    """One customer's own profile row and attributes (not a group's)."""

    birthday: str | None = None
    time_zone: str | None = None
    language: str | None = None
    company: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None


def _cut(value: Any, length: int | None) -> Any:
    """A value within its column (PostgreSQL refuses a longer one; events are already
    checked, so this only guards what an older or a foreign writer recorded)."""
    return value[:length] if isinstance(value, str) and length is not None else value


def apply_profiles(conn: Connection, events: Sequence[Envelope]) -> None:
    """Fold sources (``customer.created.v1``) and agents' edits (``customer.profile_updated.v1``)
    into the two tables; read-modify-write per customer, so a field not named by an event
    keeps its value."""
    rows: dict[UUID, dict[str, Any]] = {}
    values: dict[tuple[UUID, str], dict[str, Any] | None] = {}  # None: removed
    for event in events:
        if isinstance(event, CustomerCreated) and event.data.source is not None:
            source = event.data.source.model_dump()
            rows.setdefault(event.customer_id, {}).update(
                {column: _cut(source[name], length) for name, (column, length) in _SOURCE.items()}
            )
        elif isinstance(event, CustomerProfileUpdated):
            d = event.data
            named = [name for name in d.changed if name in _FIELDS]
            if named:
                rows.setdefault(event.customer_id, {}).update(
                    {name: _cut(getattr(d, name), _FIELDS[name]) for name in named}
                )
            for key, value in d.attributes.items():
                kind = d.attribute_kinds.get(key) or _kind_of(value)
                values[(event.customer_id, key)] = _attribute_row(
                    event.customer_id, key, kind, value
                )
    _save_rows(conn, rows)
    _save_attributes(conn, values)


def _save_rows(conn: Connection, rows: dict[UUID, dict[str, Any]]) -> None:
    if not rows:
        return
    p = profiles.c
    known = {
        r["customer_id"]: dict(r)
        for r in conn.execute(select(profiles).where(p.customer_id.in_(list(rows)))).mappings()
    }
    merged = []
    for customer_id, changes in rows.items():
        row = known.get(customer_id) or {"customer_id": customer_id, **dict.fromkeys(_COLUMNS)}
        merged.append(row | changes)
    upsert(conn, profiles, merged)


def _save_attributes(
    conn: Connection, values: dict[tuple[UUID, str], dict[str, Any] | None]
) -> None:
    removed = [k for k, v in values.items() if v is None]
    kept = [v for v in values.values() if v is not None]
    if removed:
        a = attributes.c
        conn.execute(
            attributes.delete().where(
                a.customer_id == bindparam("b_id"), a.key == bindparam("b_key")
            ),
            [{"b_id": customer_id, "b_key": key} for customer_id, key in removed],
        )
    upsert(conn, attributes, kept)


def _kind_of(value: Any) -> str:
    """An attribute's type when its event did not say (none do today; a guard)."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"


def _attribute_row(customer_id: UUID, key: str, kind: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "key": key[:40],
        "kind": kind,
        "text_value": None,
        "number_value": None,
        "bool_value": None,
    }
    if isinstance(value, bool):
        row["bool_value"] = value
    elif isinstance(value, int | float):
        row["number_value"] = float(value)
    else:
        row["text_value"] = str(value)
    return row


def purge_profiles(conn: Connection, customer_ids: Sequence[UUID]) -> None:
    """An erasure: every profile value and attribute of these customers goes."""
    for table in (profiles, attributes):
        conn.execute(table.delete().where(table.c.customer_id.in_(list(customer_ids))))


def load_profiles(conn: Connection, customer_ids: Sequence[UUID]) -> dict[UUID, Profile]:
    """The profile of each of these customers that has one (two reads)."""
    if not customer_ids:
        return {}
    ids = list(customer_ids)
    found: dict[UUID, dict[str, Any]] = {}
    for r in conn.execute(select(profiles).where(profiles.c.customer_id.in_(ids))).mappings():
        source = {name: r[column] for name, (column, _) in _SOURCE.items()}
        found[r["customer_id"]] = {
            **{name: r[name] for name in _FIELDS},
            "source": source if source["via"] else None,
            "attributes": {},
        }
    for r in conn.execute(
        select(attributes).where(attributes.c.customer_id.in_(ids)).order_by(attributes.c.key)
    ).mappings():
        row = found.setdefault(
            r["customer_id"], {**dict.fromkeys(_FIELDS), "source": None, "attributes": {}}
        )
        row["attributes"][r["key"]] = _attribute_value(r)
    return {cid: Profile(**values) for cid, values in found.items()}


def _attribute_value(row: Any) -> Any:
    if row["kind"] == "boolean":
        return row["bool_value"]
    if row["kind"] == "number":
        number = row["number_value"]
        return int(number) if number is not None and number.is_integer() else number
    return row["text_value"]


def record_fields(profile: Profile | None, guessed_language: str | None) -> dict[str, Any]:
    """A directory record's profile fields: what agents set, and the effective language (the
    one set, else the one the channel said)."""
    if profile is None:
        return {"language": guessed_language}
    return {
        "language": profile.language or guessed_language,
        "birthday": profile.birthday,
        "time_zone": profile.time_zone,
        "company": profile.company,
        "attributes": profile.attributes,
        "source": profile.source,
    }


def fold_attributes(members: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A merged group's attributes (members root first): per key, the first value set."""
    folded: dict[str, Any] = {}
    for values in members:
        for key, value in values.items():
            folded.setdefault(key, value)
    return folded
