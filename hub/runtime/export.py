"""Export of everything the hub holds about a person (GDPR art. 15 and 20): one JSON document
for the whole merge group, read from the event store and streamed in bounded memory.

The document's parts are the contract models of ``hub.events.export``; :class:`ExportDocument`
is the whole (``docs/export.schema.json`` is its JSON Schema, ``hub customers export-schema``
prints it).
The document is never held whole: :meth:`CustomerExport.chunks` writes it part by part,
conversation by conversation, reading each conversation's events and their messages a page
at a time, so a customer with 100,000 messages exports in the memory of one page.

What comes from where: the event store is the truth (the customers', conversations' and
messages' own events, decrypted with the customer's key); the views only say which customers
form the group (``directory.group``), which conversations and scheduled messages they have
(the ``conversations`` view, the timeline's ``scheduled`` items) and the language the directory
shows. The access log entries come from the access log (``runtime.access_log``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic_core import to_jsonable_python
from sqlalchemy import DateTime, Uuid, literal, select, tuple_

from hub.domain.automation import Occurrence
from hub.domain.consent import consent_history
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import CustomerErased, NotFound
from hub.domain.unit_of_work import BulkReader
from hub.events.export import (
    FORMAT,
    VERSION,
    ExportAccessEntry,
    ExportAssignment,
    ExportAttachment,
    ExportConsentEntry,
    ExportConversationHead,
    ExportConversationTail,
    ExportDeliveryStep,
    ExportHead,
    ExportIdentity,
    ExportMember,
    ExportMerge,
    ExportMessage,
    ExportNote,
    ExportProfile,
    ExportScheduledMessage,
    ExportStatusChange,
    Part,
)
from hub.projections.conversations import conversations as conversations_table
from hub.projections.timeline import timeline_items
from hub.runtime.export_profile import ProfileFold, group_fields
from hub.store.tokens import Principal

if TYPE_CHECKING:
    from hub.runtime.core import Runtime

log = logging.getLogger(__name__)

#: Events of one aggregate read at a time (and so at most this many messages per bulk read):
#: what bounds an export's memory (about 1 MB with messages of a few hundred characters).
EVENT_PAGE = 250
#: Conversations of the group listed from the view at a time.
CONVERSATION_PAGE = 200
#: Scheduled messages of the group listed from the timeline at a time (their events read in
#: one query per page).
SCHEDULED_PAGE = 200


# -- reading -----------------------------------------------------------------------------------


@dataclasses.dataclass
class ExportStats:
    """What an export wrote (for the access log)."""

    conversations: int = 0
    messages: int = 0
    notes: int = 0
    scheduled_messages: int = 0


@dataclasses.dataclass
class _Customer:
    """What the export gathers from one customer record's events."""

    member: ExportMember
    identities: list[ExportIdentity]
    merges: list[ExportMerge]


def _event_name(event: Any) -> str:
    return str(type(event).__qualname__)


#: Fields of a delivery event shown in their own field of :class:`ExportDeliveryStep` (or that tie
#: it to its message): the rest go to ``details``.
_SHOWN = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "correlation_id",
        "customer_id",
        "conversation_id",
        "status",
        "error_code",
        "error_message",
        "provider_message_id",
        "occurred_at",
        "attempt",
        "until",
        "held",
        "reason",
        "author",
        "urgent",
    }
)
_DELIVERY_EVENTS = {
    "Message.DispatchRequested": "dispatch_requested",
    "Message.DispatchStarted": "dispatch_started",
    "Message.Dispatched": "dispatched",
    "Message.DeliveryUpdated": "delivery_updated",
    "Message.DispatchDeferred": "dispatch_deferred",
}


class CustomerExport:
    """The export of one customer's group. Made by :func:`prepare_export`, which refuses an
    unknown or erased customer before anything is written; :meth:`chunks` writes it."""

    def __init__(self, runtime: Runtime, customer_ids: list[UUID], now: datetime) -> None:
        self._runtime = runtime
        self._app = runtime.store.app
        self._cipher: PersonalDataCipher = runtime.store.cipher
        reader: BulkReader = self._app.recorder  # type: ignore[assignment]
        self._reader = reader
        self.customer_ids = customer_ids
        self.generated_at = now
        self.stats = ExportStats()

    @property
    def customer_id(self) -> UUID:
        """The customer the group is shown as (its root)."""
        return self.customer_ids[0]

    # -- the document ----------------------------------------------------------------------

    def recorded_chunks(self, principal: Principal, action: str) -> Iterator[bytes]:
        """:meth:`chunks`, noted in the access log once written (or abandoned half way):
        who exported the group, through what (``action``), and how many messages, notes and
        scheduled messages it held."""
        try:
            yield from self.chunks()
        finally:
            stats = self.stats
            items = stats.messages + stats.notes + stats.scheduled_messages
            self._runtime.access_log.record(principal, self.customer_ids, action, items)

    def chunks(self) -> Iterator[bytes]:
        """The document, part by part (UTF-8 JSON)."""
        self._cipher.prefetch(self.customer_ids)
        records = [self._customer(cid) for cid in self.customer_ids]
        head = ExportHead(
            format=FORMAT,
            version=VERSION,
            generated_at=self.generated_at,
            customer_id=self.customer_id,
            customer_ids=self.customer_ids,
            profile=self._profile(records),
            members=[r.member for r in records],
            identities=[i for r in records for i in r.identities],
            consent=[
                ExportConsentEntry.model_validate(
                    {name: getattr(entry, name) for name in ExportConsentEntry.model_fields}
                )
                for entry in consent_history(self._app, self.customer_ids, self.generated_at)
            ],
            merges=sorted((m for r in records for m in r.merges), key=lambda m: m.at),
        )
        yield head.model_dump_json().encode()[:-1] + b',"conversations":['
        for conversation_id in self._conversation_ids():
            yield from self._conversation(conversation_id, first=self.stats.conversations == 0)
        yield b'],"scheduled_messages":['
        for page in _pages(self._scheduled_ids(), SCHEDULED_PAGE):
            found = self._scheduled(page)
            if found:
                comma = b"," if self.stats.scheduled_messages else b""
                yield comma + b",".join(m.model_dump_json().encode() for m in found)
                self.stats.scheduled_messages += len(found)
        yield b'],"access_log":['
        first = True
        for page in _pages(self._access_entries(), EVENT_PAGE):
            yield (b"" if first else b",") + b",".join(e.model_dump_json().encode() for e in page)
            first = False
        yield b"]}"

    # -- customers ---------------------------------------------------------------------------

    def _events(self, originator_id: UUID) -> Iterator[Any]:
        """An aggregate's events, oldest first, read a page at a time."""
        version = 0
        while True:
            page: list[Any] = list(
                self._app.events.get(originator_id, gt=version, limit=EVENT_PAGE)
            )
            yield from page
            if len(page) < EVENT_PAGE:
                return
            version = page[-1].originator_version

    def _customer(self, customer_id: UUID) -> _Customer:
        dec = self._cipher.decrypt
        name: str | None = None
        tags: list[str] = []
        first_seen: datetime | None = None
        merged_into: UUID | None = None
        identities: dict[str, dict[str, Any]] = {}
        merges: list[ExportMerge] = []
        profile = ProfileFold(self._cipher, customer_id)
        for e in self._events(customer_id):
            kind = _event_name(e)
            if kind == "Customer.Registered":
                name, first_seen = dec(customer_id, e.display_name), e.first_seen_at
                profile.registered(e)
                address = dec(customer_id, e.address)
                identities[address or f"#{len(identities)}"] = {
                    "customer_id": customer_id,
                    "address": address,
                    "kind": e.address_kind,
                    "source": "first_contact",
                    "linked_at": e.first_seen_at,
                    "reason": "first_contact",
                    # A record that began with a message carries its id; one registered by a
                    # command (a chat visitor's email) carries its own id.
                    "first_message_id": (
                        e.correlation_id if e.correlation_id != customer_id else None
                    ),
                    "verified": False,
                    "verified_at": None,
                    "verification_reason": None,
                }
            elif kind == "Customer.IdentityLinked":
                address = dec(customer_id, e.address)
                key = address or f"#{len(identities)}"
                found = identities.setdefault(
                    key,
                    {
                        "customer_id": customer_id,
                        "address": address,
                        "kind": e.address_kind,
                        "source": "linked",
                        "linked_at": e.timestamp,
                        "reason": self._cipher.decrypt_text(customer_id, e.reason),
                        "first_message_id": None,
                        "verified": False,
                        "verified_at": None,
                        "verification_reason": None,
                    },
                )
                if e.verified and not found["verified"]:
                    found |= {
                        "verified": True,
                        "verified_at": e.timestamp,
                        "verification_reason": self._cipher.decrypt_text(customer_id, e.reason),
                    }
            elif kind == "Customer.ProfileUpdated":
                name = dec(customer_id, e.display_name)
                profile.updated(e)
            elif kind == "Customer.TagsChanged":
                tags = [t for t in (dec(customer_id, v) for v in e.tags) if t is not None]
            elif kind in ("Customer.Merged", "Customer.Unmerged"):
                merged = kind == "Customer.Merged"
                merged_into = e.into_customer_id if merged else None
                merges.append(
                    ExportMerge(
                        customer_id=customer_id,
                        kind="merged" if merged else "unmerged",
                        other_customer_id=e.into_customer_id if merged else e.from_customer_id,
                        at=e.timestamp,
                        actor=e.actor,
                        reason=self._cipher.decrypt_text(customer_id, e.reason),
                        caused_by=getattr(e, "caused_by", None),
                    )
                )
            elif kind in ("Customer.Absorbed", "Customer.Released"):
                merges.append(
                    ExportMerge(
                        customer_id=customer_id,
                        kind="absorbed" if kind == "Customer.Absorbed" else "released",
                        other_customer_id=e.customer_id,
                        at=e.timestamp,
                        actor=None,
                        reason=None,
                        caused_by=None,
                    )
                )
        if first_seen is None:
            raise NotFound(f"no customer {customer_id}", customer_id=str(customer_id))
        member = ExportMember(
            customer_id=customer_id,
            display_name=name,
            tags=sorted(tags),
            first_seen_at=first_seen,
            merged_into=merged_into,
            **profile.member_fields(),
        )
        return _Customer(
            member=member,
            identities=[ExportIdentity.model_validate(i) for i in identities.values()],
            merges=merges,
        )

    def _profile(self, records: list[_Customer]) -> ExportProfile:
        members = [r.member for r in records]
        with self._runtime.read() as conn:
            shown = self._runtime.views.directory.profile(conn, self.customer_id)
        return ExportProfile(
            display_name=next((m.display_name for m in members if m.display_name), None),
            tags=sorted({t for m in members for t in m.tags}),
            language=shown.language if shown is not None else None,
            first_seen_at=min(m.first_seen_at for m in members),
            **group_fields(members),
        )

    # -- conversations -----------------------------------------------------------------------

    def _conversation_ids(self) -> Iterator[UUID]:
        """The group's conversations (from the view), oldest first, a page at a time."""
        c = conversations_table.c
        after: UUID | None = None
        while True:
            query = (
                select(c.conversation_id)
                .where(c.customer_id.in_(self.customer_ids))
                .order_by(c.conversation_id)
                .limit(CONVERSATION_PAGE)
            )
            if after is not None:
                query = query.where(c.conversation_id > after)
            with self._runtime.read() as conn:
                page = list(conn.scalars(query))
            yield from page
            if len(page) < CONVERSATION_PAGE:
                return
            after = page[-1]

    def _conversation(self, conversation_id: UUID, first: bool) -> Iterator[bytes]:
        """One conversation's JSON, a page of its events (and their messages) at a time;
        nothing for an id that is not a conversation."""
        version = 0
        opened = False
        items_written = 0
        status, assignee, count = "open", None, 0
        while True:
            events: list[Any] = list(
                self._app.events.get(conversation_id, gt=version, limit=EVENT_PAGE)
            )
            if not events or (not opened and _event_name(events[0]) != "Conversation.Opened"):
                break
            version = events[-1].originator_version
            messages = self._messages(
                [
                    e.first_message_id if _event_name(e) == "Conversation.Opened" else e.message_id
                    for e in events
                    if _event_name(e) in ("Conversation.Opened", "Conversation.MessageAdded")
                ]
            )
            out: list[bytes] = []
            for e in events:
                kind = _event_name(e)
                item: Part | None = None
                if kind == "Conversation.Opened":
                    out.append((b"" if first else b",") + self._head(conversation_id, e))
                    opened = True
                    item = messages.get(e.first_message_id)
                    count += 1
                elif kind == "Conversation.MessageAdded":
                    item = messages.get(e.message_id)
                    count += 1
                elif kind == "Conversation.NoteAdded":
                    item = ExportNote(
                        kind="note",
                        note_id=e.note_id,
                        at=e.timestamp,
                        author=e.author,
                        text=self._cipher.decrypt_text(e.customer_id, e.text),
                    )
                    self.stats.notes += 1
                elif kind == "Conversation.StatusChanged":
                    status = e.status
                    item = ExportStatusChange(
                        kind="status_changed",
                        at=e.timestamp,
                        status=e.status,
                        previous_status=e.previous_status,
                        actor=e.actor,
                        reason=e.reason,
                    )
                elif kind == "Conversation.Assigned":
                    assignee = e.assignee
                    item = ExportAssignment(
                        kind="assigned", at=e.timestamp, assignee=e.assignee, actor=e.actor
                    )
                if item is not None:
                    out.append((b"," if items_written else b"") + item.model_dump_json().encode())
                    items_written += 1
            last_page = len(events) < EVENT_PAGE
            del events, messages  # this page is written: not kept while the next is read
            if out:
                yield b"".join(out)
            del out
            if last_page:
                break
        if opened:
            self.stats.conversations += 1
            tail = ExportConversationTail(status=status, assignee=assignee, message_count=count)
            yield b"]," + tail.model_dump_json().encode()[1:]

    def _head(self, conversation_id: UUID, opened: Any) -> bytes:
        """The start of a conversation's JSON object, up to its ``items`` array."""
        cid = opened.customer_id
        head = ExportConversationHead(
            conversation_id=conversation_id,
            customer_id=cid,
            channel=opened.channel,
            address=self._cipher.decrypt(cid, opened.address),
            subject=self._cipher.decrypt(cid, opened.subject, at=opened.opened_at),
            opened_at=opened.opened_at,
        )
        return head.model_dump_json().encode()[:-1] + b',"items":['

    def _messages(self, message_ids: list[UUID]) -> dict[UUID, ExportMessage]:
        """The messages of these ids with their delivery history, in one read."""
        if not message_ids:
            return {}
        by_id: dict[UUID, list[Any]] = {}
        to_event = self._app.mapper.to_domain_event
        for stored in self._reader.select_events_after(dict.fromkeys(message_ids, 0)):
            oid = stored.originator_id
            key = oid if isinstance(oid, UUID) else UUID(oid)
            by_id.setdefault(key, []).append(to_event(stored))
        found = {}
        for message_id, events in by_id.items():
            item = self._message(message_id, events)
            if item is not None:
                found[message_id] = item
        self.stats.messages += len(found)
        return found

    def _message(self, message_id: UUID, events: list[Any]) -> ExportMessage | None:
        recorded = events[0]
        if _event_name(recorded) != "Message.Recorded":
            return None  # not a message (no other aggregate shares these ids)
        cid = recorded.customer_id
        dec = self._cipher.decrypt
        at = recorded.occurred_at  # a body older than the retention period reads as null
        status = "received" if recorded.direction == "inbound" else "sent"
        delivery = []
        for e in events[1:]:
            name = _DELIVERY_EVENTS.get(_event_name(e))
            if name is None:
                continue
            status = {
                "dispatch_requested": "queued",
                "dispatched": getattr(e, "status", status),
                "delivery_updated": getattr(e, "status", status),
            }.get(name, status)
            delivery.append(_delivery(name, e))
        return ExportMessage(
            kind="message",
            message_id=message_id,
            customer_id=cid,
            channel=recorded.channel,
            direction=recorded.direction,
            occurred_at=recorded.occurred_at,
            recorded_at=recorded.timestamp,
            address=dec(cid, recorded.address),
            contact_name=dec(cid, recorded.contact_name),
            provider_message_id=recorded.provider_message_id,
            subject=dec(cid, recorded.subject, at=at),
            text=dec(cid, recorded.text, at=at),
            thread_ref=recorded.thread_ref,
            attachments=[
                ExportAttachment(
                    name=dec(cid, a["name"], at=at),
                    content_type=a["content_type"],
                    size=a["size"],
                    url=dec(cid, a["url"], at=at),
                )
                for a in recorded.attachments
            ],
            metadata=self._cipher.decrypt_json(cid, recorded.metadata, at=at) or {},
            delivery_status=status,
            delivery=delivery,
        )

    # -- scheduled messages ------------------------------------------------------------------

    def _scheduled_ids(self) -> Iterator[UUID]:
        """The group's scheduled messages (the timeline's ``scheduled`` items, which sit at
        their due time), by due time, a page at a time."""
        t = timeline_items.c
        after: tuple[datetime, UUID] | None = None
        while True:
            query = (
                select(t.occurred_at, t.item_id)
                .where(t.customer_id.in_(self.customer_ids), t.kind == "scheduled")
                .order_by(t.occurred_at, t.item_id)
                .limit(SCHEDULED_PAGE)
            )
            if after is not None:
                query = query.where(
                    tuple_(t.occurred_at, t.item_id)
                    > tuple_(literal(after[0], DateTime(timezone=True)), literal(after[1], Uuid))
                )
            with self._runtime.read() as conn:
                page = [(at, item_id) for at, item_id in conn.execute(query)]
            yield from (item_id for _, item_id in page)
            if len(page) < SCHEDULED_PAGE:
                return
            after = page[-1]

    def _scheduled(self, ids: list[UUID]) -> list[ExportScheduledMessage]:
        """These scheduled messages as the store has them now, their events read in one
        query (ids that are no occurrence are left out)."""
        by_id: dict[UUID, list[Any]] = {}
        to_event = self._app.mapper.to_domain_event
        for stored in self._reader.select_events_after(dict.fromkeys(ids, 0)):
            oid = stored.originator_id
            by_id.setdefault(oid if isinstance(oid, UUID) else UUID(oid), []).append(
                to_event(stored)
            )
        found = []
        for oid in ids:
            item = self._scheduled_message(by_id.get(oid, []))
            if item is not None:
                found.append(item)
        return found

    def _scheduled_message(self, events: list[Any]) -> ExportScheduledMessage | None:
        """The occurrence these events make (folded as the store does), or None."""
        if not events or _event_name(events[0]) != "Occurrence.Scheduled":
            return None
        occurrence: Any = None
        for e in events:
            occurrence = e.mutate(occurrence)
        if not isinstance(occurrence, Occurrence):
            return None
        scheduled = events[0]  # who scheduled it is on its first event only
        return ExportScheduledMessage.model_validate(
            self._app.schedules.describe(occurrence)
            | {"scheduled_at": scheduled.timestamp, "scheduled_by": scheduled.actor}
        )

    # -- the access log --------------------------------------------------------------------

    def _access_entries(self) -> Iterator[ExportAccessEntry]:
        """The access log's entries about the group, oldest first (what this process has
        pending written first)."""
        access_log = self._runtime.access_log
        try:
            access_log.flush()
        except Exception as exc:  # the log is readable without what is still pending
            log.warning("export: pending access log entries not written: %s", type(exc).__name__)
        for entry in access_log.iter_entries(self.customer_ids):
            yield ExportAccessEntry.model_validate(entry, from_attributes=True)


def _delivery(name: str, e: Any) -> ExportDeliveryStep:
    details = {
        f.name: to_jsonable_python(getattr(e, f.name))
        for f in dataclasses.fields(e)
        if f.name not in _SHOWN
    }
    return ExportDeliveryStep(
        event=name,
        at=e.timestamp,
        occurred_at=getattr(e, "occurred_at", None),
        status=getattr(e, "status", None),
        error_code=getattr(e, "error_code", None),
        error_message=getattr(e, "error_message", None),
        provider_message_id=getattr(e, "provider_message_id", None),
        attempt=getattr(e, "attempt", None),
        held_until=getattr(e, "until", None),
        held=getattr(e, "held", None),
        reason=getattr(e, "reason", None),
        author=getattr(e, "author", None),
        urgent=getattr(e, "urgent", None),
        details=details,
    )


def _pages(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def prepare_export(
    runtime: Runtime, customer_id: UUID, now: Callable[[], datetime] | None = None
) -> CustomerExport:
    """The export of ``customer_id``'s whole group (its root first); NotFound for an id that
    is no customer, CustomerErased for an erased one, raised before anything is written."""
    events = list(runtime.store.app.events.get(customer_id, limit=1))
    if not events or _event_name(events[0]) != "Customer.Registered":
        raise NotFound(f"no customer {customer_id}", customer_id=str(customer_id))
    if runtime.store.cipher.is_erased(customer_id):
        raise CustomerErased("this customer was erased", customer_id=str(customer_id))
    with runtime.read() as conn:
        group = runtime.views.directory.group(conn, customer_id)
    if customer_id not in group:  # the views have not seen it yet
        group = [customer_id]
    return CustomerExport(runtime, group, (now or (lambda: datetime.now(UTC)))())


__all__ = ["CustomerExport", "ExportStats", "prepare_export"]
