"""What is done with scheduled and automated messages (``hub.domain.automation`` is the
model; docs/automation.md the guide), as ``HubApplication.schedules``:

- ``schedule`` records occurrences (``Scheduled``; a key scheduled before records nothing);
- ``fire``, run by the scheduler at the due time, decides on the aggregates in one
  transaction: the customer erased, the customer replied (follow-ups), the template and its
  variables, the first channel of the preference order that reaches the customer with
  consent for the purpose, the marketing frequency cap. It records either ``Skipped`` with
  the reason, or ``Queued`` together with an outbound :class:`Message` the dispatcher then
  sends like an agent's reply (consent again at send time, quiet hours, retries). The
  occurrence's version check makes two schedulers firing it at once write it once;
- ``cancel`` (before it fired), ``preview`` (a dry run: what ``fire`` would do now, recording
  nothing), and the agents' reminders: ``snooze`` a conversation until a time, ``follow_up``
  if the customer has not written by then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hub.domain.automation import (
    ACTIONS,
    AUTO_PREFIX,
    SOURCE_KINDS,
    FrequencyCap,
    Occurrence,
    OccurrenceSpec,
    Outcome,
    Plan,
    Source,
    cap_id,
    occurrence_id,
)
from hub.domain.automations import Automation
from hub.domain.consent import DEFAULT_RULES, ConsentRules
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased, DomainError, InvalidCommand, NotFound
from hub.domain.ids import message_id
from hub.domain.model import REPLY_PREFIX, Conversation, Customer
from hub.domain.outbound_message import queued_message
from hub.domain.policy import ChannelPolicy, refusal_of, zone_for
from hub.domain.profile import set_time_zone
from hub.domain.reach import NOT_OPENED, Reach, find_reach, open_conversation
from hub.domain.rendering import NoVariant, Rendered, render, variables_for
from hub.domain.surveys import SOURCE_KIND, record_question, survey_ids, survey_refusal
from hub.domain.templates import Template, template_id
from hub.domain.unit_of_work import CommandRunner, UnitOfWork

__all__ = ["Limits", "ScheduleCommands"]


@dataclass(frozen=True)
class Limits:
    """Marketing frequency cap (``HUB_AUTOMATION__FREQUENCY_CAP`` messages per
    ``FREQUENCY_DAYS``; 0: no cap) and how long an idle conversation is continued."""

    frequency_cap: int = 0
    frequency_period: timedelta = timedelta(days=7)
    conversation_window: timedelta = timedelta(days=7)


@dataclass
class _Context:
    """What one firing decides with."""

    now: datetime
    policy: ChannelPolicy
    rules: ConsentRules
    limits: Limits
    record: bool


class ScheduleCommands:
    """The commands on occurrences (``HubApplication.schedules``)."""

    def __init__(
        self,
        runner: CommandRunner,
        cipher: PersonalDataCipher,
        address_id: Any,
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._address_id = address_id

    # -- planning ---------------------------------------------------------------------------

    def schedule(
        self, specs: Sequence[OccurrenceSpec], actor: str | None
    ) -> list[tuple[UUID, bool]]:
        """Record these occurrences; one whose key exists already is left as it is. Returns
        (id, newly scheduled) per spec. Customers erased since are passed over (not new); an
        unknown customer is :class:`NotFound` (nothing recorded)."""
        for spec in specs:
            _check(spec)

        def command(uow: UnitOfWork) -> list[tuple[UUID, bool]]:
            ids = [occurrence_id(s.key) for s in specs]
            uow.load([*ids, *{s.customer_id for s in specs}])
            result: list[tuple[UUID, bool]] = []
            for oid, spec in zip(ids, specs, strict=True):
                if uow.get(Customer, spec.customer_id) is None:
                    raise NotFound(f"no customer {spec.customer_id}", id=str(spec.customer_id))
                if uow.get(Occurrence, oid) is not None or self._cipher.is_erased(spec.customer_id):
                    result.append((oid, False))
                    continue
                occurrence = self._new(spec, actor, oid)
                uow.add(occurrence)
                uow.collect(occurrence)
                result.append((oid, True))
            return result

        return self._runner.run(command)

    def _new(self, spec: OccurrenceSpec, actor: str | None, oid: UUID) -> Occurrence:
        cid = spec.customer_id
        plan = asdict(spec.plan)
        plan["channels"] = list(spec.plan.channels)
        # Dated like a message's body, as of when it is to be sent: a message retention
        # (docs/retention.md) expires it with the message it becomes.
        dated = partial(self._cipher.encrypt_dated, cid, at=max(spec.due_at, datetime.now(UTC)))
        plan["text"] = dated(spec.plan.text) if spec.plan.text else None
        plan["subject"] = dated(spec.plan.subject) if spec.plan.subject else None
        context = dated(json.dumps(spec.event, default=str)) if spec.event is not None else None
        return Occurrence(
            key=spec.key,
            customer_id=cid,
            due_at=spec.due_at.astimezone(UTC),
            plan=plan,
            source=asdict(spec.source),
            conversation_id=spec.conversation_id,
            unless_replied_since=spec.unless_replied_since,
            context=context,
            actor=actor,
            correlation_id=oid,
        )

    def customer_zone(self, customer_id: UUID, default: str | None) -> ZoneInfo:
        """The customer's time zone: the one an agent set, else their phone number's, else
        ``default``, else UTC (what "10:00 in the customer's zone" is computed in)."""

        def query(uow: UnitOfWork) -> ZoneInfo:
            customer = uow.require(Customer, customer_id, "customer")
            if self._cipher.is_erased(customer_id):
                raise CustomerErased("the customer was erased", customer_id=str(customer_id))
            phones = (self._cipher.decrypt(customer_id, t) for t in customer.addresses if t)
            phone = next((a for a in phones if a and a.startswith("phone:")), None)
            return zone_for(set_time_zone(uow, self._cipher, customer), phone, default)

        return self._runner.read(query)

    # -- reminders ----------------------------------------------------------------------------

    def snooze(
        self, conversation_id: UUID, until: datetime, actor: str | None, now: datetime
    ) -> UUID:
        """Put a conversation aside (pending) until ``until``, when it comes back to the
        queue open (a reminder; the customer writing reopens it earlier, as always).
        Snoozing again to the same time is the same reminder."""
        if until.tzinfo is None or until <= now:
            raise InvalidCommand("snooze until a time in the future, with its zone", field="until")
        key = f"snooze:{conversation_id}:{until.astimezone(UTC).isoformat()}"

        def command(uow: UnitOfWork) -> UUID:
            conversation = uow.require(Conversation, conversation_id, "conversation")
            oid = occurrence_id(key)
            if uow.get(Occurrence, oid) is not None:
                return oid
            if conversation.status != "pending":
                conversation.change_status(
                    status="pending",
                    previous_status=conversation.status,
                    actor=actor,
                    reason="snoozed",
                    customer_id=conversation.customer_id,
                    correlation_id=oid,
                )
                uow.collect(conversation)
            spec = OccurrenceSpec(
                key=key,
                customer_id=conversation.customer_id,
                due_at=until,
                plan=Plan(action="reopen"),
                source=Source("reminder", "snooze"),
                conversation_id=conversation_id,
            )
            occurrence = self._new(spec, actor, oid)
            uow.add(occurrence)
            uow.collect(occurrence)
            return oid

        return self._runner.run(command)

    def follow_up(
        self,
        conversation_id: UUID,
        due_at: datetime,
        plan: Plan,
        actor: str | None,
        now: datetime,
        key: str,
    ) -> tuple[UUID, bool]:
        """Send ``plan`` (or reopen the conversation) at ``due_at`` unless the customer writes
        in this conversation before then. ``key``: the request's idempotency key."""
        if due_at <= now:
            raise InvalidCommand("a follow-up is due in the future", field="after")

        def customer_of(uow: UnitOfWork) -> UUID:
            return uow.require(Conversation, conversation_id, "conversation").customer_id

        spec = OccurrenceSpec(
            key=f"followup:{conversation_id}:{key}",
            customer_id=self._runner.read(customer_of),
            due_at=due_at,
            plan=plan,
            source=Source("followup", str(conversation_id)),
            conversation_id=conversation_id,
            unless_replied_since=now,
        )
        return self.schedule([spec], actor)[0]

    def cancel(self, oid: UUID, actor: str | None, customer_id: UUID | None = None) -> bool:
        """Cancel an occurrence that has not fired; False if it had (or was cancelled)
        already. ``customer_id``: the customer it must belong to (else not found)."""

        def command(uow: UnitOfWork) -> bool:
            occurrence = uow.get(Occurrence, oid)
            if occurrence is None or (
                customer_id is not None and occurrence.customer_id != customer_id
            ):
                raise _not_found(oid)
            if not occurrence.pending:
                if occurrence.state == "cancelled":
                    return False
                raise Conflict(
                    "scheduled_message_done",
                    f"the scheduled message was {occurrence.state} already",
                    state=occurrence.state,
                )
            occurrence.cancel(actor=actor, customer_id=occurrence.customer_id, correlation_id=oid)
            uow.collect(occurrence)
            return True

        return self._runner.run(command)

    def get(self, oid: UUID) -> Occurrence:
        found = self.find(oid)
        if found is None:
            raise _not_found(oid)
        return found

    def find(self, oid: UUID) -> Occurrence | None:
        return self._runner.read(lambda uow: uow.get(Occurrence, oid))

    def describe(self, occurrence: Occurrence) -> dict[str, Any]:
        """What an occurrence is and where it stands, as the API and the export show it:
        its plan (with its text and subject decrypted), its source, and after it came due
        why it was skipped or the message it became."""
        text, subject = self.text_of(occurrence)
        plan = occurrence.plan
        return {
            "id": occurrence.id,
            "customer_id": occurrence.customer_id,
            "conversation_id": occurrence.conversation_id,
            "status": occurrence.state,
            "due_at": occurrence.due_at,
            "action": plan["action"],
            "purpose": plan["purpose"],
            "channels": list(plan["channels"]),
            "template": plan.get("template"),
            "text": text,
            "subject": subject,
            "source": dict(occurrence.source),
            "reason_code": occurrence.code,
            "reason": occurrence.reason,
            "message_id": occurrence.message_id,
            "channel": occurrence.channel,
        }

    def text_of(self, occurrence: Occurrence) -> tuple[str | None, str | None]:
        """The free text and subject of an occurrence (None: a template, or erased)."""
        cid = occurrence.customer_id
        plan = occurrence.plan
        text = self._cipher.decrypt(cid, plan["text"]) if plan.get("text") else None
        subject = self._cipher.decrypt(cid, plan["subject"]) if plan.get("subject") else None
        return text, subject

    # -- firing -----------------------------------------------------------------------------

    def fire(
        self,
        oid: UUID,
        *,
        now: datetime,
        policy: ChannelPolicy,
        rules: ConsentRules = DEFAULT_RULES,
        limits: Limits = Limits(),
    ) -> Outcome:
        """Decide the occurrence now and record the decision (see the module docstring)."""
        ctx = _Context(now, policy, rules, limits, record=True)
        return self._runner.run(lambda uow: self._decide(uow, oid, ctx))

    def preview(
        self,
        spec: OccurrenceSpec,
        *,
        now: datetime,
        policy: ChannelPolicy,
        rules: ConsentRules = DEFAULT_RULES,
        limits: Limits = Limits(),
    ) -> Outcome:
        """What firing ``spec`` now would do, recording nothing (campaign dry runs)."""
        ctx = _Context(now, policy, rules, limits, record=False)

        def query(uow: UnitOfWork) -> Outcome:
            occurrence = self._new(spec, None, occurrence_id(spec.key))
            occurrence.collect_events()  # a draft: never saved
            return self._decide_on(uow, occurrence, ctx)

        return self._runner.read(query)

    def _decide(self, uow: UnitOfWork, oid: UUID, ctx: _Context) -> Outcome:
        occurrence = uow.get(Occurrence, oid)
        if occurrence is None or not occurrence.pending:
            return Outcome("none", message_id=occurrence.message_id if occurrence else None)
        return self._decide_on(uow, occurrence, ctx)

    def _decide_on(self, uow: UnitOfWork, occurrence: Occurrence, ctx: _Context) -> Outcome:
        cid = occurrence.customer_id
        plan = occurrence.plan
        survey = occurrence.source["kind"] == SOURCE_KIND
        uow.load(
            [cid, occurrence.conversation_id, cap_id(cid), *(survey_ids(cid) if survey else ())]
        )
        if self._cipher.is_erased(cid):
            return self._skip(uow, occurrence, ctx, "customer_erased", "the customer was erased")
        customer = uow.get(Customer, cid)
        if customer is None:
            return self._skip(uow, occurrence, ctx, "customer_missing", "no such customer")
        conversation = (
            uow.get(Conversation, occurrence.conversation_id)
            if occurrence.conversation_id
            else None
        )
        since = occurrence.unless_replied_since
        if (
            since is not None
            and conversation is not None
            and conversation.last_inbound_at is not None
            and conversation.last_inbound_at > since
        ):
            return self._skip(
                uow, occurrence, ctx, "customer_replied", "the customer wrote since it was planned"
            )
        stopped = _source_stopped(uow, occurrence.source)
        if stopped is not None:
            return self._skip(uow, occurrence, ctx, "automation_disabled", stopped)
        if survey:
            status = conversation.status if conversation is not None else None
            kind, about = occurrence.source["id"], occurrence.conversation_id
            refusal = survey_refusal(uow, cid, kind, about, status, ctx.now)
            if refusal is not None:
                return self._skip(uow, occurrence, ctx, *refusal)
        if plan["action"] == "reopen":
            return self._reopen(uow, occurrence, conversation, ctx)
        return self._send(uow, occurrence, customer, conversation, ctx)

    def _reopen(
        self,
        uow: UnitOfWork,
        occurrence: Occurrence,
        conversation: Conversation | None,
        ctx: _Context,
    ) -> Outcome:
        if conversation is None:
            return self._skip(uow, occurrence, ctx, "conversation_missing", "no conversation")
        if ctx.record:
            if conversation.status != "open":
                conversation.change_status(
                    status="open",
                    previous_status=conversation.status,
                    actor=None,
                    reason="reminder",
                    customer_id=conversation.customer_id,
                    correlation_id=occurrence.id,
                )
            occurrence.queue(
                message_id=None,
                channel=None,
                template_version=None,
                occurred_at=ctx.now,
                source=occurrence.source,
                customer_id=occurrence.customer_id,
                correlation_id=occurrence.id,
            )
            uow.collect(conversation, occurrence)
        return Outcome("reopen")

    def _send(
        self,
        uow: UnitOfWork,
        occurrence: Occurrence,
        customer: Customer,
        conversation: Conversation | None,
        ctx: _Context,
    ) -> Outcome:
        cid = customer.id
        plan = occurrence.plan
        purpose = plan["purpose"]
        cap: FrequencyCap | None = None
        if purpose == "marketing" and ctx.limits.frequency_cap > 0:
            cap = uow.get(FrequencyCap, cap_id(cid))
            since = ctx.now - ctx.limits.frequency_period
            if cap is not None and cap.within(since) >= ctx.limits.frequency_cap:
                days = ctx.limits.frequency_period.total_seconds() / 86400
                return self._skip(
                    uow,
                    occurrence,
                    ctx,
                    "frequency_cap",
                    f"{ctx.limits.frequency_cap} marketing messages in {days:g} days already",
                )
        template: Template | None = None
        if plan.get("template"):
            template = uow.get(Template, template_id(plan["template"]))
            if template is None or template.deleted:
                return self._skip(
                    uow,
                    occurrence,
                    ctx,
                    "template_missing",
                    f"no template named {plan['template']!r}",
                )
        # The first channel of the preference that reaches the customer and may be used.
        reasons: list[str] = []
        codes: set[str] = set()
        for channel in plan["channels"]:
            reach = find_reach(uow, self._cipher, self._address_id, customer, channel, conversation)
            if reach is None:
                reasons.append(f"{channel}: no address")
                codes.add("no_channel")
                continue
            # Channel and consent first (a template may carry WhatsApp's approved one, so
            # its window is checked once it is rendered), then the template for the channel.
            refusal = self._refusal(customer, reach, channel, template is not None, ctx, purpose)
            rendered: Rendered | None = None
            if refusal is None and template is not None:
                variables = variables_for(uow, self._cipher, customer, self._context(occurrence))
                try:
                    rendered = render(template, channel, variables.get("language"), variables)
                except NoVariant as exc:  # nothing for this channel: the next one may have
                    reasons.append(f"{channel}: {exc}")
                    codes.add(exc.code)
                    continue
                except DomainError as exc:  # a missing variable, too large: on any channel
                    return self._skip(uow, occurrence, ctx, exc.code, str(exc))
                if rendered.whatsapp is None:
                    refusal = self._refusal(customer, reach, channel, False, ctx, purpose)
            if refusal is not None:
                reasons.append(f"{channel}: {refusal[1]}")
                codes.add(refusal[0])
                continue
            return self._queue(uow, occurrence, customer, channel, reach, rendered, cap, ctx)
        # One reason on every channel names it (consent_missing...); several: not_allowed.
        code = codes.pop() if len(codes) == 1 else "not_allowed"
        return self._skip(uow, occurrence, ctx, code, "; ".join(reasons) or "no channel")

    def _queue(
        self,
        uow: UnitOfWork,
        occurrence: Occurrence,
        customer: Customer,
        channel: str,
        reach: Reach,
        rendered: Rendered | None,
        cap: FrequencyCap | None,
        ctx: _Context,
    ) -> Outcome:
        if rendered is not None:
            text, subject = rendered.text or "", rendered.subject
        else:
            plain, subject = self.text_of(occurrence)
            if plain is None:  # its day's secret was destroyed by the message retention
                return self._skip(
                    uow,
                    occurrence,
                    ctx,
                    "text_expired",
                    "its text expired with the message retention before it was sent",
                )
            text = plain
        if not ctx.record:
            return Outcome("send", channel=channel, rendered=rendered)
        mid = self._record_message(
            uow, occurrence, customer, channel, reach, text, subject, rendered, ctx
        )
        if occurrence.source["kind"] == SOURCE_KIND:
            survey = (self._context(occurrence) or {}).get("survey") or {}
            record_question(
                uow,
                occurrence.id,
                customer.id,
                occurrence.source["id"],
                occurrence.conversation_id,
                survey.get("agent"),
                channel,
                mid,
                ctx.now,
            )
        if occurrence.plan["purpose"] == "marketing" and ctx.limits.frequency_cap > 0:
            if cap is None:
                cap = FrequencyCap(customer_id=customer.id)
                uow.add(cap)
            cap.count(at=ctx.now, keep_after=ctx.now - ctx.limits.frequency_period)
            uow.collect(cap)
        return Outcome("send", channel=channel, message_id=mid, rendered=rendered)

    @staticmethod
    def _refusal(
        customer: Customer,
        reach: Reach,
        channel: str,
        has_template: bool,
        ctx: _Context,
        purpose: str,
    ) -> tuple[str, str] | None:
        """Why ``channel`` may not carry the message now (``hub.domain.policy``), or None."""
        thread = reach.conversation or NOT_OPENED
        return refusal_of(
            ctx.policy, customer, thread, channel, ctx.now, has_template, purpose, ctx.rules
        )

    def _context(self, occurrence: Occurrence) -> Mapping[str, Any] | None:
        if not occurrence.context:
            return None
        raw = self._cipher.decrypt(occurrence.customer_id, occurrence.context)
        return json.loads(raw) if raw else None

    def _record_message(
        self,
        uow: UnitOfWork,
        occurrence: Occurrence,
        customer: Customer,
        channel: str,
        reach: Reach,
        text: str,
        subject: str | None,
        rendered: Rendered | None,
        ctx: _Context,
    ) -> UUID:
        cid = customer.id
        key = f"{AUTO_PREFIX}{occurrence.id}"
        mid = message_id(channel, REPLY_PREFIX + key)
        source = occurrence.source
        automation = {
            "occurrence_id": str(occurrence.id),
            "kind": source["kind"],
            "id": source["id"],
            "name": source.get("name"),
            "template": occurrence.plan.get("template"),
            "template_version": rendered.version if rendered else None,
        }
        thread = reach.conversation
        if thread is None or ctx.now - thread.last_activity_at > ctx.limits.conversation_window:
            thread = open_conversation(
                uow,
                self._cipher,
                self._address_id,
                cid,
                channel,
                reach,
                subject=subject,
                first_message_id=mid,
                at=ctx.now,
            )
        else:
            thread.add_message(
                message_id=mid, direction="outbound", occurred_at=ctx.now, correlation_id=mid
            )
        whatsapp = rendered.whatsapp if rendered is not None and channel == "whatsapp" else None
        message = queued_message(
            self._cipher,
            thread,
            channel=channel,
            key=key,
            text=text,
            subject=subject,
            at=ctx.now,
            author=None,
            urgent=False,
            template=dict(whatsapp) if whatsapp else None,
            purpose=occurrence.plan["purpose"],
            automation=automation,
            html=rendered.html if rendered is not None else None,
        )
        occurrence.queue(
            message_id=mid,
            channel=channel,
            template_version=rendered.version if rendered else None,
            occurred_at=ctx.now,
            source=occurrence.source,
            customer_id=cid,
            correlation_id=occurrence.id,
        )
        uow.add(message)
        uow.collect(reach.claim, thread, message, occurrence)
        return mid

    def _skip(
        self, uow: UnitOfWork, occurrence: Occurrence, ctx: _Context, code: str, reason: str
    ) -> Outcome:
        if ctx.record:
            occurrence.skip(
                code=code,
                reason=reason,
                occurred_at=ctx.now,
                source=occurrence.source,
                customer_id=occurrence.customer_id,
                correlation_id=occurrence.id,
            )
            uow.collect(occurrence)
        return Outcome("skip", code=code, reason=reason)


def _source_stopped(uow: UnitOfWork, source: Mapping[str, Any]) -> str | None:
    """Why the rule or campaign that planned an occurrence sends nothing more (disabled or
    deleted since), or None: whatever was planned before it stopped is not sent."""
    if source["kind"] not in ("rule", "campaign"):
        return None
    try:
        automation = uow.get(Automation, UUID(source["id"]))
    except ValueError:
        return None  # not an automation's id (tests' and older sources)
    if automation is None or automation.deleted:
        return f"the {source['kind']} was deleted"
    if not automation.definition.get("enabled", True):
        return f"the {source['kind']} was disabled"
    return None


def _check(spec: OccurrenceSpec) -> None:
    plan = spec.plan
    if spec.due_at.tzinfo is None:
        raise InvalidCommand("a due time needs its time zone", field="due_at")
    if plan.action not in ACTIONS:
        raise InvalidCommand(f"unknown action {plan.action!r}", field="action")
    if spec.source.kind not in SOURCE_KINDS:
        raise InvalidCommand(f"unknown source {spec.source.kind!r}", field="source")
    if plan.action == "send":
        if (plan.template is None) == (plan.text is None):
            raise InvalidCommand(
                "a scheduled message has a template or a text (one of them)", field="template"
            )
        if not plan.channels:
            raise InvalidCommand("name at least one channel", field="channels")
        if len(set(plan.channels)) != len(plan.channels):
            raise InvalidCommand("a channel is named twice", field="channels")


def _not_found(oid: UUID) -> DomainError:
    return NotFound(f"no scheduled message with id {oid}", id=str(oid))
