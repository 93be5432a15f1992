"""Recording interactions: dedupe, resolve the address to a customer, thread into a
conversation and apply the consent a message carries, for a whole batch in ONE transaction.

The batch loads what it needs in a few bulk reads (:meth:`InboundCommands._prefetch`), then
runs the rules item by item on the unit of work, so later items see earlier ones:
- a provider message is recorded once: the same (channel, provider id) again, or the echo of
  a message the hub sent, comes back as a duplicate with the ids first given;
- first contact from an address (or from one whose owner was erased) registers a customer,
  with where it came from when the interaction tells (``hub.domain.acquisition``);
- email threads by its own references, however old; other channels join the conversation
  the address has on that channel while it saw activity within the conversation window;
  a customer's message reopens a conversation that was not open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from hub.domain.acquisition import endpoint_sources, first_contact_source
from hub.domain.crypto import PersonalDataCipher
from hub.domain.ids import message_id, uuid7
from hub.domain.model import AddressClaim, Conversation, Customer, Message
from hub.domain.surveys import is_bare_score
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events import InboundInteraction


@dataclass(frozen=True, slots=True)
class Recorded:
    """Outcome of recording one message (an interaction, or an agent's reply)."""

    message_id: UUID
    customer_id: UUID
    conversation_id: UUID
    duplicate: bool


class InboundCommands:
    """The inbound half of the hub's commands (``HubApplication.inbound``)."""

    def __init__(
        self,
        runner: CommandRunner,
        cipher: PersonalDataCipher,
        address_id: Callable[[str], UUID],
        conversation_window: timedelta,
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._address_id = address_id
        self._window = conversation_window
        self._sources: dict[str, str] = {}

    def use_endpoint_sources(self, mapping: Mapping[str, str]) -> None:
        """Name the source of customers whose first contact was to one of these company
        endpoints (``HUB_ACQUISITION__ENDPOINTS``: endpoint -> source name)."""
        self._sources = endpoint_sources(mapping)

    def record_interactions(self, items: Sequence[InboundInteraction]) -> list[Recorded]:
        """Record a batch of interactions in one store transaction; replays come back as
        duplicates with the ids first given."""
        if not items:
            return []
        return self._runner.run(lambda uow: self._record_batch(uow, items))

    def recorded_before(self, items: Sequence[InboundInteraction]) -> list[Recorded | None]:
        """For each item, the message the store already holds for it, as a duplicate with its
        first ids, or None (one read; for an ingest that hands new items to the processor)."""
        uow = self._runner.unit()
        ids = [message_id(i.channel, i.provider_message_id) for i in items]
        with self._runner.store_errors():
            uow.load(ids)
        found = (uow.peek(Message, mid) for mid in ids)
        return [
            None if m is None else Recorded(m.id, m.customer_id, m.conversation_id, duplicate=True)
            for m in found
        ]

    def _record_batch(self, uow: UnitOfWork, items: Sequence[InboundInteraction]) -> list[Recorded]:
        ids = [
            (message_id(i.channel, i.provider_message_id), self._address_id(i.address))
            for i in items
        ]
        self._prefetch(uow, items, ids)
        results = [
            self._record_one(uow, item, mid, aid)
            for item, (mid, aid) in zip(items, ids, strict=True)
        ]
        self._cipher.save_keys(uow.new_keys)
        return results

    def _prefetch(
        self,
        uow: UnitOfWork,
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
        uow: UnitOfWork,
        item: InboundInteraction,
        mid: UUID,
        aid: UUID,
    ) -> Recorded:
        existing = uow.message_by_ref(item.channel, item.provider_message_id)
        if existing is not None:  # a replay, or the echo of a message the hub sent
            return Recorded(
                existing.id, existing.customer_id, existing.conversation_id, duplicate=True
            )

        enc = self._cipher.encrypt
        dated, at = self._cipher.encrypt_dated, item.occurred_at
        claim = uow.get(AddressClaim, aid)
        customer: Customer | None = None
        if claim is None or self._cipher.is_erased(claim.customer_id):
            # First contact, or the address's owner was erased: a new customer either way.
            customer_id = uuid7()
            uow.new_keys[customer_id] = self._cipher.new_key(customer_id)
            customer = Customer(
                customer_id=customer_id,
                display_name=enc(customer_id, item.contact_name),
                address_id=aid,
                address=enc(customer_id, item.address),
                address_kind=item.address.partition(":")[0],
                first_seen_at=item.occurred_at,
                correlation_id=mid,
                source=self._cipher.encrypt_json(
                    customer_id, first_contact_source(item, self._sources)
                ),
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
            # The body is dated: retention by age expires it with its day (docs/retention.md).
            text=dated(customer_id, item.text, at),
            subject=dated(customer_id, item.subject, at),
            thread_ref=item.thread_ref,
            contact_name=enc(customer_id, item.contact_name),
            attachments=[
                {
                    "name": dated(customer_id, a.name, at),
                    "content_type": a.content_type,
                    "size": a.size,
                    "url": dated(customer_id, a.url, at),
                }
                for a in item.attachments
            ],
            metadata=self._cipher.encrypt_json_dated(customer_id, item.metadata, at),
            correlation_id=mid,
        )
        uow.add(message)
        if item.consent is not None:
            customer = customer or uow.require(Customer, customer_id, "customer")
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
        self, uow: UnitOfWork, customer_id: UUID, name: str, mid: UUID
    ) -> Customer | None:
        customer = uow.get(Customer, customer_id)
        # A name an agent set or cleared is theirs: the channel's is no longer learnt.
        if customer is not None and customer.display_name is None and not customer.name_from_agent:
            customer.update_profile(
                display_name=self._cipher.encrypt(customer_id, name), correlation_id=mid
            )
        return customer

    def _open_conversation(
        self,
        uow: UnitOfWork,
        customer_id: UUID,
        aid: UUID,
        item: InboundInteraction,
        mid: UUID,
    ) -> Conversation:
        conversation = Conversation(
            customer_id=customer_id,
            channel=item.channel,
            address_id=aid,
            address=self._cipher.encrypt(customer_id, item.address),
            subject=self._cipher.encrypt_dated(customer_id, item.subject, item.occurred_at),
            first_message_id=mid,
            opened_at=item.occurred_at,
            correlation_id=mid,
            first_direction=item.direction,
            first_provider_message_id=item.provider_message_id,
        )
        uow.add(conversation)
        return conversation

    def _thread(
        self, uow: UnitOfWork, claim: AddressClaim, item: InboundInteraction, mid: UUID
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
        if (
            item.direction == "inbound"
            and conversation.status != "open"
            # A bare score answering a survey leaves a resolved conversation resolved.
            and not (
                conversation.status == "resolved"
                and is_bare_score(uow, conversation.customer_id, item.text, item.occurred_at)
            )
        ):
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
        self, uow: UnitOfWork, claim: AddressClaim, item: InboundInteraction
    ) -> Conversation | None:
        if item.channel == "email":
            # Email threads by its own references, however old; no reference, new thread.
            refs = [item.thread_ref] if item.thread_ref else []
            refs += reversed(item.references)
            for ref in refs:
                earlier = uow.message_by_ref(item.channel, ref)
                if earlier is not None and earlier.customer_id == claim.customer_id:
                    return uow.get(Conversation, earlier.conversation_id)
            return None
        if item.thread_ref:
            earlier = uow.message_by_ref(item.channel, item.thread_ref)
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


def _idle_too_long(last_activity: datetime, occurred_at: datetime, window: timedelta) -> bool:
    return occurred_at - last_activity > window
