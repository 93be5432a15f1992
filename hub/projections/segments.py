"""What segments need beyond the directory: an index of tags (one row per customer and tag,
so a tag is found by a key rather than inside a JSON array) and each customer's consent
ledger as state (the latest line per channel and purpose).

The filter itself compiles to SQL in ``hub.projections.segment_filter``; these tables are two
of those it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

from hub.events import CustomerConsentChanged, CustomerTagsChanged, Envelope
from hub.projections.base import Projection, utc
from hub.sql import insert_ignoring_duplicates, upsert

__all__ = ["SegmentsProjection", "consent_state", "metadata", "tag_index"]

metadata = MetaData()
#: Agents' tags, one row per customer and tag (personal data: purged at an erasure).
tag_index = Table(
    "segment_tags",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("tag", Text, primary_key=True),
    Index("ix_segment_tags_tag", "tag", "customer_id"),
)
#: The latest consent ledger line of each customer per (channel, purpose): granted or not,
#: and its store position (the latest across a merged group decides for the group).
consent_state = Table(
    "segment_consent",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("purpose", String(32), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)


class SegmentsProjection(Projection):
    name = "segments"
    handles = frozenset({"customer.tags_changed.v1", "customer.consent_changed.v1"})
    tables = (tag_index, consent_state)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Tags are personal data; consent state goes with them."""
        for table in (tag_index, consent_state):
            conn.execute(table.delete().where(table.c.customer_id.in_(customer_ids)))

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        tags: dict[UUID, list[str]] = {}  # the latest set of each customer in the batch
        consent: dict[tuple[UUID, str, str], dict[str, Any]] = {}
        for event in events:
            if isinstance(event, CustomerTagsChanged):
                tags[event.customer_id] = list(event.data.tags)
            elif isinstance(event, CustomerConsentChanged):
                for purpose in event.data.purposes:
                    consent[(event.customer_id, event.data.channel, purpose)] = {
                        "customer_id": event.customer_id,
                        "channel": event.data.channel,
                        "purpose": purpose,
                        "granted": event.data.granted,
                        "position": event.position,
                        "decided_at": utc(event.recorded_at),
                    }
        if tags:
            t = tag_index.c
            conn.execute(tag_index.delete().where(t.customer_id.in_(list(tags))))
            rows = [{"customer_id": c, "tag": tag} for c, values in tags.items() for tag in values]
            insert_ignoring_duplicates(conn, tag_index, rows)
        # A batch never holds a line older than one applied before (positions only grow).
        upsert(conn, consent_state, list(consent.values()))
