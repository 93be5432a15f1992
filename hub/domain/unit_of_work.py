"""How a command reads and writes: a unit of work over the aggregates it touches, and the
runner that saves each unit's new events in ONE store transaction.

Uniqueness is the store's job: when a concurrent writer got there first (same address
claimed, same message recorded, same conversation version) the transaction fails as a whole
and the runner re-runs the command on fresh state. Aggregates stay in an in-process cache and
are fast-forwarded from the store on every load, so another process's writes are always seen.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    Mapper,
    PersistenceError,
    StoredEvent,
)

from hub.domain.errors import NotFound, StoreUnavailable
from hub.domain.ids import message_id
from hub.domain.model import AddressClaim, Conversation, Customer, Message, ProviderRef

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

#: How often a command that lost a race to another process is run again.
MAX_ATTEMPTS = 5


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


class UnitOfWork:
    """Aggregates read or created by one command, so a batch sees its own changes.

    Reads go to the store in bulk (:meth:`load`), starting from cached copies when there are.
    """

    def __init__(self, cache: AggregateCache, reader: BulkReader, mapper: Mapper[UUID]) -> None:
        self._cache = cache
        self._reader = reader
        self._mapper = mapper
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self.events: list[Any] = []
        self.new_keys: dict[UUID, bytes] = {}  # data keys of customers this command creates

    def load(self, ids: Iterable[UUID | None]) -> None:
        """Bring these aggregates up to date with the store, in one query."""
        base: dict[UUID, Aggregate | None] = {}
        for aggregate_id in ids:
            if aggregate_id is not None and aggregate_id not in self._aggregates:
                base[aggregate_id] = self._cache.get(aggregate_id)
        if not base:
            return
        versions = {i: (a.version if a is not None else 0) for i, a in base.items()}
        stored = self._reader.select_events_after(versions)
        # No copy: a failed command evicts everything it touched (see CommandRunner.run).
        current = dict(base)
        to_domain_event = self._mapper.to_domain_event
        for record in stored:
            event = to_domain_event(record)
            oid = UUID(str(record.originator_id))
            current[oid] = event.mutate(current[oid])  # type: ignore[attr-defined]
        self._aggregates.update(current)

    def load_with(
        self, cls: type[A], aggregate_id: UUID, related: Callable[[A], Iterable[UUID | None]]
    ) -> None:
        """Load ``aggregate_id`` and the ids ``related`` names on it (a conversation's
        customer, a message's conversation): in one query when the cache holds a copy to
        read the ids from, else in two, one after the other. Nothing is trusted from the
        copy but which ids to read: the ids the fresh aggregate names are the ones loaded."""
        cached = self._cache.get(aggregate_id)
        self.load([aggregate_id, *(related(cached) if isinstance(cached, cls) else ())])
        fresh = self._aggregates[aggregate_id]
        if isinstance(fresh, cls):
            self.load(related(fresh))  # nothing left to read when the copy named the same

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._aggregates:
            self.load([aggregate_id])
        found = self._aggregates[aggregate_id]
        if found is not None and not isinstance(found, cls):
            return None
        return found

    def require(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        """:meth:`get`, or :class:`NotFound` naming ``what`` was looked for."""
        found = self.get(cls, aggregate_id)
        if found is None:
            raise NotFound(f"no {what} with id {aggregate_id}", id=str(aggregate_id))
        return found

    def peek(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        """An aggregate already loaded, without going to the store."""
        found = self._aggregates.get(aggregate_id) if aggregate_id is not None else None
        return found if isinstance(found, cls) else None

    def message_by_ref(self, channel: str, provider_message_id: str) -> Message | None:
        """The message a provider id names: one received, or one the hub sent (through its
        :class:`ProviderRef`)."""
        mid = message_id(channel, provider_message_id)
        found = self.get(Message, mid)
        if found is None:
            ref = self.peek(ProviderRef, mid)
            if ref is not None:
                found = self.get(Message, ref.message_id)
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def collect(self, *touched: Aggregate | None) -> None:
        """Take the new events of ``touched``, in the order given (cause before effect)."""
        for aggregate in touched:
            if aggregate is not None:
                self.events.extend(aggregate.collect_events())

    def cacheable(self) -> list[Aggregate]:
        """What is worth keeping for the next command: customers, their address claims and
        conversations (read again by every interaction), and the hub's own messages while the
        dispatcher still has work on them (read again within milliseconds). Received
        messages are rarely read again, and would push those out."""
        return [
            a
            for a in self._aggregates.values()
            if isinstance(a, Customer | AddressClaim | Conversation)
            or (isinstance(a, Message) and not a.settled)
        ]

    def ids(self) -> list[UUID]:
        return list(self._aggregates)


class CommandRunner:
    """Runs commands and queries in units of work, one at a time in this process.

    ``save`` stores a command's events in one transaction (they are collected in causal
    order); ``discard_keys`` forgets the data keys of customers a failed attempt would have
    created.
    """

    def __init__(
        self,
        *,
        cache: AggregateCache,
        reader: BulkReader,
        mapper: Mapper[UUID],
        save: Callable[[list[Any]], None],
        discard_keys: Callable[[list[UUID]], None],
    ) -> None:
        self._cache = cache
        self._reader = reader
        self._mapper = mapper
        self._save = save
        self._discard_keys = discard_keys
        self._lock = threading.Lock()
        #: Commands waiting for the lock, and their callers' futures (see :meth:`run`).
        self._waiting: list[tuple[Callable[[UnitOfWork], Any], Future[Any]]] = []
        self._waiting_lock = threading.Lock()

    def unit(self) -> UnitOfWork:
        """A fresh unit of work (for a read outside :meth:`run` and :meth:`read`)."""
        return UnitOfWork(self._cache, self._reader, self._mapper)

    @contextmanager
    def store_errors(self) -> Iterator[None]:
        """Turn a store failure into :class:`StoreUnavailable`; conflicts and data the
        database refuses pass through as they are."""
        try:
            yield
        except (IntegrityError, DataError):
            raise  # a conflict is retried; data the database refuses is no outage
        except PersistenceError as exc:
            log.warning("event store failure: %s", exc)
            raise StoreUnavailable("the event store is unavailable, retry later") from exc

    def run(self, command: Callable[[UnitOfWork], T]) -> T:
        """Run a command in a unit of work and save its events in one transaction.

        Commands of one process run one at a time (the store serialises writers anyway, and
        it lets the cache hand out its own objects); when another process won a race, the
        command runs again on fresh state.

        Commands that arrive while another runs wait together, and the next thread to run
        takes them all as one batch (:meth:`run_many`): concurrent requests (agents' replies,
        the dispatcher's bookkeeping) share a transaction instead of queueing for one each.
        Each caller still gets its own command's result, or its own error.
        """
        mine: Future[Any] = Future()
        with self._waiting_lock:
            self._waiting.append((command, mine))
        with self._lock:
            if not mine.done():  # else an earlier thread ran it with its own
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                self._run_waiting(batch)
        result: T = mine.result()
        return result

    def _run_waiting(self, batch: list[tuple[Callable[[UnitOfWork], Any], Future[Any]]]) -> None:
        """Run ``batch`` (the lock held) and settle each waiter's future."""
        try:
            outcomes = self._run_group([command for command, _ in batch])
        except BaseException as exc:  # the store is down, or the process is stopping
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _run_one(self, command: Callable[[UnitOfWork], T]) -> T:
        """One command in one transaction, run again when another process won a race (the
        lock held)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            uow = self.unit()
            try:
                with self.store_errors():
                    result = command(uow)
                    if uow.events:
                        self._save(uow.events)
                    self._cache.put(uow.cacheable())
                    return result
            except IntegrityError:
                self._cache.evict(uow.ids())
                # The customers this attempt would have created do not exist: drop their keys.
                self._discard_keys(list(uow.new_keys))
                if attempt == MAX_ATTEMPTS:
                    raise StoreUnavailable("too much contention, retry later") from None
                log.debug("write conflict, re-running command (attempt %d)", attempt)
            except BaseException:
                self._cache.evict(uow.ids())
                raise
        raise AssertionError("unreachable")

    def run_many(self, commands: Sequence[Callable[[UnitOfWork], T]]) -> list[T | Exception]:
        """Run ``commands`` one after another, each in a unit of work of its own, and save
        all their events in ONE transaction (the dispatcher's bookkeeping for sends that
        went out together): a transaction's fixed cost is shared, and a later command sees
        what an earlier one changed. Each command's result, or the exception it raised.

        When any command raises, or the transaction fails, nothing of the batch is saved
        and each command runs again alone: one command's failure reaches its own result
        only, and a conflict between two of them is resolved as for any other."""
        with self._lock:
            return self._run_group(commands)

    def _run_group(self, commands: Sequence[Callable[[UnitOfWork], T]]) -> list[T | Exception]:
        if len(commands) <= 1:
            return [self._outcome(command) for command in commands]
        units: list[UnitOfWork] = []
        try:
            with self.store_errors():
                results: list[T | Exception] = []
                for command in commands:
                    uow = self.unit()
                    units.append(uow)
                    results.append(command(uow))
                    # The next command starts from what this one changed (saved below, or
                    # evicted with the rest).
                    self._cache.put(uow.cacheable())
                events = [event for uow in units for event in uow.events]
                if events:
                    self._save(events)
                return results
        except StoreUnavailable:
            self._forget(units)
            raise  # the store is down: alone, each would fail the same way
        except Exception as exc:
            self._forget(units)
            log.debug("a batch of %d commands failed (%s); each runs alone", len(commands), exc)
        except BaseException:
            self._forget(units)
            raise
        return [self._outcome(command) for command in commands]

    def _outcome(self, command: Callable[[UnitOfWork], T]) -> T | Exception:
        try:
            return self._run_one(command)
        except StoreUnavailable:
            raise
        except Exception as exc:
            return exc

    def _forget(self, units: Sequence[UnitOfWork]) -> None:
        """A batch that saved nothing: what its commands touched is read again, and the
        customers they would have created do not exist."""
        for uow in units:
            self._cache.evict(uow.ids())
            self._discard_keys(list(uow.new_keys))

    def read(self, query: Callable[[UnitOfWork], T]) -> T:
        """Run ``query`` on current aggregates, saving nothing."""
        with self._lock, self.store_errors():
            uow = self.unit()
            try:
                result = query(uow)
            except BaseException:
                self._cache.evict(uow.ids())
                raise
            self._cache.put(uow.cacheable())  # brought up to date, nothing changed
            return result
