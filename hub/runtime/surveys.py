"""Surveys at work (docs/surveys.md): the scheduler's watcher that plans CSAT and NPS
questions and reads the customers' replies as answers.

It follows the published log with a position of its own (``hub.store.lease``, ``surveys``),
like the event rules' planner, every idle tick of the scheduler (so a reply is read within a
second):

- ``conversation.status_changed.v1`` to ``resolved`` plans a CSAT occurrence
  (``survey:csat:{conversation}:{event}``) due ``delay_minutes`` later, on the conversation's
  channel. Firing it checks that the conversation is still resolved, the customer did not
  write since, and no survey went out to them within ``every_days``;
- ``interaction.received.v1`` goes to ``SurveyCommands.record_replies``: a score answers
  the customer's open survey, the next message its comment;
- NPS: every ``every_days`` is a period; each member of the policy's segment gets one
  occurrence a period (``survey:nps:{customer}:{period}``), due at a point of the period
  spread by the customer's id, so a large audience is not asked on one day.

Occurrences carry the survey's signed one-click links (``event.survey.links``, score ->
URL, when ``HUB_PUBLIC_URL`` is set) for email templates.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from hub.config import Settings
from hub.domain.automation import OccurrenceSpec, Plan, Source, occurrence_id
from hub.domain.consent import ConsentRules
from hub.domain.errors import NotFound
from hub.domain.links import LinkSigner
from hub.domain.surveys import CSAT, NPS, SCALES, SOURCE_KIND, Incoming, SurveyPolicy
from hub.events import ConversationStatusChanged, Envelope, InteractionReceived
from hub.events.segments import AllOf, Filter
from hub.projections.segment_filter import FilterContext
from hub.runtime.automation.audience import in_segment, segment_page
from hub.runtime.automation.specs import schedule
from hub.runtime.automation.timing import GRACE
from hub.store import Store
from hub.store.lease import LeaseLost, LogLease

__all__ = ["LEASE_NAME", "SURVEY_LINK", "SurveyWatcher", "survey_spec"]

log = logging.getLogger(__name__)

LEASE_NAME = "surveys"
LEASE_SECONDS = 120.0
#: The kind of the signed links that answer a survey (``hub.domain.links``).
SURVEY_LINK = "survey"
#: How often the NPS audience is expanded again (new members of the segment join).
NPS_INTERVAL = timedelta(hours=6)
_EPOCH = datetime(2020, 1, 6, tzinfo=UTC)
_NAMES = {CSAT: "CSAT survey", NPS: "NPS survey"}


def _links(
    signer: LinkSigner,
    public_url: str | None,
    customer_id: UUID,
    survey_id: UUID,
    kind: str,
    expires_at: datetime,
) -> dict[str, str]:
    """Score -> the URL that records it with one click (none without a public URL)."""
    if not public_url:
        return {}
    base = public_url.rstrip("/")
    low, high = SCALES[kind]
    links = {}
    for score in range(low, high + 1):
        payload = {"c": str(customer_id), "s": str(survey_id), "n": score}
        links[str(score)] = f"{base}/feedback/{signer.sign(SURVEY_LINK, payload, expires_at)}"
    return links


def survey_spec(
    signer: LinkSigner,
    public_url: str | None,
    policy: SurveyPolicy,
    key: str,
    customer_id: UUID,
    due: datetime,
    channels: Sequence[str],
    conversation_id: UUID | None = None,
    agent: str | None = None,
    unless_replied_since: datetime | None = None,
) -> OccurrenceSpec:
    """The occurrence that asks ``policy``'s question: its template on ``channels``, and
    ``event.survey`` for the template (id, kind, agent, and the signed links that expire
    with the answer window)."""
    survey_id = occurrence_id(key)
    expires = due + policy.answer_window
    links = _links(signer, public_url, customer_id, survey_id, policy.kind, expires)
    survey = {"id": str(survey_id), "kind": policy.kind, "agent": agent, "links": links}
    return OccurrenceSpec(
        key=key,
        customer_id=customer_id,
        due_at=due,
        plan=Plan(purpose="service", channels=tuple(channels), template=policy.template),
        source=Source(kind=SOURCE_KIND, id=policy.kind, name=_NAMES[policy.kind]),
        conversation_id=conversation_id,
        unless_replied_since=unless_replied_since,
        event={"survey": survey},
    )


def _spread(customer_id: UUID, span: timedelta) -> timedelta:
    """A fixed point of ``span`` for this customer (the same on every planning round)."""
    digest = hashlib.sha256(customer_id.bytes).digest()
    seconds = int(span.total_seconds())
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % max(seconds, 1))


class SurveyWatcher:
    """Plans surveys and reads replies (a ``hub.runtime.scheduler.Planner``, run as one of
    the scheduler's watchers)."""

    name = "surveys"

    def __init__(
        self,
        store: Store,
        views: Engine,
        settings: Settings,
        *,
        batch_size: int = 500,
        max_batches: int = 20,
    ) -> None:
        self._store = store
        self._app = store.app
        self._views = views
        self._public_url = settings.public_url
        self._signer = LinkSigner(store.links_key)
        self._granted_by_contact = ConsentRules.configured(settings.consent).granted_by_contact
        self._batch_size = batch_size
        self._max_batches = max_batches
        owner = f"{LEASE_NAME}-{uuid.uuid4().hex[:12]}"
        self._lease = LogLease(store.state_engine, LEASE_NAME, owner, LEASE_SECONDS)
        #: (policy change time, period) of the last NPS expansion, and when to expand again.
        self._nps_done: tuple[datetime | None, int] | None = None
        self._nps_next = datetime.min.replace(tzinfo=UTC)

    def plan(self, now: datetime) -> int:
        try:
            return self._plan(now)
        except LeaseLost:  # another scheduler's watcher took over meanwhile
            return 0

    def _plan(self, now: datetime) -> int:
        if not self._lease.acquire():
            return 0
        policies = self._app.surveys.policies()
        csat, csat_since = policies[CSAT]
        position = self._lease.position()
        if not any(p.enabled for p, _ in policies.values()):
            # Nothing asks: replies can still answer surveys sent before, but none is open
            # for long, so skipping the log while off loses at most a late answer.
            head = self._app.recorder.max_notification_id() or 0
            self._lease.advance(max(head, position))
            return 0
        new = 0
        for _ in range(self._max_batches):
            envelopes, last = self._store.read_envelopes(position, self._batch_size)
            if last == position:
                break
            if csat.enabled and csat_since is not None:
                new += schedule(self._app, self._csat_specs(csat, csat_since, envelopes, now))
            replies = [
                Incoming(
                    e.customer_id,
                    e.data.message_id,
                    e.data.text,
                    e.recorded_at,
                    # The chat widget marks a survey button's answer (docs/chat.md).
                    via="button" if e.data.metadata.get("survey_choice") is True else "reply",
                    written_at=e.occurred_at,
                )
                for e in envelopes
                if isinstance(e, InteractionReceived) and not e.erased and e.data.text
            ]
            scored, commented = self._app.surveys.record_replies(replies)
            if scored or commented:
                log.info("surveys: %d scores and %d comments from replies", scored, commented)
            self._lease.advance(last)
            position = last
        nps, nps_since = policies[NPS]
        if nps.enabled:
            new += self._plan_nps(nps, nps_since, now)
        return new

    def _csat_specs(
        self, policy: SurveyPolicy, since: datetime, envelopes: Sequence[Envelope], now: datetime
    ) -> list[OccurrenceSpec]:
        resolved = [
            e
            for e in envelopes
            if isinstance(e, ConversationStatusChanged)
            and not e.erased
            and e.data.status == "resolved"
            and e.recorded_at >= since
            and e.occurred_at + timedelta(minutes=policy.delay_minutes) >= now - GRACE
        ]
        if not resolved:
            return []
        ids = [e.data.conversation_id for e in resolved]
        conversations = self._app.surveys.conversations(ids)
        allowed = self._members(policy, {e.customer_id for e in resolved}, now)
        specs = []
        for e in resolved:
            cid, conversation = e.customer_id, e.data.conversation_id
            if conversation not in conversations or cid not in allowed:
                continue
            channel, assignee = conversations[conversation]
            specs.append(
                self._spec(
                    policy,
                    f"survey:{CSAT}:{conversation}:{e.id}",
                    cid,
                    e.occurred_at + timedelta(minutes=policy.delay_minutes),
                    policy.channels or (channel,),
                    conversation,
                    e.data.actor or assignee,
                    unless_replied_since=e.occurred_at,
                )
            )
        return specs

    def _spec(self, policy: SurveyPolicy, *args: Any, **kwargs: Any) -> OccurrenceSpec:
        return survey_spec(self._signer, self._public_url, policy, *args, **kwargs)

    def _tree(self, policy: SurveyPolicy) -> Filter | None:
        """The policy's segment (every customer without one); None if it is gone."""
        if policy.segment_id is None:
            return AllOf(all=[])
        try:
            return self._app.segments.get(policy.segment_id).tree
        except NotFound:  # deleted since the policy was saved
            log.warning("%s survey: its segment %s is gone", policy.kind, policy.segment_id)
            return None

    def _members(self, policy: SurveyPolicy, customers: set[UUID], now: datetime) -> set[UUID]:
        if policy.segment_id is None:
            return customers
        tree = self._tree(policy)
        if tree is None:
            return set()
        ctx = FilterContext(now=now, granted_by_contact=self._granted_by_contact)
        with self._views.connect() as conn:
            return in_segment(conn, tree, ctx, customers)

    def _plan_nps(self, policy: SurveyPolicy, since: datetime | None, now: datetime) -> int:
        span = timedelta(days=policy.every_days)
        period = int((now - _EPOCH) / span)
        if self._nps_done == (since, period) and now < self._nps_next:
            return 0
        tree = self._tree(policy)
        if tree is None:
            return 0
        start, end = _EPOCH + period * span, _EPOCH + (period + 1) * span
        ctx = FilterContext(now=now, granted_by_contact=self._granted_by_contact)
        new, after = 0, None
        while True:
            with self._views.connect() as conn:
                ids, after = segment_page(conn, tree, ctx, 500, after)
            specs = []
            for cid in ids:
                due = start + _spread(cid, span)
                if due < now:  # planned late (enabled mid-period): spread over what is left
                    due = now + _spread(cid, end - now)
                key = f"survey:{NPS}:{cid}:{period}"
                specs.append(self._spec(policy, key, cid, due, policy.channels))
            new += schedule(self._app, specs)
            if after is None:
                break
        self._nps_done, self._nps_next = (since, period), now + NPS_INTERVAL
        return new
