"""The hub application: records interactions and runs agent commands against the event store.

Every command reads the aggregates it needs, changes them through their ``@event`` methods and
saves all new events in ONE store transaction. Uniqueness is the store's job: when a concurrent
writer got there first (same address claimed, same message recorded, same conversation version)
the transaction fails as a whole and the command is re-run on fresh state.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    PersistenceError,
    Recording,
    StoredEvent,
    Transcoder,
)

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import CustomerErased, InvalidCommand, NotFound, StoreUnavailable
from hub.domain.identity import IdentityCommands
from hub.domain.ids import address_id, message_id, uuid7
from hub.domain.model import (
    DELIVERY_RANK,
    AddressClaim,
    Conversation,
    Customer,
    Message,
    ProviderRef,
)
from hub.domain.outbound import OutboundCommands
from hub.events import InboundInteraction

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

CONVERSATION_STATUSES = ("open", "pending", "resolved")
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Recorded:
    """Outcome of recording one interaction."""

    message_id: UUID
    customer_id: UUID
    conversation_id: UUID
    duplicate: bool


class BulkReader(Protocol):
    """What the hub needs of its recorder beyond eventsourcing's (``hub.store.recorders``)."""

    def select_events_after(self, versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        """Stored events of many aggregates newer than the given versions, in version order."""


class AggregateCache:
    """Committed aggregates by id, least recently used evicted first.

    Never trusted blindly: a unit of work asks the store for events newer than the cached
    version, so writes by other processes are seen.

    Aggregates in it are changed in place by the command that loads them; commands run one
    at a time, and a command that fails evicts everything it touched.
    """

    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            found = self._items.get(aggregate_id)
            if found is not None:
                self._items.move_to_end(aggregate_id)
            return found

    def put(self, aggregates: Iterable[Aggregate]) -> None:
        with self._lock:
            for aggregate in aggregates:
                self._items[aggregate.id] = aggregate
                self._items.move_to_end(aggregate.id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def evict(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in ids:
                self._items.pop(aggregate_id, None)


class _UnitOfWork:
    """Aggregates read or created by one command, so a batch sees its own changes.

    Reads go to the store in bulk (:meth:`load`), starting from cached copies when there are.
    """

    def __init__(self, app: HubApplication) -> None:
        self._app = app
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self.events: list[Any] = []
        self.new_keys: dict[UUID, bytes] = {}  # data keys of customers this command creates

    def load(self, ids: Iterable[UUID | None]) -> None:
        """Bring these aggregates up to date with the store, in one query."""
        cache = self._app.cache
        base: dict[UUID, Aggregate | None] = {}
        for aggregate_id in ids:
            if aggregate_id is not None and aggregate_id not in self._aggregates:
                base[aggregate_id] = cache.get(aggregate_id)
        if not base:
            return
        versions = {i: (a.version if a is not None else 0) for i, a in base.items()}
        recorder: BulkReader = self._app.recorder  # type: ignore[assignment]
        stored = recorder.select_events_after(versions)
        # No copy: a failed command evicts everything it touched (see HubApplication._run).
        current = dict(base)
        to_domain_event = self._app.mapper.to_domain_event
        for record in stored:
            event = to_domain_event(record)
            oid = UUID(str(record.originator_id))
            current[oid] = event.mutate(current[oid])  # type: ignore[attr-defined]
        self._aggregates.update(current)

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._aggregates:
            self.load([aggregate_id])
        found = self._aggregates[aggregate_id]
        if found is not None and not isinstance(found, cls):
            return None
        return found

    def peek(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        """An aggregate already loaded, without going to the store."""
        found = self._aggregates.get(aggregate_id) if aggregate_id is not None else None
        return found if isinstance(found, cls) else None

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def collect(self, *touched: Aggregate | None) -> None:
        """Take the new events of ``touched``, in the order given (cause before effect)."""
        for aggregate in touched:
            if aggregate is not None:
                self.events.extend(aggregate.collect_events())

    def cacheable(self) -> list[Aggregate]:
        return [
            a
            for a in self._aggregates.values()
            if isinstance(a, Customer | AddressClaim | Conversation)
        ]

    def ids(self) -> list[UUID]:
        return list(self._aggregates)


class HubApplication(Application[UUID]):
    """Commands of the hub. Construct it through ``hub.store.open_application``."""

    name = "InteractionHub"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        cipher: PersonalDataCipher,
        pepper: bytes,
        conversation_window: timedelta,
        transcoder: Transcoder | None = None,
        cache_size: int = 100_000,
    ) -> None:
        self._transcoder = transcoder  # read by construct_transcoder() during __init__
        super().__init__(env)
        self.cache = AggregateCache(cache_size)
        self._command_lock = threading.Lock()
        self.cipher = cipher
        # Keyed hashing per address costs more than a dict lookup; addresses recur.
        self._address_ids = lru_cache(maxsize=200_000)(partial(address_id, pepper=pepper))
        self._window = conversation_window
        self._listeners: list[Callable[[int], None]] = []
        self.outbound = OutboundCommands(self)
        self.identity = IdentityCommands(self)

    # -- notification of followers ---------------------------------------------------------

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(max_position)`` after every successful save in this process."""
        self._listeners.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings and self._listeners:
            top = max(r.notification.id for r in recordings)
            for listener in self._listeners:
                listener(top)

    def _save_events(self, events: list[Any]) -> None:
        """``Application.save`` for events already collected in causal order (it would
        re-check each against a runtime protocol, a cost that showed in profiles)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(events)
        self._notify(self._record(processing_event))

    def address_id(self, address: str) -> UUID:
        return self._address_ids(address)

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        try:
            yield
        except (IntegrityError, DataError):
            raise  # a conflict is retried; data the database refuses is no outage
        except PersistenceError as exc:
            log.warning("event store failure: %s", exc)
            raise StoreUnavailable("the event store is unavailable, retry later") from exc

    def _run(self, command: Callable[[_UnitOfWork], Any]) -> Any:
        """Run a command in a unit of work and save its events in one transaction.

        Commands of one process run one at a time (the store serialises writers anyway);
        when another process won a race, the command runs again on fresh state.
        """
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            uow = _UnitOfWork(self)
            try:
                with self._command_lock, self._store_errors():
                    result = command(uow)
                    if uow.events:
                        self._save_events(uow.events)
                    self.cache.put(uow.cacheable())
                    return result
            except IntegrityError:
                self.cache.evict(uow.ids())
                # The customers this attempt would have created do not exist: drop their keys.
                self.cipher.discard_keys(list(uow.new_keys))
                if attempt == _MAX_ATTEMPTS:
                    raise StoreUnavailable("too much contention, retry later") from None
                log.debug("write conflict, re-running command (attempt %d)", attempt)
            except BaseException:
                self.cache.evict(uow.ids())
                raise
        raise AssertionError("unreachable")

    # -- interactions ----------------------------------------------------------------------

    def record_interactions(self, items: Sequence[InboundInteraction]) -> list[Recorded]:
        """Record a batch of interactions in one store transaction; replays come back as
        duplicates with the ids first given."""
        if not items:
            return []
        result: list[Recorded] = self._run(lambda uow: self._record_batch(uow, items))
        return result

    def recorded_before(self, items: Sequence[InboundInteraction]) -> list[Recorded | None]:
        """For each item, the message the store already holds for it, as a duplicate with its
        first ids, or None (one read; for an ingest that hands new items to the processor)."""
        uow = _UnitOfWork(self)
        ids = [message_id(i.channel, i.provider_message_id) for i in items]
        with self._store_errors():
            uow.load(ids)
        found = (uow.peek(Message, mid) for mid in ids)
        return [
            None if m is None else Recorded(m.id, m.customer_id, m.conversation_id, duplicate=True)
            for m in found
        ]

    def _record_batch(
        self, uow: _UnitOfWork, items: Sequence[InboundInteraction]
    ) -> list[Recorded]:
        ids = [
            (message_id(i.channel, i.provider_message_id), self.address_id(i.address))
            for i in items
        ]
        self._prefetch(uow, items, ids)
        results = [
            self._record_one(uow, item, mid, aid)
            for item, (mid, aid) in zip(items, ids, strict=True)
        ]
        self.cipher.save_keys(uow.new_keys)
        return results

    def _prefetch(
        self,
        uow: _UnitOfWork,
        items: Sequence[InboundInteraction],
        ids: list[tuple[UUID, UUID]],
    ) -> None:
        """Load what threading the batch will need in a few bulk reads, not one per item."""
        uow.load([mid for mid, _ in ids] + [aid for _, aid in ids])
        wanted: list[UUID | None] = []
        for item, (_, aid) in zip(items, ids, strict=True):
            claim = uow.peek(AddressClaim, aid)
            if claim is None:
                continue
            wanted.append(claim.conversations.get(item.channel))
            if item.contact_name:
                wanted.append(claim.customer_id)
            refs = [item.thread_ref, *item.references] if item.thread_ref else item.references
            wanted += [message_id(item.channel, ref) for ref in refs]
        uow.load(wanted)
        uow.load(m.conversation_id for m in (uow.peek(Message, i) for i in wanted) if m)

    def _record_one(
        self,
        uow: _UnitOfWork,
        item: InboundInteraction,
        mid: UUID,
        aid: UUID,
    ) -> Recorded:
        existing = self.message_by_ref(uow, item.channel, item.provider_message_id)
        if existing is not None:  # a replay, or the echo of a message the hub sent
            return Recorded(
                existing.id, existing.customer_id, existing.conversation_id, duplicate=True
            )

        enc = self.cipher.encrypt
        claim = uow.get(AddressClaim, aid)
        customer: Customer | None = None
        if claim is None or self.cipher.is_erased(claim.customer_id):
            # First contact, or the address's owner was erased: a new customer either way.
            customer_id = uuid7()
            uow.new_keys[customer_id] = self.cipher.new_key(customer_id)
            customer = Customer(
                customer_id=customer_id,
                display_name=enc(customer_id, item.contact_name),
                address_id=aid,
                address=enc(customer_id, item.address),
                address_kind=item.address.partition(":")[0],
                first_seen_at=item.occurred_at,
                correlation_id=mid,
            )
            uow.add(customer)
            conversation = self._open_conversation(uow, customer_id, aid, item, mid)
            if claim is None:
                claim = AddressClaim(
                    address_id=aid,
                    customer_id=customer_id,
                    conversations={item.channel: conversation.id},
                    correlation_id=mid,
                )
                uow.add(claim)
            else:
                claim.reassign(
                    customer_id=customer_id,
                    conversations={item.channel: conversation.id},
                    correlation_id=mid,
                )
        else:
            customer_id = claim.customer_id
            if item.contact_name:
                customer = self._learn_name(uow, customer_id, item.contact_name, mid)
            conversation = self._thread(uow, claim, item, mid)

        message = Message(
            channel=item.channel,
            provider_message_id=item.provider_message_id,
            direction=item.direction,
            customer_id=customer_id,
            conversation_id=conversation.id,
            address=enc(customer_id, item.address),
            occurred_at=item.occurred_at,
            text=enc(customer_id, item.text),
            subject=enc(customer_id, item.subject),
            thread_ref=item.thread_ref,
            contact_name=enc(customer_id, item.contact_name),
            attachments=[
                {
                    "name": enc(customer_id, a.name),
                    "content_type": a.content_type,
                    "size": a.size,
                    "url": enc(customer_id, a.url),
                }
                for a in item.attachments
            ],
            metadata=self.cipher.encrypt_json(customer_id, item.metadata),
            correlation_id=mid,
        )
        uow.add(message)
        if item.consent is not None:
            customer = customer or self._get(uow, Customer, customer_id, "customer")
            customer.change_consent(
                channel=item.channel,
                purposes=list(item.consent.purposes),
                granted=item.consent.granted,
                reason=item.consent.reason,
                actor=None,
                message_id=mid,
                occurred_at=item.occurred_at,
                correlation_id=mid,
            )
        uow.collect(customer, conversation, claim, message)
        return Recorded(mid, customer_id, conversation.id, duplicate=False)

    def _learn_name(
        self, uow: _UnitOfWork, customer_id: UUID, name: str, mid: UUID
    ) -> Customer | None:
        customer = uow.get(Customer, customer_id)
        if customer is not None and customer.display_name is None:
            customer.update_profile(
                display_name=self.cipher.encrypt(customer_id, name), correlation_id=mid
            )
        return customer

    def _open_conversation(
        self,
        uow: _UnitOfWork,
        customer_id: UUID,
        aid: UUID,
        item: InboundInteraction,
        mid: UUID,
    ) -> Conversation:
        conversation = Conversation(
            customer_id=customer_id,
            channel=item.channel,
            address_id=aid,
            address=self.cipher.encrypt(customer_id, item.address),
            subject=self.cipher.encrypt(customer_id, item.subject),
            first_message_id=mid,
            opened_at=item.occurred_at,
            correlation_id=mid,
            first_direction=item.direction,
            first_provider_message_id=item.provider_message_id,
        )
        uow.add(conversation)
        return conversation

    def _thread(
        self, uow: _UnitOfWork, claim: AddressClaim, item: InboundInteraction, mid: UUID
    ) -> Conversation:
        """The conversation a message from a known address belongs to, opening one if none."""
        conversation = self._find_thread(uow, claim, item)
        if conversation is None:
            conversation = self._open_conversation(uow, claim.customer_id, claim.id, item, mid)
            claim.start_conversation(
                channel=item.channel, conversation_id=conversation.id, correlation_id=mid
            )
            return conversation
        conversation.add_message(
            message_id=mid,
            direction=item.direction,
            occurred_at=item.occurred_at,
            correlation_id=mid,
            provider_message_id=item.provider_message_id,
        )
        if item.direction == "inbound" and conversation.status != "open":
            conversation.change_status(
                status="open",
                previous_status=conversation.status,
                actor=None,
                reason="customer_replied",
                customer_id=conversation.customer_id,
                correlation_id=mid,
            )
        return conversation

    def _find_thread(
        self, uow: _UnitOfWork, claim: AddressClaim, item: InboundInteraction
    ) -> Conversation | None:
        if item.channel == "email":
            # Email threads by its own references, however old; no reference, new thread.
            refs = [item.thread_ref] if item.thread_ref else []
            refs += reversed(item.references)
            for ref in refs:
                earlier = self.message_by_ref(uow, item.channel, ref)
                if earlier is not None and earlier.customer_id == claim.customer_id:
                    return uow.get(Conversation, earlier.conversation_id)
            return None
        if item.thread_ref:
            earlier = self.message_by_ref(uow, item.channel, item.thread_ref)
            if earlier is not None and earlier.customer_id == claim.customer_id:
                return uow.get(Conversation, earlier.conversation_id)
        current_id = claim.conversations.get(item.channel)
        if current_id is None:
            return None
        current = uow.get(Conversation, current_id)
        if current is None or _idle_too_long(
            current.last_activity_at, item.occurred_at, self._window
        ):
            return None
        return current

    # -- agent and provider commands -------------------------------------------------------

    def _get(self, uow: _UnitOfWork, cls: type[A], aggregate_id: UUID, what: str) -> A:
        found = uow.get(cls, aggregate_id)
        if found is None:
            raise NotFound(f"no {what} with id {aggregate_id}", id=str(aggregate_id))
        return found

    def add_note(self, conversation_id: UUID, text: str, author: str | None) -> UUID:
        note_id = uuid7()

        def command(uow: _UnitOfWork) -> UUID:
            conversation = self._get(uow, Conversation, conversation_id, "conversation")
            if self.cipher.is_erased(conversation.customer_id):
                raise CustomerErased(
                    "this conversation's customer was erased",
                    customer_id=str(conversation.customer_id),
                )
            conversation.add_note(
                note_id=note_id,
                text=self.cipher.encrypt(conversation.customer_id, text),
                author=author,
                customer_id=conversation.customer_id,
                correlation_id=note_id,
            )
            uow.collect(conversation)
            return note_id

        result: UUID = self._run(command)
        return result

    def change_status(self, conversation_id: UUID, status: str, actor: str | None) -> str:
        """Move a conversation to ``status``; the same status again changes nothing."""
        if status not in CONVERSATION_STATUSES:
            raise InvalidCommand(
                f"status must be one of {', '.join(CONVERSATION_STATUSES)}", status=status
            )

        def command(uow: _UnitOfWork) -> str:
            conversation = self._get(uow, Conversation, conversation_id, "conversation")
            if conversation.status != status:
                conversation.change_status(
                    status=status,
                    previous_status=conversation.status,
                    actor=actor,
                    reason="agent",
                    customer_id=conversation.customer_id,
                    correlation_id=uuid7(),
                )
                uow.collect(conversation)
            return status

        result: str = self._run(command)
        return result

    def assign(self, conversation_id: UUID, assignee: str | None, actor: str | None) -> None:
        def command(uow: _UnitOfWork) -> None:
            conversation = self._get(uow, Conversation, conversation_id, "conversation")
            if conversation.assignee != assignee:
                conversation.assign(
                    assignee=assignee,
                    actor=actor,
                    customer_id=conversation.customer_id,
                    correlation_id=uuid7(),
                )
                uow.collect(conversation)

        self._run(command)

    def set_tags(self, customer_id: UUID, tags: Sequence[str], actor: str | None) -> list[str]:
        """Make the customer's tags exactly ``tags`` (trimmed, deduplicated, sorted); the same
        set again records nothing."""
        wanted = sorted({t.strip() for t in tags if t.strip()})

        def command(uow: _UnitOfWork) -> list[str]:
            customer = self._get(uow, Customer, customer_id, "customer")
            if self.cipher.is_erased(customer_id):
                raise CustomerErased("this customer was erased", customer_id=str(customer_id))
            current = sorted(self.cipher.decrypt(customer_id, t) or "" for t in customer.tags)
            if current != wanted:

                def enc(tag: str) -> str:
                    value = self.cipher.encrypt(customer_id, tag)
                    assert value is not None  # a str in, a str out
                    return value

                customer.change_tags(
                    tags=[enc(t) for t in wanted],
                    added=[enc(t) for t in wanted if t not in current],
                    removed=[enc(t) for t in current if t not in wanted],
                    actor=actor,
                    correlation_id=uuid7(),
                )
                uow.collect(customer)
            return wanted

        result: list[str] = self._run(command)
        return result

    def update_delivery(
        self,
        message_id_: UUID,
        status: str,
        occurred_at: datetime,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> str:
        """Apply a delivery status report; stale or repeated reports change nothing.
        Returns the message's delivery status afterwards."""
        if status not in DELIVERY_RANK:
            raise InvalidCommand(f"unknown delivery status {status!r}", status=status)

        def command(uow: _UnitOfWork) -> str:
            message = self._get(uow, Message, message_id_, "message")
            if message.report(status, occurred_at, error_code, error_message):
                uow.collect(message)
            current: str = message.delivery_status
            return current

        result: str = self._run(command)
        return result

    def message_by_ref(
        self, uow: _UnitOfWork, channel: str, provider_message_id: str
    ) -> Message | None:
        """The message a provider id names: one received, or one the hub sent (through its
        :class:`ProviderRef`)."""
        mid = message_id(channel, provider_message_id)
        found = uow.get(Message, mid)
        if found is None:
            ref = uow.peek(ProviderRef, mid)
            if ref is not None:
                found = uow.get(Message, ref.message_id)
        return found

    def conversation(self, conversation_id: UUID) -> Conversation:
        return self.read(lambda uow: self._get(uow, Conversation, conversation_id, "conversation"))

    def read(self, query: Callable[[_UnitOfWork], T]) -> T:
        """Run ``query`` on current aggregates, saving nothing (what the console shows of
        rules the views do not hold: consent, service windows)."""
        with self._command_lock, self._store_errors():
            uow = _UnitOfWork(self)
            try:
                result = query(uow)
            except BaseException:
                self.cache.evict(uow.ids())
                raise
            self.cache.put(uow.cacheable())  # brought up to date, nothing changed
            return result

    def construct_transcoder(self) -> Transcoder:
        return self._transcoder or super().construct_transcoder()


def _idle_too_long(last_activity: datetime, occurred_at: datetime, window: timedelta) -> bool:
    return occurred_at - last_activity > window
