"""Outbound messages and consent: an agent's reply is recorded first, then the dispatcher asks
the domain, message by message, whether and what to send, and records what happened.

Rules decided here, on the aggregates (never on lagging views; the rules themselves are in
``hub.domain.policy``):
- consent: a channel whose ``service`` consent the customer withdrew (SMS STOP, a hard bounce)
  gets nothing; the refusal is recorded with its reason;
- service windows: where a channel allows free text only within a time of the customer's last
  message (WhatsApp's 24 hours), outside it only a template goes out;
- quiet hours: a non-urgent message is held until morning in the customer's time zone (the
  one an agent set, else the phone number's, else the default), unless the customer wrote
  within ``awake_window``;
- a send interrupted by a crash is repeated only where the provider dedupes by idempotency key;
  elsewhere it is left for the provider's status callback to settle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
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
from hub.domain.lawfulness import dispatch_basis, refusal_basis
from hub.domain.model import (
    OUTCOME_UNKNOWN,
    REPLY_PREFIX,
    Conversation,
    Customer,
    Message,
    ProviderRef,
)
from hub.domain.outbound_message import queued_message
from hub.domain.policy import (
    ChannelOption,
    ChannelPolicy,
    Decision,
    Done,
    Hold,
    ProviderReport,
    QuietHours,
    Send,
    refusal_of,
)
from hub.domain.profile import set_time_zone
from hub.domain.reach import reaches
from hub.domain.unit_of_work import CommandRunner, UnitOfWork


class OutboundCommands:
    """The outbound half of the hub's commands (``HubApplication.outbound``): replies,
    consent, and what the dispatcher records."""

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

    # -- the dispatcher's commands ---------------------------------------------------------

    def prepare_dispatch(
        self,
        mid: UUID,
        policy: ChannelPolicy,
        quiet: QuietHours,
        now: datetime,
        in_doubt_after: timedelta,
        rules: ConsentRules = DEFAULT_RULES,
    ) -> Decision:
        """Decide what to do with a queued message now, and record the decision (a refusal,
        a hold, or the start of an attempt) before anything is sent, with what it was
        decided on (``hub.domain.lawfulness``: purpose, consent and the ledger entry that
        decided it, quiet hours, the service window)."""
        return self._runner.run(
            partial(self._prepare, mid, policy, quiet, now, in_doubt_after, rules)
        )

    def prepare_dispatches(
        self,
        mids: Sequence[UUID],
        policy: ChannelPolicy,
        quiet: QuietHours,
        now: datetime,
        in_doubt_after: timedelta,
        rules: ConsentRules = DEFAULT_RULES,
    ) -> list[Decision | Exception]:
        """:meth:`prepare_dispatch` for several messages, their decisions recorded in one
        transaction (each message's decision, or the error deciding it raised)."""
        return self._runner.run_many(
            [partial(self._prepare, mid, policy, quiet, now, in_doubt_after, rules) for mid in mids]
        )

    def _prepare(
        self,
        mid: UUID,
        policy: ChannelPolicy,
        quiet: QuietHours,
        now: datetime,
        in_doubt_after: timedelta,
        rules: ConsentRules,
        uow: UnitOfWork,
    ) -> Decision:
        # The message is cached from the reply command until it is settled.
        uow.load_with(Message, mid, lambda m: [m.conversation_id, m.customer_id])
        message = uow.get(Message, mid)
        if message is None or message.dispatch is None:
            return Done("not_a_reply")
        if message.settled:
            return Done("settled")
        cid = message.customer_id
        purpose = message.dispatch.get("purpose", "service")
        if self._cipher.is_erased(cid):
            code, reason = "customer_erased", "the customer was erased"
            basis = refusal_basis(now, purpose, code, reason)
            self._settle(uow, message, "failed", code, reason, basis)
            return Done("refused")
        conversation = uow.require(Conversation, message.conversation_id, "conversation")
        if message.in_flight and not policy.idempotent(message.channel):
            # The hub stopped during a send: the provider may have it. Do not send twice;
            # its status callback settles it, or after a while it counts as failed.
            started = message.modified_on
            if now - started < in_doubt_after:
                return Hold(started + in_doubt_after)
            self._settle(
                uow,
                message,
                "failed",
                OUTCOME_UNKNOWN,
                "the hub stopped while sending and the provider never reported; it was "
                "not sent again to avoid a duplicate",
            )
            return Done("in_doubt")
        customer = uow.require(Customer, cid, "customer")
        has_template = message.dispatch["template"] is not None
        urgent = bool(message.dispatch["urgent"])
        address = self._cipher.decrypt(cid, message.address) or ""
        # The zone an agent set comes first, whatever the channel (hub.domain.profile).
        zone = set_time_zone(uow, self._cipher, customer)
        quiet_rules, by_address = quiet.for_customer(address, zone)
        basis_of = partial(
            dispatch_basis,
            now=now,
            purpose=purpose,
            policy=policy,
            quiet=quiet_rules,
            customer=customer,
            conversation=conversation,
            channel=message.channel,
            address=by_address,
            urgent=urgent,
            has_template=has_template,
            rules=rules,
        )
        refusal = refusal_of(
            policy, customer, conversation, message.channel, now, has_template, purpose, rules
        )
        if refusal is not None:
            decided = basis_of(decision="refuse", refusal=refusal)
            self._settle(uow, message, "failed", *refusal, decided)
            return Done("refused")
        if not urgent:
            until = quiet_rules.hold_until(now, conversation.last_inbound_at, by_address)
            if until is not None:
                message.defer_dispatch(
                    until=until,
                    reason="quiet_hours",
                    error_code="quiet_hours",
                    error_message="held for the customer's quiet hours",
                    held=True,
                    customer_id=cid,
                    conversation_id=message.conversation_id,
                    correlation_id=mid,
                    basis=basis_of(decision="hold", held_until=until),
                )
                uow.collect(message)
                return Hold(until)
        attempt = message.attempts + 1
        message.start_dispatch(attempt=attempt, correlation_id=mid, basis=basis_of(decision="send"))
        uow.collect(message)
        return Send(
            message_id=mid,
            channel=message.channel,
            address=address,
            text=self._cipher.decrypt(cid, message.text) or "",
            subject=self._cipher.decrypt(cid, message.subject),
            in_reply_to=message.thread_ref,
            references=tuple(message.references),
            template=message.dispatch["template"],
            status_callback_url=policy.status_callback_url(message.channel, mid),
            attempt=attempt,
            unsubscribe_url=policy.unsubscribe_url(message.channel, cid, purpose, mid),
            html=self._cipher.decrypt(cid, message.dispatch.get("html")),
        )

    def record_dispatched(self, mid: UUID, provider_message_id: str, status: str) -> None:
        """The provider accepted the message: remember its id for callbacks and replies."""
        [outcome] = self.record_dispatches([(mid, provider_message_id, status)])
        if isinstance(outcome, Exception):
            raise outcome

    def record_dispatches(self, sent: Sequence[tuple[UUID, str, str]]) -> list[Exception | None]:
        """:meth:`record_dispatched` for several messages (id, provider's id, status), in one
        transaction; for each, None or the error recording it raised."""

        def command(mid: UUID, provider_message_id: str, status: str, uow: UnitOfWork) -> None:
            # The message and its provider reference (to be).
            uow.load_with(Message, mid, lambda m: [message_id(m.channel, provider_message_id)])
            message = uow.require(Message, mid, "message")
            self._remember(uow, message, provider_message_id, status, datetime.now(UTC))

        return self._runner.run_many([partial(command, *each) for each in sent])

    def _remember(
        self,
        uow: UnitOfWork,
        message: Message,
        provider_message_id: str,
        status: str,
        occurred_at: datetime,
    ) -> None:
        """Record the provider's id of a sent message, and a :class:`ProviderRef` so that
        status callbacks and replies quoting that id find it (once: later ids are ignored)."""
        if message.provider_ref is not None:
            return
        message.record_dispatched(
            provider_message_id=provider_message_id,
            status=status,
            occurred_at=occurred_at,
            customer_id=message.customer_id,
            conversation_id=message.conversation_id,
            correlation_id=message.id,
        )
        uow.collect(message)
        ref_id = message_id(message.channel, provider_message_id)
        if uow.get(ProviderRef, ref_id) is None and uow.get(Message, ref_id) is None:
            ref = ProviderRef(
                channel=message.channel,
                provider_message_id=provider_message_id,
                message_id=message.id,
                correlation_id=message.id,
            )
            uow.add(ref)
            uow.collect(ref)

    def retry_dispatch_later(
        self, mid: UUID, until: datetime, code: str | None, reason: str
    ) -> None:
        """A retryable failure: try again at ``until``."""

        def command(uow: UnitOfWork) -> None:
            message = uow.require(Message, mid, "message")
            message.defer_dispatch(
                until=until,
                reason="retrying",
                error_code=code or "retrying",
                error_message=reason,
                held=False,
                customer_id=message.customer_id,
                conversation_id=message.conversation_id,
                correlation_id=mid,
            )
            uow.collect(message)

        self._runner.run(command)

    def fail_dispatch(self, mid: UUID, code: str | None, reason: str) -> None:
        """The provider refused the message for good, or the retries ran out."""

        def command(uow: UnitOfWork) -> None:
            message = uow.require(Message, mid, "message")
            if not message.settled:
                self._settle(uow, message, "failed", code or "failed", reason)

        self._runner.run(command)

    def apply_provider_reports(self, reports: Sequence[ProviderReport]) -> list[UUID | None]:
        """Providers' status reports for messages the hub sent, in one transaction; for each,
        the message's id, or None when the hub knows no such message (other systems' sends)."""

        def command(uow: UnitOfWork) -> list[UUID | None]:
            return [self._apply_report(uow, report) for report in reports]

        return self._runner.run(command)

    def _apply_report(self, uow: UnitOfWork, report: ProviderReport) -> UUID | None:
        message = uow.message_by_ref(report.channel, report.provider_message_id)
        if message is None and report.message_id is not None:
            # The send whose answer a crash lost: the callback tells its provider id.
            message = uow.get(Message, report.message_id)
            if message is not None:
                self._remember(
                    uow, message, report.provider_message_id, "accepted", report.occurred_at
                )
        if message is None:
            return None
        if message.report(
            report.status, report.occurred_at, report.error_code, report.error_message
        ):
            uow.collect(message)
        if report.revoke_consent:
            customer = uow.require(Customer, message.customer_id, "customer")
            customer.change_consent(
                channel=report.channel,
                purposes=["service", "marketing"],
                granted=False,
                reason=f"provider:{report.error_code or report.status}",
                actor=None,
                message_id=message.id,
                occurred_at=report.occurred_at,
                correlation_id=message.id,
            )
            uow.collect(customer)
        found: UUID = message.id
        return found

    def _settle(
        self,
        uow: UnitOfWork,
        message: Message,
        status: str,
        code: str,
        reason: str,
        basis: dict[str, Any] | None = None,
    ) -> None:
        message.report(status, datetime.now(UTC), code, reason, settle=True, basis=basis)
        uow.collect(message)
