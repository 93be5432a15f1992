"""The hub application: the one object that runs the hub's commands against the event store.

It wires the collaborators that hold the rules - :class:`InboundCommands` (recording
interactions), :class:`IdentityCommands` (links, merges), :class:`OutboundCommands` (replies,
consent), :class:`DispatchCommands` (the dispatcher's decisions and records),
:class:`ErasureCommands` (erasure) - to one :class:`CommandRunner`, which
runs each command in a unit of work and saves its events in ONE store transaction, and holds
the agents' conversation and profile commands itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Recording, Transcoder

from hub import memory
from hub.domain.activities import ActivityCommands
from hub.domain.automations import AutomationCommands
from hub.domain.crypto import PersonalDataCipher
from hub.domain.dispatching import DispatchCommands
from hub.domain.duplicates import DuplicateCommands
from hub.domain.erasure import ErasureCommands
from hub.domain.errors import CustomerErased, InvalidCommand
from hub.domain.identity import IdentityCommands
from hub.domain.ids import address_id, uuid7
from hub.domain.inbound import InboundCommands, Recorded
from hub.domain.model import DELIVERY_RANK, Conversation, Customer, Message
from hub.domain.new_conversation import NewConversationCommands
from hub.domain.outbound import OutboundCommands
from hub.domain.profile import ProfileCommands
from hub.domain.scheduling import ScheduleCommands
from hub.domain.segments import SegmentCommands
from hub.domain.service_levels import ServiceLevelCommands
from hub.domain.surveys import SurveyCommands
from hub.domain.templates import TemplateCommands
from hub.domain.unit_of_work import AggregateCache, BulkReader, CommandRunner, UnitOfWork
from hub.events import InboundInteraction

__all__ = ["CONVERSATION_STATUSES", "HubApplication", "Recorded"]

T = TypeVar("T")

#: Aggregates between commands (customers, their addresses, conversations), least recently
#: used evicted first.
AGGREGATES = memory.Part("aggregates", share=0.30, entry_bytes=900)
#: Addresses' keyed hashes (the address in clear, its id).
ADDRESS_IDS = memory.Part("address ids", share=0.03, entry_bytes=260)

CONVERSATION_STATUSES = ("open", "pending", "resolved")


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
        cache_size: int | None = None,
    ) -> None:
        self._transcoder = transcoder  # read by construct_transcoder() during __init__
        super().__init__(env)
        self.cache = AggregateCache(AGGREGATES.entries if cache_size is None else cache_size)
        self.cipher = cipher
        # Keyed hashing per address costs more than a dict lookup; addresses recur.
        self._address_ids = memory.Lru(partial(address_id, pepper=pepper), ADDRESS_IDS)
        #: Who is told of each commit in this process, and of which topics (None: all).
        self._listeners: list[tuple[Callable[[int], None], frozenset[str] | None]] = []
        reader: BulkReader = self.recorder  # type: ignore[assignment]
        self.runner = CommandRunner(
            cache=self.cache,
            reader=reader,
            mapper=self.mapper,
            save=self._save_events,
            discard_keys=cipher.discard_keys,
        )
        self.inbound = InboundCommands(self.runner, cipher, self.address_id, conversation_window)
        self.outbound = OutboundCommands(self.runner, cipher)
        self.dispatch = DispatchCommands(self.runner, cipher)
        self.identity = IdentityCommands(self.runner, cipher, self.address_id)
        self.duplicates = DuplicateCommands(self.runner, cipher, self.identity)
        self.erasure = ErasureCommands(self.runner, cipher)
        self.profile = ProfileCommands(self.runner, cipher)
        self.segments = SegmentCommands(self.runner)
        self.automations = AutomationCommands(self.runner)
        self.templates = TemplateCommands(self.runner)
        self.service_levels = ServiceLevelCommands(self.runner)
        self.schedules = ScheduleCommands(self.runner, cipher, self.address_id)
        self.new_conversations = NewConversationCommands(self.runner, cipher, self.address_id)
        self.activities = ActivityCommands(self.runner, cipher, self.address_id)
        self.surveys = SurveyCommands(self.runner, cipher)

    # -- notification of followers ---------------------------------------------------------

    def add_listener(
        self, listener: Callable[[int], None], topics: Sequence[str] | None = None
    ) -> None:
        """Call ``listener(max_position)`` after every successful save in this process, or
        only after those that stored an event of one of ``topics``: a queue that reads a
        few topics of the log is not woken (a round, its reads, thread hops and the
        interpreter lock they take) by every interaction recorded."""
        self._listeners.append((listener, frozenset(topics) if topics is not None else None))

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings and self._listeners:
            top = max(r.notification.id for r in recordings)
            saved = {r.notification.topic for r in recordings}
            for listener, topics in self._listeners:
                if topics is None or not topics.isdisjoint(saved):
                    listener(top)

    def _save_events(self, events: list[Any]) -> None:
        """``Application.save`` for events already collected in causal order (it would
        re-check each against a runtime protocol, a cost that showed in profiles)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(events)
        self._notify(self._record(processing_event))

    def address_id(self, address: str) -> UUID:
        return self._address_ids(address)

    def forget_customers(self, customer_ids: Sequence[UUID]) -> None:
        """Drop what this process keeps in memory of erased customers: their cached keys
        and aggregates, and the address cache (keyed by addresses in clear; cleared whole)."""
        for customer_id in customer_ids:
            self.cipher.forget(customer_id)
        self.cache.evict(customer_ids)
        self._address_ids.cache_clear()

    # -- interactions ----------------------------------------------------------------------

    def record_interactions(self, items: Sequence[InboundInteraction]) -> list[Recorded]:
        """Record a batch of interactions in one store transaction; replays come back as
        duplicates with the ids first given (:class:`InboundCommands`)."""
        return self.inbound.record_interactions(items)

    def recorded_before(self, items: Sequence[InboundInteraction]) -> list[Recorded | None]:
        """For each item, the message the store already holds for it, as a duplicate with its
        first ids, or None (one read; for an ingest that hands new items to the processor)."""
        return self.inbound.recorded_before(items)

    # -- agent and provider commands -------------------------------------------------------

    def add_note(self, conversation_id: UUID, text: str, author: str | None) -> UUID:
        note_id = uuid7()

        def command(uow: UnitOfWork) -> UUID:
            conversation = uow.require(Conversation, conversation_id, "conversation")
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

        return self.runner.run(command)

    def change_status(self, conversation_id: UUID, status: str, actor: str | None) -> str:
        """Move a conversation to ``status``; the same status again changes nothing."""
        if status not in CONVERSATION_STATUSES:
            raise InvalidCommand(
                f"status must be one of {', '.join(CONVERSATION_STATUSES)}", status=status
            )

        def command(uow: UnitOfWork) -> str:
            conversation = uow.require(Conversation, conversation_id, "conversation")
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

        return self.runner.run(command)

    def assign(self, conversation_id: UUID, assignee: str | None, actor: str | None) -> None:
        def command(uow: UnitOfWork) -> None:
            conversation = uow.require(Conversation, conversation_id, "conversation")
            if conversation.assignee != assignee:
                conversation.assign(
                    assignee=assignee,
                    actor=actor,
                    customer_id=conversation.customer_id,
                    correlation_id=uuid7(),
                )
                uow.collect(conversation)

        self.runner.run(command)

    def set_tags(self, customer_id: UUID, tags: Sequence[str], actor: str | None) -> list[str]:
        """Make the customer's tags exactly ``tags`` (trimmed, deduplicated, sorted); the same
        set again records nothing."""
        wanted = sorted({t.strip() for t in tags if t.strip()})

        def command(uow: UnitOfWork) -> list[str]:
            customer = uow.require(Customer, customer_id, "customer")
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

        return self.runner.run(command)

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

        def command(uow: UnitOfWork) -> str:
            message = uow.require(Message, message_id_, "message")
            if message.report(status, occurred_at, error_code, error_message):
                uow.collect(message)
            current: str = message.delivery_status
            return current

        return self.runner.run(command)

    def conversation(self, conversation_id: UUID) -> Conversation:
        return self.read(lambda uow: uow.require(Conversation, conversation_id, "conversation"))

    def read(self, query: Callable[[UnitOfWork], T]) -> T:
        """Run ``query`` on current aggregates, saving nothing (what the console shows of
        rules the views do not hold: consent, service windows)."""
        return self.runner.read(query)

    def construct_transcoder(self) -> Transcoder:
        return self._transcoder or super().construct_transcoder()
