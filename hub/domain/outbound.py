"""Outbound messages and consent, the agents' half: a reply is recorded first (queued), and
the dispatcher then asks the domain, message by message, whether and what to send, and records
what happened (``hub.domain.dispatching``, where the sending rules are). Here: replies, the
channels a reply may take, and the consent ledger's commands (a change, a confirmation, an
unsubscribe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hub.domain.consent import (
    DEFAULT_RULES,
    ConfirmationExpired,
    ConsentChange,
    ConsentRequest,
    ConsentRules,
)
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand, NotFound, SendRefused
from hub.domain.ids import message_id, uuid7
from hub.domain.inbound import Recorded
from hub.domain.model import (
    REPLY_PREFIX,
    Conversation,
    Customer,
    Message,
)
from hub.domain.outbound_message import queued_message
from hub.domain.policy import (
    ChannelOption,
    ChannelPolicy,
    QuietHours,
    refusal_of,
)
from hub.domain.profile import set_time_zone
from hub.domain.reach import reaches
from hub.domain.unit_of_work import CommandRunner, UnitOfWork


class OutboundCommands:
    """The agents' outbound commands (``HubApplication.outbound``): replies and consent."""

    def __init__(self, runner: CommandRunner, cipher: PersonalDataCipher) -> None:
        self._runner = runner
        self._cipher = cipher

    # -- agent commands --------------------------------------------------------------------

    def reply(
        self,
        conversation_id: UUID,
        text: str,
        *,
        author: str | None,
        policy: ChannelPolicy,
        idempotency_key: str | None = None,
        channel: str | None = None,
        subject: str | None = None,
        urgent: bool = False,
        template: dict[str, Any] | None = None,
        now: datetime | None = None,
        purpose: str = "service",
        rules: ConsentRules = DEFAULT_RULES,
    ) -> Recorded:
        """Record an agent's message for the dispatcher. Refused at once (nothing recorded)
        when the channel is off, the customer's consent for ``purpose`` on it is not given
        (``rules``: the configured defaults) or a service window closed; the same
        idempotency key again returns the first reply as a duplicate."""
        if purpose not in rules.purposes:
            raise InvalidCommand(
                f"unknown purpose {purpose!r}: one of {', '.join(rules.purposes)}",
                purpose=purpose,
            )
        key = idempotency_key or str(uuid7())
        at = now or datetime.now(UTC)

        def reply_and_customer(conversation: Conversation) -> list[UUID]:
            reply_id = message_id(channel or conversation.channel, REPLY_PREFIX + key)
            return [reply_id, conversation.customer_id]

        def command(uow: UnitOfWork) -> Recorded:
            uow.load_with(Conversation, conversation_id, reply_and_customer)
            conversation = uow.require(Conversation, conversation_id, "conversation")
            target = channel or conversation.channel
            [mid, _] = reply_and_customer(conversation)
            earlier = uow.get(Message, mid)
            if earlier is not None:
                return Recorded(mid, earlier.customer_id, earlier.conversation_id, True)
            cid = conversation.customer_id
            if self._cipher.is_erased(cid):
                raise CustomerErased(
                    "this conversation's customer was erased", customer_id=str(cid)
                )
            address = self._cipher.decrypt(cid, conversation.address)
            if not reaches(target, address):
                raise InvalidCommand(
                    f"this conversation's address cannot be reached on {target!r}",
                    channel=target,
                    conversation_channel=conversation.channel,
                )
            customer = uow.require(Customer, cid, "customer")
            refusal = refusal_of(
                policy, customer, conversation, target, at, template is not None, purpose, rules
            )
            if refusal is not None:
                raise SendRefused(*refusal, channel=target, purpose=purpose)
            message = queued_message(
                self._cipher,
                conversation,
                channel=target,
                key=key,
                text=text,
                subject=subject,
                at=at,
                author=author,
                urgent=urgent,
                template=template,
                purpose=purpose,
            )
            conversation.add_message(
                message_id=mid, direction="outbound", occurred_at=at, correlation_id=mid
            )
            uow.add(message)
            uow.collect(conversation, message)
            return Recorded(mid, cid, conversation.id, duplicate=False)

        return self._runner.run(command)

    def change_consent(
        self,
        customer_id: UUID,
        channel: str,
        granted: bool,
        *,
        purposes: Sequence[str] = ("service", "marketing"),
        reason: str | None = None,
        source: str = "agent",
        evidence: str | None = None,
        actor: str | None = None,
        members: Sequence[UUID] | None = None,
        rules: ConsentRules = DEFAULT_RULES,
        now: datetime | None = None,
    ) -> ConsentChange:
        """Record a line of the consent ledger on ``members`` (default: the customer alone;
        the API names the members of a merge group whose addresses the channel reaches), in
        one transaction. ``evidence`` (free text) is encrypted under each customer's key.

        Double opt-in: where ``rules`` say so (email marketing, from an agent or the API),
        a grant of an opt-in purpose records a pending request instead, which the customer
        confirms with :meth:`confirm_consent`; purposes already granted need none."""
        rules.check(channel, purposes, source)
        if not purposes:
            raise InvalidCommand("name at least one purpose")
        at = now or datetime.now(UTC)
        targets = list(dict.fromkeys(members or [customer_id]))

        def command(uow: UnitOfWork) -> ConsentChange:
            uow.load(targets)
            requests: list[ConsentRequest] = []
            for cid in targets:
                customer = uow.require(Customer, cid, "customer")
                if self._cipher.is_erased(cid):
                    raise CustomerErased("this customer was erased", customer_id=str(cid))
                sealed = self._cipher.encrypt(cid, evidence) if evidence else None
                later = [
                    p for p in purposes if granted and rules.needs_confirmation(channel, p, source)
                ]
                now_ = [p for p in purposes if p not in later]
                # A purpose already granted needs no confirmation: nothing to record for it.
                later = [p for p in later if not customer.allows(channel, p, rules)]
                correlation_id = uuid7()
                if now_:
                    customer.change_consent(
                        channel=channel,
                        purposes=now_,
                        granted=granted,
                        reason=reason or source,
                        actor=actor,
                        message_id=None,
                        occurred_at=at,
                        correlation_id=correlation_id,
                        source=source,
                        evidence=sealed,
                    )
                if later:
                    request = ConsentRequest(
                        customer_id=cid,
                        request_id=uuid7(),
                        channel=channel,
                        purposes=tuple(later),
                        expires_at=at + rules.confirmation_ttl,
                    )
                    customer.request_consent(
                        request_id=request.request_id,
                        channel=channel,
                        purposes=list(later),
                        source=source,
                        evidence=sealed,
                        actor=actor,
                        requested_at=at,
                        expires_at=request.expires_at,
                        correlation_id=correlation_id,
                    )
                    requests.append(request)
                uow.collect(customer)
            return ConsentChange(tuple(targets), tuple(requests))

        return self._runner.run(command)

    def confirm_consent(
        self, customer_id: UUID, request_id: UUID, now: datetime | None = None
    ) -> ConsentRequest:
        """The customer confirmed a double opt-in request (opened the signed link and
        pressed the button): record the grant with source ``double_opt_in``. Once confirmed,
        again changes nothing. Refused: an unknown request (404), an erased customer (410),
        an expired request (410 ``confirmation_expired``) and one a later withdrawal
        cancelled (409 ``confirmation_cancelled``)."""
        at = now or datetime.now(UTC)

        def command(uow: UnitOfWork) -> ConsentRequest:
            customer = uow.require(Customer, customer_id, "customer")
            found = customer.consent_requests.get(request_id)
            if found is None:
                raise NotFound("no such consent request", request_id=str(request_id))
            if self._cipher.is_erased(customer_id):
                raise CustomerErased("this customer was erased", customer_id=str(customer_id))
            request = ConsentRequest(
                customer_id=customer_id,
                request_id=request_id,
                channel=found["channel"],
                purposes=tuple(found["purposes"]),
                expires_at=found["expires_at"],
                state=found["state"],
            )
            if found["state"] == "confirmed":
                return request
            if found["state"] == "cancelled":
                raise Conflict(
                    "confirmation_cancelled",
                    "consent was withdrawn after this request; ask for a new one",
                )
            if at >= found["expires_at"]:
                raise ConfirmationExpired("this confirmation request has expired")
            customer.change_consent(
                channel=found["channel"],
                purposes=list(found["purposes"]),
                granted=True,
                reason="double_opt_in",
                actor=None,
                message_id=None,
                occurred_at=at,
                correlation_id=uuid7(),
                source="double_opt_in",
                evidence=None,
                request_id=request_id,
            )
            uow.collect(customer)
            return replace(request, state="confirmed")

        return self._runner.run(command)

    def reply_options(
        self,
        conversation_id: UUID,
        *,
        policy: ChannelPolicy,
        quiet: QuietHours,
        known_channels: Sequence[str],
        now: datetime | None = None,
    ) -> list[ChannelOption]:
        """The channels a reply on this conversation could take (those that can send to its
        address: the conversation's own first, then the others of ``known_channels``), each
        with what :meth:`reply` would say now."""
        at = now or datetime.now(UTC)

        def query(uow: UnitOfWork) -> list[ChannelOption]:
            conversation = uow.require(Conversation, conversation_id, "conversation")
            customer = uow.require(Customer, conversation.customer_id, "customer")
            address = self._cipher.decrypt(conversation.customer_id, conversation.address)
            channels = [conversation.channel] + [
                c for c in known_channels if c != conversation.channel and reaches(c, address)
            ]
            zone = set_time_zone(uow, self._cipher, customer)
            quiet_rules, by_address = quiet.for_customer(address, zone)
            until = quiet_rules.hold_until(at, conversation.last_inbound_at, by_address)
            options = []
            for channel in channels:
                refusal = refusal_of(policy, customer, conversation, channel, at, False)
                options.append(ChannelOption.of(channel, refusal, until))
            return options

        return self._runner.read(query)

    def consent_of(self, customer_id: UUID) -> dict[str, bool]:
        """The customer's consent ledger as it stands: ``channel:purpose`` -> granted (a
        channel without an entry: service allowed, the customer wrote to us)."""
        customer = self._runner.read(lambda uow: uow.require(Customer, customer_id, "customer"))
        return dict(customer.consent)

    def unsubscribe(
        self,
        customer_id: UUID,
        channel: str,
        purpose: str,
        message_id: UUID | None,
        now: datetime | None = None,
    ) -> bool:
        """The customer used the unsubscribe link of a message (``message_id``, the
        evidence): withdraw their consent for ``purpose`` on ``channel`` (source
        ``unsubscribe_link``). Idempotent: when the ledger already withdrew it, nothing is
        recorded and the answer is False. :class:`CustomerErased` once erased."""
        at = now or datetime.now(UTC)

        def command(uow: UnitOfWork) -> bool:
            customer = uow.require(Customer, customer_id, "customer")
            if self._cipher.is_erased(customer_id):
                raise CustomerErased("this customer was erased", customer_id=str(customer_id))
            if customer.consent.get(f"{channel}:{purpose}") is False:
                return False
            customer.change_consent(
                channel=channel,
                purposes=[purpose],
                granted=False,
                reason="unsubscribe_link",
                actor=None,
                message_id=message_id,
                occurred_at=at,
                correlation_id=message_id or uuid7(),
                source="unsubscribe_link",
                evidence=None,
            )
            uow.collect(customer)
            return True

        return self._runner.run(command)
