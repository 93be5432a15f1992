"""The dispatcher's commands: for each queued message, decide whether and what to send now and
record the decision before anything is sent, then record what the provider answered (the
agents' half, replies and consent, is ``hub.domain.outbound``).

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
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from hub.domain.consent import DEFAULT_RULES, ConsentRules
from hub.domain.crypto import PersonalDataCipher
from hub.domain.ids import message_id
from hub.domain.lawfulness import dispatch_basis, refusal_basis
from hub.domain.model import OUTCOME_UNKNOWN, Conversation, Customer, Message, ProviderRef
from hub.domain.policy import (
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
from hub.domain.unit_of_work import CommandRunner, UnitOfWork


class DispatchCommands:
    """The dispatcher's half of the hub's commands (``HubApplication.dispatch``)."""

    def __init__(self, runner: CommandRunner, cipher: PersonalDataCipher) -> None:
        self._runner = runner
        self._cipher = cipher

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
