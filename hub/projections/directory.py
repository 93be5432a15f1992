"""The customer directory: who each customer is, their addresses, their profile (what agents
set: ``hub.projections.profiles``), and search over names and addresses.

Merges group customers without moving anything (``hub.projections.merges`` keeps the groups).
Readers ask for a :meth:`~DirectoryProjection.profile` (the whole group as one customer) and
:meth:`~DirectoryProjection.group` (the ids whose timelines make up the view).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
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
    bindparam,
    or_,
    select,
)

from hub.events import (
    CustomerCreated,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerTagsChanged,
    CustomerUnmerged,
    Envelope,
)
from hub.projections.base import MessageEvent, Projection, as_utc, later, utc
from hub.projections.merges import apply_merge, group_of, merges, root_of, roots_of, with_members
from hub.projections.profiles import (
    apply_profiles,
    attributes,
    fold_attributes,
    load_profiles,
    profiles,
    purge_profiles,
    record_fields,
)
from hub.sql import insert_ignoring_duplicates, upsert

__all__ = [
    "CustomerRecord",
    "DirectoryProjection",
    "Identity",
    "attributes",
    "customers",
    "facts",
    "identities",
    "merges",
    "metadata",
    "profiles",
    "search_text",
]

metadata = MetaData()
customers = Table(
    "directory_customers",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("display_name", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_activity_at", DateTime(timezone=True)),
    Column("search_text", Text, nullable=False, default=""),
)
identities = Table(
    "directory_identities",
    metadata,
    Column("address", String(300), primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("ix_identities_customer", "customer_id"),
)
#: Facts about a customer beyond its name: agents' tags, the language it last wrote in (when
#: the channel says: Telegram's language_code, an email's Content-Language, the chat widget's
#: browser language). Its own table, so hubs from before it need no migration.
facts = Table(
    "directory_facts",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("language", String(35)),
    Column("tags", JSON),
)

_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class Identity:
    address: str
    kind: str
    verified: bool
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    customer_id: UUID
    display_name: str | None
    created_at: datetime
    last_activity_at: datetime | None
    identities: tuple[Identity, ...]
    #: In a :meth:`DirectoryProjection.profile`: the other customers shown as this one.
    merged_customer_ids: tuple[UUID, ...] = ()
    tags: tuple[str, ...] = ()
    #: The effective language: the one an agent set, else the one the channel said.
    language: str | None = None
    #: What agents set (``hub.projections.profiles``): YYYY-MM-DD or --MM-DD, an IANA zone.
    birthday: str | None = None
    time_zone: str | None = None
    company: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Where the customer came from (the fields of ``hub.events.AcquisitionSource``).
    source: dict[str, Any] | None = None


class DirectoryProjection(Projection):
    name = "directory"
    handles = frozenset(
        {
            "customer.created.v1",
            "customer.identity_linked.v1",
            "customer.profile_updated.v1",
            "customer.merged.v1",
            "customer.unmerged.v1",
            "customer.tags_changed.v1",
            "interaction.received.v1",
            "interaction.sent.v1",
            "interaction.queued.v1",
        }
    )
    tables = (customers, identities, merges, facts, profiles, attributes)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Names, addresses, search text, tags, languages and profiles go; the merges (ids
        only) stay, so the group is still known."""
        for table in (customers, identities, facts):
            conn.execute(table.delete().where(table.c.customer_id.in_(customer_ids)))
        purge_profiles(conn, customer_ids)

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        new_customers: dict[UUID, dict[str, Any]] = {}
        new_identities: list[dict[str, Any]] = []
        names: dict[UUID, str | None] = {}
        activity: dict[UUID, datetime] = {}
        changed_facts: dict[UUID, dict[str, Any]] = {}
        for event in events:
            if isinstance(event, CustomerCreated):
                new_customers.setdefault(
                    event.customer_id,
                    {
                        "customer_id": event.customer_id,
                        "display_name": event.data.display_name,
                        "created_at": utc(event.occurred_at),
                        "last_activity_at": None,
                        "search_text": "",
                    },
                )
                if event.data.address:
                    new_identities.append(
                        _identity(event.customer_id, event.data.address, False, event)
                    )
            elif isinstance(event, CustomerIdentityLinked):
                if event.data.address:
                    new_identities.append(
                        _identity(event.customer_id, event.data.address, event.data.verified, event)
                    )
            elif isinstance(event, CustomerProfileUpdated):
                names[event.customer_id] = event.data.display_name
            elif isinstance(event, CustomerMerged | CustomerUnmerged):
                apply_merge(conn, event)
            elif isinstance(event, CustomerTagsChanged):
                changed_facts.setdefault(event.customer_id, {})["tags"] = list(event.data.tags)
            elif isinstance(event, MessageEvent):
                at = utc(event.occurred_at)
                activity[event.customer_id] = max(at, activity.get(event.customer_id, at))
                language = _language(event)
                if language:
                    changed_facts.setdefault(event.customer_id, {})["language"] = language

        for customer_id, at in activity.items():
            if customer_id in new_customers:
                new_customers[customer_id]["last_activity_at"] = at
        insert_ignoring_duplicates(conn, customers, list(new_customers.values()))
        # An address belongs to one customer at a time: the latest link wins.
        upsert(conn, identities, list({i["address"]: i for i in new_identities}.values()))
        c = customers.c
        if names:
            conn.execute(
                customers.update().where(c.customer_id == bindparam("b_id")),
                [{"b_id": k, "display_name": v} for k, v in names.items()],
            )
        updates = [{"b_id": k, "b_at": v} for k, v in activity.items() if k not in new_customers]
        if updates:
            at_param = bindparam("b_at", type_=DateTime(timezone=True))
            conn.execute(
                customers.update()
                .where(c.customer_id == bindparam("b_id"))
                .values(last_activity_at=later(c.last_activity_at, at_param)),
                updates,
            )
        changed = set(names) | {i["customer_id"] for i in new_identities}
        if changed:
            self._refresh_search_text(conn, changed)
        self._save_facts(conn, changed_facts)
        apply_profiles(conn, events)

    def _save_facts(self, conn: Connection, changed: dict[UUID, dict[str, Any]]) -> None:
        if not changed:
            return
        known = {
            r.customer_id: r
            for r in conn.execute(select(facts).where(facts.c.customer_id.in_(list(changed))))
        }
        rows = [
            {
                "customer_id": cid,
                "language": values.get("language", known[cid].language if cid in known else None),
                "tags": values.get("tags", known[cid].tags if cid in known else None),
            }
            for cid, values in changed.items()
        ]
        upsert(conn, facts, rows)

    def _refresh_search_text(self, conn: Connection, customer_ids: set[UUID]) -> None:
        ids = list(customer_ids)
        names: dict[UUID, str | None] = dict(
            conn.execute(  # type: ignore[arg-type]
                select(customers.c.customer_id, customers.c.display_name).where(
                    customers.c.customer_id.in_(ids)
                )
            ).all()
        )
        addresses: dict[UUID, list[str]] = {}
        for customer_id, address in conn.execute(
            select(identities.c.customer_id, identities.c.address).where(
                identities.c.customer_id.in_(ids)
            )
        ):
            addresses.setdefault(customer_id, []).append(address)
        conn.execute(
            customers.update().where(customers.c.customer_id == bindparam("b_id")),
            [
                {"b_id": cid, "search_text": search_text(name, addresses.get(cid, []))}
                for cid, name in names.items()
            ],
        )

    # -- queries ---------------------------------------------------------------------------

    def by_address(self, conn: Connection, address: str) -> CustomerRecord | None:
        customer_id = conn.scalar(
            select(identities.c.customer_id).where(identities.c.address == address)
        )
        return self.get(conn, customer_id) if customer_id is not None else None

    def root(self, conn: Connection, customer_id: UUID) -> UUID:
        """The customer a group is shown as (the customer itself when not merged)."""
        return root_of(conn, customer_id)

    def group(self, conn: Connection, customer_id: UUID) -> list[UUID]:
        """The customers shown as one with ``customer_id``: its root first."""
        return group_of(conn, customer_id)

    def profile(self, conn: Connection, customer_id: UUID) -> CustomerRecord | None:
        """The whole group of ``customer_id`` as one customer: the root's id, every member's
        identities and tags, the latest activity; for the name and each profile field and
        attribute, the root's value when set, else the first member's that has one."""
        ids = self.group(conn, customer_id)
        records = self.get_many(conn, ids)
        if not records or records[0].customer_id != ids[0]:
            return None  # the root is not projected yet
        root = records[0]
        if len(records) == 1:
            return root
        activity = [r.last_activity_at for r in records if r.last_activity_at is not None]

        def first(name: str) -> Any:
            return next((getattr(r, name) for r in records if getattr(r, name)), None)

        return CustomerRecord(
            customer_id=root.customer_id,
            display_name=first("display_name"),
            created_at=min(r.created_at for r in records),
            last_activity_at=max(activity) if activity else None,
            identities=tuple(
                sorted(
                    (i for r in records for i in r.identities),
                    key=lambda i: (i.linked_at, i.address),
                )
            ),
            merged_customer_ids=tuple(r.customer_id for r in records[1:]),
            tags=tuple(sorted({t for r in records for t in r.tags})),
            language=first("language"),
            birthday=first("birthday"),
            time_zone=first("time_zone"),
            company=first("company"),
            attributes=fold_attributes(r.attributes for r in records),
            source=first("source"),
        )

    def get(self, conn: Connection, customer_id: UUID) -> CustomerRecord | None:
        found = self.get_many(conn, [customer_id])
        return found[0] if found else None

    def get_many(self, conn: Connection, customer_ids: Sequence[UUID]) -> list[CustomerRecord]:
        if not customer_ids:
            return []
        rows = conn.execute(
            select(customers).where(customers.c.customer_id.in_(list(customer_ids)))
        ).mappings()
        by_id = {r["customer_id"]: r for r in rows}
        linked: dict[UUID, list[Identity]] = {}
        for r in conn.execute(
            select(identities)
            .where(identities.c.customer_id.in_(list(by_id)))
            .order_by(identities.c.linked_at, identities.c.address)
        ).mappings():
            linked.setdefault(r["customer_id"], []).append(
                Identity(r["address"], r["kind"], r["verified"], as_utc(r["linked_at"]))
            )
        known = {
            r.customer_id: r
            for r in conn.execute(select(facts).where(facts.c.customer_id.in_(list(by_id))))
        }
        set_by_agents = load_profiles(conn, list(by_id))
        return [
            CustomerRecord(
                customer_id=cid,
                tags=tuple(known[cid].tags or ()) if cid in known else (),
                **record_fields(
                    set_by_agents.get(cid), known[cid].language if cid in known else None
                ),
                display_name=by_id[cid]["display_name"],
                created_at=as_utc(by_id[cid]["created_at"]),
                last_activity_at=(
                    as_utc(by_id[cid]["last_activity_at"])
                    if by_id[cid]["last_activity_at"]
                    else None
                ),
                identities=tuple(linked.get(cid, [])),
            )
            for cid in customer_ids
            if cid in by_id
        ]

    def search(
        self, conn: Connection, q: str, limit: int, after: UUID | None
    ) -> tuple[list[CustomerRecord], UUID | None]:
        """Customers whose name or any address contains ``q`` (phone digits match too)."""
        text = q.strip().lower()
        terms = [customers.c.search_text.contains(text, autoescape=True)]
        digits = _NON_DIGITS.sub("", text)
        if len(digits) >= 3 and digits != text:
            terms.append(customers.c.search_text.contains(digits, autoescape=True))
        query = (
            select(customers.c.customer_id)
            .where(or_(*terms))
            .order_by(customers.c.customer_id)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(customers.c.customer_id > after)
        ids = list(conn.scalars(query))
        more = len(ids) > limit
        ids = ids[:limit]
        # A merged customer is found as its group (once per page).
        roots = roots_of(conn, ids)
        shown = list(dict.fromkeys(roots.get(i, i) for i in ids))
        grouped = with_members(conn, shown)
        plain = {
            r.customer_id: r for r in self.get_many(conn, [i for i in shown if i not in grouped])
        }
        records = [self.profile(conn, i) if i in grouped else plain.get(i) for i in shown]
        return [r for r in records if r is not None], (ids[-1] if more else None)


def search_text(name: str | None, addresses: list[str]) -> str:
    """What search matches against: the name, every address, phone numbers as bare digits."""
    parts = [name.lower()] if name else []
    for address in addresses:
        parts.append(address.lower())
        kind, _, value = address.partition(":")
        parts.append(value.lower())
        if kind == "phone":
            parts.append(_NON_DIGITS.sub("", value))
    return " ".join(parts)


def _language(event: MessageEvent) -> str | None:
    """The language a customer's message says it is in, if its channel told."""
    if event.data.direction != "inbound":
        return None
    metadata = event.data.metadata if isinstance(event.data.metadata, dict) else {}
    value = metadata.get("language") or metadata.get("language_code")
    return value[:35] if isinstance(value, str) and value.strip() else None


def _identity(customer_id: UUID, address: str, verified: bool, event: Envelope) -> dict[str, Any]:
    return {
        "address": address,
        "customer_id": customer_id,
        "kind": address.partition(":")[0],
        "verified": verified,
        "linked_at": utc(event.occurred_at),
    }
