"""Conversations the hub starts: an agent writes to a customer on a channel they chose, as
``HubApplication.new_conversations``. The message is recorded with the conversation it opens
and its dispatch request in one transaction; the dispatcher sends it like a reply (consent
again at send time, quiet hours, retries). Refused at once, recording nothing, on the rules
of a reply (``hub.domain.policy.refusal_of``) or when no address of the customer reaches
the channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hub.domain.consent import DEFAULT_RULES, ConsentRules
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import CustomerErased, InvalidCommand, SendRefused
from hub.domain.ids import message_id, uuid7
from hub.domain.inbound import Recorded
from hub.domain.model import REPLY_PREFIX, Customer, Message
from hub.domain.outbound_message import queued_message
from hub.domain.policy import ChannelOption, ChannelPolicy, QuietHours, refusal_of
from hub.domain.profile import set_time_zone
from hub.domain.reach import NOT_OPENED, find_reach, open_conversation
from hub.domain.unit_of_work import CommandRunner, UnitOfWork

__all__ = ["NewConversationCommands"]


class NewConversationCommands:
    """Start a conversation with a customer (``start``) and what each channel would say
    (``options``)."""

    def __init__(
        self, runner: CommandRunner, cipher: PersonalDataCipher, address_id: Callable[[str], UUID]
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._address_id = address_id

    def start(
        self,
        customer_id: UUID,
        channel: str,
        text: str,
        *,
        author: str | None,
        policy: ChannelPolicy,
        idempotency_key: str | None = None,
        subject: str | None = None,
        urgent: bool = False,
        template: dict[str, Any] | None = None,
        purpose: str = "service",
        rules: ConsentRules = DEFAULT_RULES,
        now: datetime | None = None,
    ) -> Recorded:
        """Open a conversation on ``channel`` with the customer's newest address there and
        record ``text`` in it for the dispatcher. Refused (nothing recorded): an unknown
        purpose, no subject for an email, no address on the channel (``invalid_command``),
        the channel off, consent not given for ``purpose``, a service window closed without
        a ``template`` (:class:`SendRefused`), an erased customer. The same idempotency key
        again returns the first message as a duplicate."""
        if purpose not in rules.purposes:
            raise InvalidCommand(
                f"unknown purpose {purpose!r}: one of {', '.join(rules.purposes)}",
                purpose=purpose,
            )
        if channel == "email" and not (subject or "").strip():
            raise InvalidCommand("an email needs a subject", field="subject")
        key = idempotency_key or str(uuid7())
        mid = message_id(channel, REPLY_PREFIX + key)
        at = now or datetime.now(UTC)

        def command(uow: UnitOfWork) -> Recorded:
            uow.load([mid, customer_id])  # one read for both
            earlier = uow.get(Message, mid)
            if earlier is not None:
                return Recorded(mid, earlier.customer_id, earlier.conversation_id, True)
            customer = _customer(uow, self._cipher, customer_id)
            cid = customer.id
            reach = find_reach(uow, self._cipher, self._address_id, customer, channel)
            if reach is None:
                raise InvalidCommand(
                    f"no address of this customer can be reached on {channel!r}",
                    channel=channel,
                )
            window = reach.conversation or NOT_OPENED
            refusal = refusal_of(
                policy, customer, window, channel, at, template is not None, purpose, rules
            )
            if refusal is not None:
                raise SendRefused(*refusal, channel=channel, purpose=purpose)
            thread = open_conversation(
                uow,
                self._cipher,
                self._address_id,
                cid,
                channel,
                reach,
                subject=subject,
                first_message_id=mid,
                at=at,
            )
            message = queued_message(
                self._cipher,
                thread,
                channel=channel,
                key=key,
                text=text,
                subject=subject,
                at=at,
                author=author,
                urgent=urgent,
                template=template,
                purpose=purpose,
            )
            uow.add(message)
            uow.collect(reach.claim, thread, message)
            return Recorded(mid, cid, thread.id, duplicate=False)

        return self._runner.run(command)

    def options(
        self,
        customer_id: UUID,
        *,
        policy: ChannelPolicy,
        quiet: QuietHours,
        known_channels: Sequence[str],
        now: datetime | None = None,
        purpose: str = "service",
    ) -> list[ChannelOption]:
        """The channels of ``known_channels`` an address of the customer reaches, each with
        what :meth:`start` would say now (free text, for ``purpose``)."""
        at = now or datetime.now(UTC)

        def query(uow: UnitOfWork) -> list[ChannelOption]:
            customer = _customer(uow, self._cipher, customer_id)
            zone = set_time_zone(uow, self._cipher, customer)
            options = []
            for channel in known_channels:
                reach = find_reach(uow, self._cipher, self._address_id, customer, channel)
                if reach is None:
                    continue
                window = reach.conversation or NOT_OPENED
                refusal = refusal_of(policy, customer, window, channel, at, False, purpose)
                quiet_rules, by_address = quiet.for_customer(reach.address, zone)
                last = window.last_inbound_at
                until = quiet_rules.hold_until(at, last, by_address)
                options.append(ChannelOption.of(channel, refusal, until))
            return options

        return self._runner.read(query)


def _customer(uow: UnitOfWork, cipher: PersonalDataCipher, customer_id: UUID) -> Customer:
    customer = uow.require(Customer, customer_id, "customer")
    if cipher.is_erased(customer_id):
        raise CustomerErased("this customer was erased", customer_id=str(customer_id))
    return customer
