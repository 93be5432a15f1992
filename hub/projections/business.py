"""Business figures (docs/analytics.md, "Sources, retention and value"): per customer its
first contact, where it came from, the days it was active and its orders, which the
retention, value and sources reports (``hub.projections.business_reports``) read per merge
group.

Definitions, in short: the first contact is the earliest of the customer's creation and its
messages; a customer is active on a day it wrote, an agent wrote to it (automated messages
are not contact) or it placed an order; an ``order.placed`` adds its amount, an
``order.cancelled`` with an amount subtracts it (a cancellation names its order only by
personal fields an erasure destroys, so it is counted as a credit on its own date).
Amounts are kept exact, in ten-thousandths of their own currency; converting them is the
reports' work, so a changed rate needs no rebuild.

Rows are kept per customer and read per group through the directory's merges, like the
service projection's. An erasure (``customer.erased.v1``, which names the whole group)
folds the group's rows into one row under a random key with no customer id: its figures
keep counting as one customer, and nothing links them back. The acquisition source is
personal (the store encrypts it), so it is forgotten at the erasure, as a replay after it
would find it. Because the fold happens at the erased event, in log order, a rebuild folds
exactly what the live view folded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    case,
    delete,
    select,
)

from hub import memory
from hub.events import (
    ActivityRecorded,
    CustomerCreated,
    CustomerErased,
    Envelope,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
)
from hub.projections.base import KeepingProjection, KeptRows, as_utc, utc
from hub.sql import insert, insert_ignoring_duplicates

__all__ = [
    "BusinessProjection",
    "amount_units",
    "business_customers",
    "business_days",
    "business_erasures",
    "business_orders",
]

#: Amounts are kept as integers of this many units per currency unit (events allow 4 places).
UNITS = 10_000

metadata = MetaData()
#: One row per customer (``key`` is its id), or per erased group (a random key, no id).
business_customers = Table(
    "business_customers",
    metadata,
    Column("key", Uuid, primary_key=True),
    Column("customer_id", Uuid),  # None once erased
    Column("first_contact_at", DateTime(timezone=True), nullable=False),
    #: When the customer was created (what "earliest wins" compares within a group).
    Column("created_at", DateTime(timezone=True)),
    Column("source", String(200)),
    Column("medium", String(200)),
    Column("campaign", String(200)),
    Index("ix_business_customers_first", "first_contact_at"),
)
#: The UTC days a customer was active on, with the first and last activity of each (a day
#: in UTC lies in at most two local months, and these two instants tell which).
business_days = Table(
    "business_days",
    metadata,
    Column("key", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
)
#: Orders placed (positive) and cancelled (negative amounts), exact.
business_orders = Table(
    "business_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),  # the activity's id; random once erased
    Column("key", Uuid, nullable=False),
    Column("kind", String(16), nullable=False),  # placed, cancelled
    Column("at", DateTime(timezone=True), nullable=False),
    Column("amount", BigInteger),  # ten-thousandths, negative for a cancellation
    Column("currency", String(3)),
    Index("ix_business_orders_key", "key"),
)

#: The customers whose erasure this view has folded (ids only, the record that an erasure
#: happened, as ``view_erased_customers`` keeps it): an event of theirs that arrives after
#: it (another partition's lagging copy) is left out rather than counted as someone new.
business_erasures = Table(
    "business_erasures",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
)

_KINDS = {"order.placed": "placed", "order.cancelled": "cancelled"}


def amount_units(text: str | None) -> int | None:
    """Exact decimal text as ten-thousandths (None: no amount, or one that is not one)."""
    if text is None:
        return None
    try:
        value = Decimal(text) * UNITS
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        return None
    return int(value)


#: The customers' rows a batch keeps for the next (``BusinessProjection.kept``).
KEPT_ROWS = memory.Part("business rows kept", share=0.06, entry_bytes=470)


@dataclass(slots=True)
class _Customer:
    first_contact_at: datetime
    created_at: datetime | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    stored: bool = False
    changed: bool = False


class BusinessProjection(KeepingProjection):
    name = "business"
    handles = frozenset(
        {
            "customer.created.v1",
            "interaction.received.v1",
            "interaction.queued.v1",
            "interaction.sent.v1",
            "activity.recorded.v1",
            "customer.erased.v1",
        }
    )
    tables = (business_customers, business_days, business_orders, business_erasures)

    def __init__(self) -> None:
        #: The customer rows the last committed batch read or wrote (None: no row), which
        #: the next batch of the same follower starts from (``Projection.batch_begins``).
        self.kept: KeptRows[UUID, dict[str, Any] | None] = KeptRows(KEPT_ROWS.entries)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Nothing here: the erasure folds these customers' rows, source and ids gone, when
        their ``customer.erased.v1`` is applied (log order is what makes a rebuild fold
        the same rows; the erasure records that event before it returns). Touching the rows
        here too would lock them against the follower folding them (PostgreSQL deadlocks);
        an event of theirs arriving later is left out (``business_erasures``)."""

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        kept = self.kept.take()
        customer_ids = {e.customer_id for e in events}
        fold = _Fold(conn, customer_ids, kept)
        erased = _erased_among(conn, customer_ids)
        for event in events:
            if event.customer_id in erased:
                continue  # after its erasure: nobody's any more
            if isinstance(event, CustomerErased):
                fold.flush()  # what came before it, then the fold of the group
                group = [event.customer_id, *event.data.customer_ids]
                _anonymise(conn, group)
                erased.update(group)
                kept = None  # rows folded away: this batch keeps nothing
                fold = _Fold(conn, customer_ids - erased)
            else:
                fold.apply(event)
        fold.flush()
        if kept is not None:
            self.kept.keep(kept, fold.stored)


class _Fold:
    """One run of a batch: the customers and days it touches, read once, written at the end."""

    def __init__(
        self,
        conn: Connection,
        customer_ids: Collection[UUID] = (),
        kept: Mapping[UUID, dict[str, Any] | None] | None = None,
    ) -> None:
        self.conn = conn
        self.customers: dict[UUID, _Customer] = {}
        self.days: dict[tuple[UUID, date], tuple[datetime, datetime]] = {}
        self.orders: list[dict[str, Any]] = []
        #: The stored rows of the customers the run may touch (None: no row): those the
        #: previous batch kept, the others read in one query per 500; after :meth:`flush`,
        #: as it wrote them.
        self.stored: dict[UUID, dict[str, Any] | None] = {}
        unread = []
        for customer_id in customer_ids:
            if kept is not None and customer_id in kept:
                self.stored[customer_id] = kept[customer_id]
            else:
                unread.append(customer_id)
        self._read(unread)

    def _read(self, customer_ids: Collection[UUID]) -> None:
        c = business_customers.c
        wanted = list(customer_ids)  # (sorting UUIDs is slow)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            self.stored.update(dict.fromkeys(chunk))
            result = self.conn.execute(select(business_customers).where(c.key.in_(chunk)))
            keys = list(result.keys())
            for values in result:
                row = dict(zip(keys, values, strict=True))
                self.stored[row["key"]] = row

    def apply(self, event: Envelope) -> None:
        at = utc(event.occurred_at)
        if isinstance(event, CustomerCreated):
            customer = self.customer(event.customer_id, at)
            if customer.created_at is None or at < customer.created_at:
                source = event.data.source
                customer.created_at = at
                customer.source = _text(source.source if source else None)
                customer.medium = _text(source.medium if source else None)
                customer.campaign = _text(source.campaign if source else None)
                customer.changed = True
        elif isinstance(event, InteractionReceived | InteractionSent):
            self.contact(event.customer_id, at)
        elif isinstance(event, InteractionQueued):
            if event.data.automation is None:  # a rule's or campaign's message is no contact
                self.contact(event.customer_id, at)
        elif isinstance(event, ActivityRecorded):
            kind = _KINDS.get(event.data.type)
            if kind is None:
                return
            self.active(event.customer_id, at)
            amount = amount_units(event.data.amount)
            currency = event.data.currency if amount is not None else None
            self.orders.append(
                {
                    "order_id": event.data.activity_id,
                    "key": event.customer_id,
                    "kind": kind,
                    "at": at,
                    "amount": None
                    if amount is None
                    else (-amount if kind == "cancelled" else amount),
                    "currency": currency,
                }
            )

    def customer(self, customer_id: UUID, at: datetime) -> _Customer:
        """The customer's row, read once (a new one first contacted ``at`` if none)."""
        found = self.customers.get(customer_id)
        if found is None:
            if customer_id not in self.stored:
                self._read([customer_id])
            row = self.stored[customer_id]
            if row is None:
                found = _Customer(first_contact_at=at, changed=True)
            else:
                found = _Customer(
                    first_contact_at=as_utc(row["first_contact_at"]),
                    created_at=None if row["created_at"] is None else as_utc(row["created_at"]),
                    source=row["source"],
                    medium=row["medium"],
                    campaign=row["campaign"],
                    stored=True,
                )
            self.customers[customer_id] = found
        if at < found.first_contact_at:
            found.first_contact_at = at
            found.changed = True
        return found

    def contact(self, customer_id: UUID, at: datetime) -> None:
        self.customer(customer_id, at)
        self.active(customer_id, at)

    def active(self, key: UUID, at: datetime) -> None:
        slot = (key, at.date())
        seen = self.days.get(slot)
        self.days[slot] = (at, at) if seen is None else (min(seen[0], at), max(seen[1], at))

    def flush(self) -> None:
        changed = [(k, v) for k, v in self.customers.items() if v.changed]
        rows: list[dict[str, Any]] = [
            {
                "key": key,
                "customer_id": key,
                "first_contact_at": v.first_contact_at,
                "created_at": v.created_at,
                "source": v.source,
                "medium": v.medium,
                "campaign": v.campaign,
            }
            for key, v in changed
        ]
        stored = [r["key"] for r, (_, v) in zip(rows, changed, strict=True) if v.stored]
        if stored:
            self.conn.execute(
                delete(business_customers).where(business_customers.c.key.in_(stored))
            )
        if rows:
            self.conn.execute(business_customers.insert(), rows)
            self.stored.update((key, row) for (key, _), row in zip(changed, rows, strict=True))
        _merge_days(self.conn, self.days)
        insert_ignoring_duplicates(self.conn, business_orders, self.orders)
        self.customers, self.days, self.orders = {}, {}, []


def _merge_days(conn: Connection, days: dict[tuple[UUID, date], tuple[datetime, datetime]]) -> None:
    """Add these active days, widening the first and last instants of those already there:
    one upsert, in which the database keeps the earlier first and the later last (nothing
    read back)."""
    if not days:
        return
    statement = insert(conn, business_days)
    d, new = business_days.c, statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[d.key, d.day],
            set_={
                "first_at": case((new.first_at < d.first_at, new.first_at), else_=d.first_at),
                "last_at": case((new.last_at > d.last_at, new.last_at), else_=d.last_at),
            },
        ),
        [
            {"key": key, "day": day, "first_at": first, "last_at": last}
            for (key, day), (first, last) in days.items()
        ],
    )


def _anonymise(conn: Connection, customer_ids: Iterable[UUID]) -> None:
    """Fold the rows of an erased group into one row under a random key, without ids or
    source: the group counts once, as it did, and nothing links it back."""
    ids = list(dict.fromkeys(customer_ids))
    c, d, o = business_customers.c, business_days.c, business_orders.c
    members = conn.execute(select(business_customers).where(c.key.in_(ids))).mappings().all()
    days = conn.execute(select(business_days).where(d.key.in_(ids))).mappings().all()
    orders = conn.execute(select(o.order_id).where(o.key.in_(ids))).scalars().all()
    insert_ignoring_duplicates(conn, business_erasures, [{"customer_id": i} for i in ids])
    if not members and not days and not orders:
        return
    key = uuid4()
    firsts = [as_utc(m["first_contact_at"]) for m in members] or [
        as_utc(x["first_at"]) for x in days
    ]
    created = [as_utc(m["created_at"]) for m in members if m["created_at"] is not None]
    conn.execute(delete(business_customers).where(c.key.in_(ids)))
    if firsts:
        conn.execute(
            business_customers.insert().values(
                key=key,
                customer_id=None,
                first_contact_at=min(firsts),
                created_at=min(created) if created else None,
            )
        )
    merged: dict[tuple[UUID, date], tuple[datetime, datetime]] = {}
    for row in days:
        slot = (key, row["day"])
        first, last = as_utc(row["first_at"]), as_utc(row["last_at"])
        seen = merged.get(slot)
        merged[slot] = (first, last) if seen is None else (min(seen[0], first), max(seen[1], last))
    conn.execute(delete(business_days).where(d.key.in_(ids)))
    _merge_days(conn, merged)
    for order_id in orders:  # the activity's id would lead back through the log
        conn.execute(
            business_orders.update().where(o.order_id == order_id).values(order_id=uuid4(), key=key)
        )


def _erased_among(conn: Connection, customer_ids: Collection[UUID]) -> set[UUID]:
    e = business_erasures.c
    wanted = list(customer_ids)
    found: set[UUID] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            conn.scalars(
                select(e.customer_id).where(e.customer_id.in_(wanted[start : start + 500]))
            )
        )
    return found


def _text(value: str | None) -> str | None:
    return value[:200] if value else None
