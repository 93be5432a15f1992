"""Full-text search over everything that was said: messages (text and subject), conversations'
subjects, agents' notes, and customers' names and addresses, newest first.

One row of ``search_documents`` per document, keyed by the store position of the event that
made it (the full-text index's row id). Each database indexes the rows its own way
(``hub.projections.search_backends``); what a query means is ``hub.projections.search_text``.
The reads are ``hub.projections.search_queries``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
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
    bindparam,
    select,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from hub.events import (
    ConversationOpened,
    CustomerCreated,
    CustomerIdentityLinked,
    CustomerProfileUpdated,
    Envelope,
    NoteAdded,
)
from hub.projections import search_backends as backend
from hub.projections.base import MessageEvent, Projection, utc
from hub.projections.search_text import indexed_words
from hub.sql import insert, insert_ignoring_duplicates, upsert

__all__ = ["KINDS", "SearchProjection", "addresses", "documents"]

#: What a document is: a message, a conversation (its subject), a note, a customer.
KINDS = ("message", "conversation", "note", "customer")

metadata = MetaData()
documents = Table(
    "search_documents",
    metadata,
    # The store position of the event that made the document: the full-text row id.
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),  # SQLite: the rowid itself
        primary_key=True,
        autoincrement=False,
    ),
    Column("doc_id", Uuid, nullable=False, unique=True),  # message, note, conversation, customer
    Column("kind", String(16), nullable=False),
    Column("customer_id", Uuid, nullable=False),
    Column("conversation_id", Uuid),
    Column("channel", String(32)),
    Column("direction", String(16)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("title", Text),  # a subject, a customer's name
    Column("body", Text),  # a message's or note's text, a customer's addresses
    Column("terms", TSVECTOR().with_variant(Text(), "sqlite")),  # PostgreSQL's index
    Index("ix_search_customer", "customer_id"),
    # A page's keys without the texts (``search_backends.page_source``).
    Index("ix_search_page", "position", "occurred_at", "kind", "channel", "direction").ddl_if(
        dialect="sqlite"
    ),
    Index("ix_search_terms", "terms", postgresql_using="gin").ddl_if(dialect="postgresql"),
)
#: Which customer each address belongs to now (the latest link wins), for their documents.
addresses = Table(
    "search_addresses",
    metadata,
    Column("address", String(300), primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_search_addresses_customer", "customer_id"),
)


class SearchProjection(Projection):
    name = "search"
    handles = frozenset(
        {
            "customer.created.v1",
            "customer.identity_linked.v1",
            "customer.profile_updated.v1",
            "conversation.opened.v1",
            "interaction.received.v1",
            "interaction.sent.v1",
            "interaction.queued.v1",
            "note.added.v1",
        }
    )
    tables = (documents, addresses)

    def create(self, conn: Connection) -> None:
        backend.create(conn)

    def drop(self, conn: Connection) -> None:
        backend.drop(conn)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Every document and address of these customers goes, and no word of them stays in
        the index."""
        ids = list(customer_ids)
        removed = conn.execute(documents.delete().where(documents.c.customer_id.in_(ids)))
        conn.execute(addresses.delete().where(addresses.c.customer_id.in_(ids)))
        if removed.rowcount:
            backend.merge_deleted(conn)

    def expire_bodies_before(self, conn: Connection, cutoff: datetime) -> int:
        """Messages and conversations that happened (opened) before ``cutoff`` lose their
        text and subject, here and in the index; the document stays, with its time."""
        d = documents.c
        blanked = conn.execute(
            documents.update()
            .where(
                d.kind.in_(("message", "conversation")),
                d.occurred_at < utc(cutoff),
                d.title.is_not(None) | d.body.is_not(None),
            )
            .values(title=None, body=None, terms=None)
        )
        if blanked.rowcount:
            backend.merge_deleted(conn)
        return int(blanked.rowcount or 0)

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        new: dict[UUID, dict[str, Any]] = {}
        names: dict[UUID, str | None] = {}
        links: dict[str, dict[str, Any]] = {}
        for event in events:
            if isinstance(event, CustomerCreated):
                new.setdefault(event.customer_id, _customer(event))
                if event.data.address:
                    links[event.data.address] = _link(event.data.address, event)
            elif isinstance(event, CustomerIdentityLinked):
                if event.data.address:
                    links[event.data.address] = _link(event.data.address, event)
            elif isinstance(event, CustomerProfileUpdated):
                names[event.customer_id] = event.data.display_name
            else:
                row = _document(event)
                new.setdefault(row["doc_id"], row)
        self._channels_of_notes(conn, new)
        self._insert(conn, list(new.values()))
        moved = self._link(conn, list(links.values()))
        self._refresh_customers(conn, names, moved | {r["customer_id"] for r in links.values()})

    def _channels_of_notes(self, conn: Connection, new: dict[UUID, dict[str, Any]]) -> None:
        """A note is on its conversation's channel (conversations opened in this batch or
        before)."""
        notes = [r for r in new.values() if r["kind"] == "note"]
        if not notes:
            return
        d = documents.c
        wanted = list({r["conversation_id"] for r in notes})
        channels: dict[UUID, str | None] = dict(
            conn.execute(  # type: ignore[arg-type]
                select(d.doc_id, d.channel).where(d.doc_id.in_(wanted))
            ).all()
        )
        channels |= {k: r["channel"] for k, r in new.items() if r["kind"] == "conversation"}
        for note in notes:
            note["channel"] = channels.get(note["conversation_id"])

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if conn.dialect.name != "postgresql":
            insert_ignoring_duplicates(conn, documents, rows)
        elif rows:
            for row in rows:
                row["b_words"] = indexed_words(row["title"], row["body"])
            statement = insert(conn, documents).values(terms=backend.tsvector(bindparam("b_words")))
            conn.execute(statement.on_conflict_do_nothing(), rows)

    def _link(self, conn: Connection, links: list[dict[str, Any]]) -> set[UUID]:
        """Record who each address belongs to now; the customers that lost one."""
        if not links:
            return set()
        a = addresses.c
        before = conn.execute(
            select(a.address, a.customer_id).where(a.address.in_([r["address"] for r in links]))
        ).all()
        upsert(conn, addresses, links)
        owner = {r["address"]: r["customer_id"] for r in links}
        return {customer for address, customer in before if owner[address] != customer}

    def _refresh_customers(
        self, conn: Connection, names: dict[UUID, str | None], touched: Iterable[UUID]
    ) -> None:
        """Rewrite the documents of customers whose name or addresses changed."""
        ids = list(set(touched) | set(names))
        if not ids:
            return
        d, a = documents.c, addresses.c
        current = {
            r.doc_id: r
            for r in conn.execute(
                select(d.doc_id, d.title, d.body).where(d.doc_id.in_(ids), d.kind == "customer")
            )
        }
        linked: dict[UUID, list[str]] = {}
        for customer_id, address in conn.execute(
            select(a.customer_id, a.address).where(a.customer_id.in_(ids)).order_by(a.position)
        ):
            linked.setdefault(customer_id, []).append(_shown_address(address) or address)
        changes = []
        for doc_id, row in current.items():
            title = names.get(doc_id, row.title)
            body = " · ".join(linked.get(doc_id, [])) or None
            if (title, body) != (row.title, row.body):
                changes.append({"b_id": doc_id, "title": title, "body": body})
        if not changes:
            return
        values: dict[str, Any] = {"title": bindparam("title"), "body": bindparam("body")}
        if conn.dialect.name == "postgresql":
            for change in changes:
                change["b_words"] = indexed_words(change["title"], change["body"])
            values["terms"] = backend.tsvector(bindparam("b_words"))
        conn.execute(
            documents.update().where(d.doc_id == bindparam("b_id")).values(values), changes
        )


def _document(event: Envelope) -> dict[str, Any]:
    """The document of a message, a conversation's opening or a note."""
    row: dict[str, Any] = {
        "position": event.position,
        "customer_id": event.customer_id,
        "occurred_at": utc(event.occurred_at),
        "direction": None,
        "title": None,
        "body": None,
    }
    if isinstance(event, MessageEvent):
        d = event.data
        return row | {
            "doc_id": d.message_id,
            "kind": "message",
            "conversation_id": d.conversation_id,
            "channel": d.channel,
            "direction": d.direction,
            "title": d.subject,
            "body": d.text,
        }
    if isinstance(event, ConversationOpened):
        c = event.data
        return row | {
            "doc_id": c.conversation_id,
            "kind": "conversation",
            "conversation_id": c.conversation_id,
            "channel": c.channel,
            "title": c.subject,
        }
    if isinstance(event, NoteAdded):
        n = event.data
        return row | {
            "doc_id": n.note_id,
            "kind": "note",
            "conversation_id": n.conversation_id,
            "channel": None,  # its conversation's (``_channels_of_notes``)
            "body": n.text,
        }
    raise TypeError(f"search does not handle {event.type}")  # pragma: no cover - ``handles``


def _customer(event: CustomerCreated) -> dict[str, Any]:
    return {
        "position": event.position,
        "doc_id": event.customer_id,
        "kind": "customer",
        "customer_id": event.customer_id,
        "conversation_id": None,
        "channel": None,
        "direction": None,
        "occurred_at": utc(event.occurred_at),
        "title": event.data.display_name,
        "body": _shown_address(event.data.address),
    }


def _shown_address(address: str | None) -> str | None:
    """An address as a customer's document shows it: its value (``kind:`` left out)."""
    return (address.partition(":")[2] or address) if address else None


def _link(address: str, event: Envelope) -> dict[str, Any]:
    return {"address": address, "customer_id": event.customer_id, "position": event.position}
