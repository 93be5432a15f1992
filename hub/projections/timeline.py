"""The unified timeline: every message in and out, notes, status changes, identity links,
agents' profile edits and business activity (orders, payments...) of a customer, on every
channel, interleaved by the time they happened."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    literal,
    select,
    tuple_,
)

from hub.events import (
    ActivityRecorded,
    ConversationAssigned,
    ConversationStatusChanged,
    CustomerConsentChanged,
    CustomerCreated,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerUnmerged,
    Envelope,
    FeedbackCommented,
    FeedbackReceived,
    InteractionDeliveryUpdated,
    InteractionQueued,
    NoteAdded,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
)
from hub.projections.base import MessageEvent, Projection, id_list, record_from_row, utc
from hub.sql import insert_ignoring_duplicates

metadata = MetaData()
timeline_items = Table(
    "timeline_items",
    metadata,
    Column("item_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("conversation_id", Uuid),
    Column("kind", String(32), nullable=False),
    Column("channel", String(32)),
    Column("direction", String(16)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("text", Text),
    Column("subject", Text),
    Column("delivery_status", String(32)),
    Column("provider_message_id", String(512)),
    Column("data", JSON, nullable=False),
    Index("ix_timeline_customer_time", "customer_id", "occurred_at", "item_id"),
)


class TimelineProjection(Projection):
    name = "timeline"
    handles = frozenset(
        {
            "customer.created.v1",
            "customer.identity_linked.v1",
            "customer.consent_changed.v1",
            "customer.merged.v1",
            "customer.unmerged.v1",
            "customer.profile_updated.v1",
            "conversation.status_changed.v1",
            "conversation.assigned.v1",
            "interaction.received.v1",
            "interaction.sent.v1",
            "interaction.queued.v1",
            "interaction.delivery_updated.v1",
            "note.added.v1",
            "scheduled_message.scheduled.v1",
            "scheduled_message.cancelled.v1",
            "scheduled_message.skipped.v1",
            "scheduled_message.queued.v1",
            "activity.recorded.v1",
            "feedback.received.v1",
            "feedback.commented.v1",
        }
    )
    tables = (timeline_items,)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        conn.execute(timeline_items.delete().where(timeline_items.c.customer_id.in_(customer_ids)))

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        new_rows: dict[UUID, dict[str, Any]] = {}
        deliveries: dict[UUID, dict[str, Any]] = {}
        for event in events:
            change = _item_change(event)
            if change is not None:
                item_id, status, details, provider_id = change
                row = new_rows.get(item_id)
                if row is not None:  # the item is in this batch: fold into its row
                    row["delivery_status"] = status
                    row["data"] = _merged(row["data"], details)
                    row["provider_message_id"] = provider_id or row["provider_message_id"]
                else:
                    earlier = deliveries.get(item_id)
                    deliveries[item_id] = {
                        "b_item_id": item_id,
                        "delivery_status": status,
                        "b_error": (earlier["b_error"] if earlier else {}) | details,
                        "b_provider_id": provider_id
                        or (earlier["b_provider_id"] if earlier else None),
                    }
                continue
            if not makes_item(event):
                continue  # the hub learnt a name from a message: no news for the agent
            row = _row(event)
            new_rows.setdefault(row["item_id"], row)
            if isinstance(event, CustomerUnmerged):
                # The customer it left sees the unmerge too (while merged, the one row of
                # the merge showed in the group's timeline).
                other = row | {
                    "item_id": uuid5(event.id, "from"),
                    "customer_id": event.data.from_customer_id,
                }
                new_rows.setdefault(other["item_id"], other)
        insert_ignoring_duplicates(conn, timeline_items, list(new_rows.values()))
        if deliveries:
            self._update_deliveries(conn, list(deliveries.values()))

    def _update_deliveries(self, conn: Connection, updates: list[dict[str, Any]]) -> None:
        # The error details live in the JSON column; read-modify-write keeps other keys.
        ids = [u["b_item_id"] for u in updates]
        t = timeline_items
        current = {
            row.item_id: row
            for row in conn.execute(
                select(t.c.item_id, t.c.data, t.c.provider_message_id).where(t.c.item_id.in_(ids))
            )
        }
        params = [
            {
                "b_item_id": u["b_item_id"],
                "delivery_status": u["delivery_status"],
                "data": _merged(current[u["b_item_id"]].data or {}, u["b_error"]),
                "provider_message_id": u["b_provider_id"]
                or current[u["b_item_id"]].provider_message_id,
            }
            for u in updates
            if u["b_item_id"] in current
        ]
        if params:
            conn.execute(
                timeline_items.update().where(timeline_items.c.item_id == bindparam("b_item_id")),
                params,
            )

    def expire_bodies_before(self, conn: Connection, cutoff: datetime) -> int:
        """Messages (and survey comments) that happened before ``cutoff`` lose their text,
        subject, attachments and metadata; time, channel, direction, delivery and addresses
        stay. A blanked row says ``body_expired`` in its data, so each row is done once; a row
        some late write gave a body again (a lagging Kafka copy) is blanked at the next run."""
        t = timeline_items
        pending = (
            (
                t.c.kind.in_(("message", "scheduled"))
                | ((t.c.kind == "feedback") & t.c.text.isnot(None))
            )
            & (t.c.occurred_at < utc(cutoff))
            & t.c.data["body_expired"].as_boolean().is_(None)
        )
        blanked = 0
        while True:
            rows = conn.execute(
                select(t.c.item_id, t.c.data).where(pending).limit(_EXPIRE_BATCH)
            ).all()
            if not rows:
                return blanked
            conn.execute(
                t.update().where(t.c.item_id == bindparam("b_item_id")),
                [
                    {
                        "b_item_id": item_id,
                        "text": None,
                        "subject": None,
                        "data": _expired(data or {}),
                    }
                    for item_id, data in rows
                ],
            )
            blanked += len(rows)

    # -- queries ---------------------------------------------------------------------------

    def page(
        self,
        conn: Connection,
        customer_id: UUID | Sequence[UUID],
        limit: int,
        before: str | None,
    ) -> tuple[list[TimelineItem], str | None]:
        """Newest first; ``before`` is the cursor a previous page returned. Several customer
        ids (a merged group) give one timeline of them all."""
        t = timeline_items
        ids = id_list(customer_id)
        query = (
            select(t)
            .where(t.c.customer_id.in_(ids) if len(ids) > 1 else t.c.customer_id == ids[0])
            .order_by(t.c.occurred_at.desc(), t.c.item_id.desc())
            .limit(limit + 1)
        )
        if before:
            at, item_id = decode_cursor(before)
            query = query.where(
                tuple_(t.c.occurred_at, t.c.item_id)
                < tuple_(literal(at, DateTime(timezone=True)), literal(item_id, Uuid))
            )
        rows = conn.execute(query).mappings().all()
        items = [TimelineItem.from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        cursor = encode_cursor(items[-1].occurred_at, items[-1].item_id) if more else None
        return items, cursor

    def messages(self, conn: Connection, message_ids: Sequence[UUID]) -> dict[UUID, TimelineItem]:
        """Messages by id, of any customer (those not projected yet are missing)."""
        return self.items(conn, message_ids, kind="message")

    def items(
        self, conn: Connection, item_ids: Sequence[UUID], kind: str | None = None
    ) -> dict[UUID, TimelineItem]:
        """Items by id (of ``kind``, if given), of any customer."""
        if not item_ids:
            return {}
        t = timeline_items
        query = select(t).where(t.c.item_id.in_(list(item_ids)))
        if kind is not None:
            query = query.where(t.c.kind == kind)
        return {r["item_id"]: TimelineItem.from_row(r) for r in conn.execute(query).mappings()}

    def scheduled(
        self, conn: Connection, customer_ids: Sequence[UUID], limit: int = 200
    ) -> list[TimelineItem]:
        """The scheduled messages of these customers (any status), the newest first."""
        t = timeline_items
        rows = conn.execute(
            select(t)
            .where(t.c.customer_id.in_(list(customer_ids)), t.c.kind == "scheduled")
            .order_by(t.c.occurred_at.desc(), t.c.item_id.desc())
            .limit(limit)
        )
        return [TimelineItem.from_row(row._mapping) for row in rows]

    def has_item(self, conn: Connection, item_id: UUID) -> bool:
        t = timeline_items
        return conn.scalar(select(t.c.item_id).where(t.c.item_id == item_id)) is not None

    def message(self, conn: Connection, message_id: UUID) -> TimelineItem | None:
        """One message of any customer's timeline, by its id."""
        t = timeline_items
        row = (
            conn.execute(select(t).where(t.c.item_id == message_id, t.c.kind == "message"))
            .mappings()
            .first()
        )
        return TimelineItem.from_row(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class TimelineItem:
    item_id: UUID
    customer_id: UUID
    conversation_id: UUID | None
    kind: str
    channel: str | None
    direction: str | None
    occurred_at: datetime
    position: int
    text: str | None
    subject: str | None
    delivery_status: str | None
    provider_message_id: str | None
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> TimelineItem:
        """The item of a ``timeline_items`` row."""
        return record_from_row(cls, row, ("occurred_at",))


def encode_cursor(at: datetime, item_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{utc(at).isoformat()}|{item_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The time and id of a cursor :func:`encode_cursor` made; ValueError for anything else.

    Only a cursor that encodes back to itself is taken: an aware time that converts to UTC
    (a year-1 time at +14:00 does not) and an id. Everything else a client could send (other
    offsets, naive times, stray characters base64 would skip) is refused here, not in SQL."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        at_text, _, id_text = text.partition("|")
        at, item_id = datetime.fromisoformat(at_text), UUID(id_text)
        if at.tzinfo is None:
            raise ValueError("naive time")
        decoded = utc(at), item_id
        canonical = encode_cursor(*decoded) == cursor
    except (ValueError, OverflowError) as exc:  # UnicodeError and binascii.Error among them
        raise ValueError("malformed cursor") from exc
    if not canonical:
        raise ValueError("malformed cursor")
    return decoded


def _delivery_data(event: InteractionDeliveryUpdated) -> dict[str, Any]:
    """What a delivery update adds to the message's JSON; ``None`` values remove a key (a
    retry that went through is no longer waiting nor failing)."""
    d = event.data
    if d.error_code is not None or d.error_message is not None:
        found: dict[str, Any] = {"error_code": d.error_code, "error_message": d.error_message}
    else:
        found = {"error_code": None, "error_message": None}
    found["held_until"] = d.held_until.isoformat() if d.held_until else None
    return found


#: Rows blanked per statement by ``expire_bodies_before``.
_EXPIRE_BATCH = 1000


def _item_change(event: Envelope) -> tuple[UUID, str, dict[str, Any], str | None] | None:
    """For an event that changes an earlier item rather than making one: the item, its new
    status, the details to merge into its data, and a provider id (or None)."""
    if isinstance(event, InteractionDeliveryUpdated):
        d = event.data
        return d.message_id, d.status, _delivery_data(event), d.provider_message_id
    if isinstance(event, ScheduledMessageCancelled):
        return event.data.occurrence_id, "cancelled", {"cancelled_by": event.data.actor}, None
    if isinstance(event, ScheduledMessageSkipped):
        details = {"error_code": event.data.code, "error_message": event.data.reason}
        return event.data.occurrence_id, "skipped", details, None
    if isinstance(event, ScheduledMessageQueued):
        q = event.data
        queued: dict[str, Any] = {
            "message_id": str(q.message_id) if q.message_id else None,
            "sent_on": q.channel,
            "template_version": q.template_version,
        }
        return q.occurrence_id, "queued", queued, None
    return None


def _expired(data: dict[str, Any]) -> dict[str, Any]:
    """A message's JSON without its body (attachments, metadata), marked as expired."""
    return data | {"attachments": [], "metadata": {}, "body_expired": True}


def _merged(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = data | changes
    return {k: v for k, v in merged.items() if not (k in changes and v is None)}


def _row(event: Envelope) -> dict[str, Any]:
    row: dict[str, Any] = {
        "item_id": event.id,
        "customer_id": event.customer_id,
        "conversation_id": None,
        "channel": None,
        "direction": None,
        "occurred_at": utc(event.occurred_at),
        "position": event.position,
        "text": None,
        "subject": None,
        "delivery_status": None,
        "provider_message_id": None,
        "data": {},
    }
    if isinstance(event, MessageEvent):
        d = event.data
        status = {"inbound": "received", "outbound": "sent"}[d.direction]
        extra = {}
        if isinstance(event, InteractionQueued):
            status = "queued"
            extra = {"author": event.data.author, "urgent": event.data.urgent}
        row |= {
            "item_id": d.message_id,
            "kind": "message",
            "conversation_id": d.conversation_id,
            "channel": d.channel,
            "direction": d.direction,
            "text": d.text,
            "subject": d.subject,
            "delivery_status": status,
            "provider_message_id": d.provider_message_id,
            "data": {
                "address": d.address,
                "contact_name": d.contact_name,
                "attachments": [a.model_dump() for a in d.attachments],
                "metadata": d.metadata,
                "thread_ref": d.thread_ref,
            }
            | extra
            | ({"body_expired": True} if d.body_expired else {}),
        }
    elif isinstance(event, NoteAdded):
        row |= {
            "item_id": event.data.note_id,
            "kind": "note",
            "conversation_id": event.data.conversation_id,
            "text": event.data.text,
            "data": {"author": event.data.author},
        }
    elif isinstance(event, ConversationStatusChanged):
        d2 = event.data
        row |= {
            "kind": "status_changed",
            "conversation_id": d2.conversation_id,
            "data": {
                "status": d2.status,
                "previous_status": d2.previous_status,
                "actor": d2.actor,
                "reason": d2.reason,
            },
        }
    elif isinstance(event, ConversationAssigned):
        row |= {
            "kind": "assigned",
            "conversation_id": event.data.conversation_id,
            "data": {"assignee": event.data.assignee, "actor": event.data.actor},
        }
    elif isinstance(event, CustomerCreated):
        row |= {"kind": "identity_linked", "data": {"address": event.data.address, "first": True}}
    elif isinstance(event, CustomerConsentChanged):
        c = event.data
        row |= {
            "kind": "consent_changed",
            "channel": c.channel,
            "data": {
                "granted": c.granted,
                "purposes": list(c.purposes),
                "reason": c.reason,
                "actor": c.actor,
                "message_id": str(c.message_id) if c.message_id else None,
            },
        }
    elif isinstance(event, CustomerMerged):
        m = event.data
        row |= {
            "kind": "merged",
            "data": {
                "into_customer_id": str(m.into_customer_id),
                "actor": m.actor,
                "reason": m.reason,
                "caused_by": str(m.caused_by) if m.caused_by else None,
            },
        }
    elif isinstance(event, CustomerUnmerged):
        row |= {
            "kind": "unmerged",
            "data": {
                "from_customer_id": str(event.data.from_customer_id),
                "actor": event.data.actor,
                "reason": event.data.reason,
            },
        }
    elif isinstance(event, CustomerProfileUpdated):
        row |= {"kind": "profile_updated", "data": _profile_change(event)}
    elif isinstance(event, ScheduledMessageScheduled):
        sm = event.data
        row |= {
            "item_id": sm.occurrence_id,
            "kind": "scheduled",
            # Shown (and its text expired by a retention) at its time, as its message will be.
            "occurred_at": utc(sm.due_at),
            "conversation_id": sm.conversation_id,
            "text": sm.text,
            "subject": sm.subject,
            "delivery_status": "scheduled",
            "data": {
                "due_at": sm.due_at.isoformat(),
                "action": sm.action,
                "purpose": sm.purpose,
                "channels": list(sm.channels),
                "template": sm.template,
                "source": sm.source.model_dump(),
                "actor": sm.actor,
            },
        }
    elif isinstance(event, ActivityRecorded):
        a = event.data
        row |= {
            "item_id": a.activity_id,
            "kind": "activity",
            "subject": a.title,
            "text": a.description,
            "data": {
                "type": a.type,
                "name": a.name,
                "amount": a.amount,
                "currency": a.currency,
                "reference": a.reference,
                "url": a.url,
                "source": a.source,
                "metadata": a.metadata,
            },
        }
    elif isinstance(event, FeedbackReceived | FeedbackCommented):
        f = event.data
        row |= {
            "kind": "feedback",
            "conversation_id": f.conversation_id,
            "channel": f.channel,
            "data": {"survey": f.kind, "survey_id": str(f.survey_id), "agent": f.agent},
        }
        if isinstance(event, FeedbackReceived):
            row["data"] |= {"score": event.data.score, "via": event.data.via}
        else:
            row["text"] = event.data.comment
            row["data"]["comment"] = True
    elif isinstance(event, CustomerIdentityLinked):
        row |= {
            "kind": "identity_linked",
            "data": {
                "address": event.data.address,
                "verified": event.data.verified,
                "reason": event.data.reason,
            },
        }
    else:  # pragma: no cover - guarded by ``handles``
        raise TypeError(f"timeline does not handle {event.type}")
    return row


def _profile_change(event: CustomerProfileUpdated) -> dict[str, Any]:
    """What an agent changed in the profile, in order: each field (or ``attributes.<key>``)
    with its new value (None: cleared), and who."""
    d = event.data
    changes = []
    for name in d.changed:
        key = name.partition(".")[2] if name.startswith("attributes.") else None
        value = d.attributes.get(key) if key is not None else getattr(d, name, None)
        changes.append({"field": name, "value": value})
    return {"changes": changes, "actor": d.actor}


def makes_item(event: Envelope) -> bool:
    """Whether the timeline shows ``event`` as an item of its own (``hub.projections.history``
    rebuilds the timeline of a past moment by the same rule)."""
    if event.type not in TimelineProjection.handles:
        return False
    if _item_change(event) is not None:
        return False  # it changes an earlier item (a message's delivery, a scheduled one)
    # A name the hub learnt from a message is no news for the agent (no item).
    return not (isinstance(event, CustomerProfileUpdated) and event.data.actor is None)
