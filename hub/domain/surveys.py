"""Satisfaction surveys (docs/surveys.md): the two survey policies, and each customer's
ledger of the questions asked and the answers given.

- :class:`SurveyPolicy`: CSAT (1-5, after a resolved conversation, on its channel) or NPS
  (0-10, every ``every_days`` per customer, to a segment). Both send a template of the
  automation issue, so the question is in the customer's language, through the same
  occurrences as every automated message (consent, quiet hours, the WhatsApp window);
- :class:`SurveyBook`, one per hub, holds both policies (internal events: the company's
  settings, nobody's data);
- :class:`SurveyLedger`, one per customer: ``Asked``, ``Answered`` and ``Commented`` are
  published as ``feedback.requested.v1``, ``feedback.received.v1`` and
  ``feedback.commented.v1``. It answers the policies' questions (was this conversation
  surveyed, when was the last survey of a kind) and which survey a reply answers.

The scheduler plans the occurrences (``hub.runtime.surveys``); firing one checks
:func:`survey_refusal` and records the question with :func:`record_question`, in the same unit
of work as the message (``hub.domain.scheduling``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.automations import SegmentMissing
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import DomainError, InvalidCommand, NotFound
from hub.domain.feedback_replies import parse_reply
from hub.domain.model import Conversation
from hub.domain.segments import Segment
from hub.domain.templates import Template, template_id
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.common import Channel

__all__ = [
    "BOOK_ID",
    "CSAT",
    "KINDS",
    "NPS",
    "SCALES",
    "SOURCE_KIND",
    "Answer",
    "Incoming",
    "SurveyBook",
    "SurveyCommands",
    "SurveyLedger",
    "SurveyPolicy",
    "TemplateMissing",
    "check_survey_policy",
    "is_bare_score",
    "ledger_id",
    "policy_in",
    "record_question",
    "survey_ids",
    "survey_refusal",
]

_NAMESPACE = UUID("3c1f9e6a-0b54-4d2e-9a7f-8e2d61c4b5a0")
BOOK_ID = uuid5(_NAMESPACE, "survey-book")
CSAT, NPS = "csat", "nps"
KINDS = (CSAT, NPS)
#: The lowest and highest score of each kind.
SCALES = {CSAT: (1, 5), NPS: (0, 10)}
#: The source kind of survey occurrences (``hub.domain.automation.Source``).
SOURCE_KIND = "survey"
#: Surveys a ledger keeps in its state (older ones are only in its history).
_KEPT = 50
MAX_COMMENT = 2000
_CHANNELS = frozenset(get_args(Channel)) - {"api", "voice"}
#: NPS: each customer's survey is due at the same point of every period, ``every_days``
#: apart to the second, so "within every_days" allows this much (at most half a period) for
#: the last one having fired a little late.
_NPS_SLACK = timedelta(days=1)


class TemplateMissing(DomainError):
    """An enabled survey names a template that does not exist."""

    code = "template_missing"
    status = 422


def ledger_id(customer_id: UUID) -> UUID:
    """The id of a customer's :class:`SurveyLedger`."""
    return uuid5(_NAMESPACE, f"ledger:{customer_id}")


@dataclass(frozen=True)
class SurveyPolicy:
    """When a survey goes out, and how its answers are read. Off until enabled."""

    kind: str
    enabled: bool = False
    #: The template that asks the question (its variants per language and channel).
    template: str | None = None
    #: CSAT: empty for the conversation's own channel; NPS: the channels in preference order.
    channels: tuple[str, ...] = ()
    #: CSAT: minutes after the resolution, provided the customer did not write meanwhile and
    #: the conversation is still resolved.
    delay_minutes: int = 60
    #: At most one survey of this kind per customer in this many days (NPS: its schedule).
    every_days: int = 30
    #: Only customers of this segment (NPS: its audience; none: every customer).
    segment_id: UUID | None = None
    #: How long after the question a reply still answers it.
    answer_hours: int = 72
    #: How long after a score the customer's next message is taken as its comment (0: never).
    comment_minutes: int = 30

    @property
    def answer_window(self) -> timedelta:
        return timedelta(hours=self.answer_hours)

    @property
    def comment_window(self) -> timedelta:
        return timedelta(minutes=self.comment_minutes)

    def stored(self) -> dict[str, Any]:
        values = asdict(self)
        values["channels"] = list(self.channels)
        values["segment_id"] = str(self.segment_id) if self.segment_id else None
        return values

    @classmethod
    def loaded(cls, values: Mapping[str, Any]) -> SurveyPolicy:
        given = dict(values)
        given["channels"] = tuple(given.get("channels") or ())
        segment = given.get("segment_id")
        given["segment_id"] = UUID(segment) if segment else None
        return cls(**given)


_LIMITS = {
    "delay_minutes": (0, 7 * 24 * 60),
    "every_days": (0, 3660),
    "answer_hours": (1, 30 * 24),
    "comment_minutes": (0, 24 * 60),
}


def check_survey_policy(policy: SurveyPolicy) -> SurveyPolicy:
    """``policy`` if it is whole and in range, else :class:`InvalidCommand` naming the field."""
    if policy.kind not in KINDS:
        raise InvalidCommand(f"no survey kind {policy.kind!r}: csat or nps", field="kind")
    for name, (low, high) in _LIMITS.items():
        value = getattr(policy, name)
        if not low <= value <= high:
            raise InvalidCommand(f"{name} is {low} to {high}", field=name)
    unknown = [c for c in policy.channels if c not in _CHANNELS]
    if unknown:
        raise InvalidCommand(f"no channel {unknown[0]!r} can carry a survey", field="channels")
    if len(set(policy.channels)) != len(policy.channels):
        raise InvalidCommand("a channel is named twice", field="channels")
    if policy.enabled and not policy.template:
        raise InvalidCommand("an enabled survey needs the template that asks it", field="template")
    if policy.enabled and policy.kind == NPS and not policy.channels:
        raise InvalidCommand("an NPS survey needs the channels to send it on", field="channels")
    if policy.kind == NPS and policy.every_days < 1:
        raise InvalidCommand("an NPS survey repeats every 1 day or more", field="every_days")
    return policy


class SurveyBook(Aggregate):
    """The hub's two survey policies."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return BOOK_ID

    @event("Started")
    def __init__(self) -> None:
        #: kind -> {"definition", "changed_at", "actor"}
        self.policies: dict[str, dict[str, Any]] = {}

    @event("PolicySaved")
    def save_policy(
        self, kind: str, definition: dict[str, Any], actor: str | None, changed_at: datetime
    ) -> None:
        entry = {"definition": definition, "changed_at": changed_at, "actor": actor}
        self.policies = {**self.policies, kind: entry}


class SurveyLedger(Aggregate):
    """One customer's surveys: the questions, the scores and the comments. Each event names
    the survey, its conversation and agent, so it is published as it stands."""

    @staticmethod
    def create_id(customer_id: UUID, **_: Any) -> UUID:
        return ledger_id(customer_id)

    @event("Started")
    def __init__(self, customer_id: UUID) -> None:
        self.customer_id = customer_id
        #: The latest surveys, oldest first: dicts of the Asked fields, plus ``score``,
        #: ``answered_at`` and ``commented`` once they happen.
        self.surveys: list[dict[str, Any]] = []

    @event("Asked")
    def ask(
        self,
        customer_id: UUID,
        survey_id: UUID,
        kind: str,
        conversation_id: UUID | None,
        agent: str | None,
        channel: str,
        message_id: UUID,
        asked_at: datetime,
    ) -> None:
        entry = {
            "survey_id": survey_id,
            "kind": kind,
            "conversation_id": conversation_id,
            "agent": agent,
            "channel": channel,
            "asked_at": asked_at,
            "score": None,
            "answered_at": None,
            "commented": False,
        }
        self.surveys = [*self.surveys, entry][-_KEPT:]

    @event("Answered")
    def answer(
        self,
        customer_id: UUID,
        survey_id: UUID,
        kind: str,
        conversation_id: UUID | None,
        agent: str | None,
        channel: str,
        score: int,
        via: str,
        message_id: UUID | None,
        asked_at: datetime,
        answered_at: datetime,
    ) -> None:
        self._update(survey_id, score=score, answered_at=answered_at)

    @event("Commented")
    def comment(
        self,
        customer_id: UUID,
        survey_id: UUID,
        kind: str,
        conversation_id: UUID | None,
        agent: str | None,
        channel: str,
        comment: str | None,
        message_id: UUID | None,
        commented_at: datetime,
    ) -> None:
        """``comment``: encrypted with the customer's key."""
        self._update(survey_id, commented=True)

    def _update(self, survey_id: UUID, **changes: Any) -> None:
        self.surveys = [
            {**s, **changes} if s["survey_id"] == survey_id else s for s in self.surveys
        ]

    def find(self, survey_id: UUID) -> dict[str, Any] | None:
        return next((s for s in self.surveys if s["survey_id"] == survey_id), None)

    def last_asked(self, kind: str) -> datetime | None:
        times = [s["asked_at"] for s in self.surveys if s["kind"] == kind]
        return max(times) if times else None

    def asked_about(self, conversation_id: UUID) -> bool:
        return any(s["conversation_id"] == conversation_id for s in self.surveys)

    def awaiting_answer(
        self, at: datetime, windows: Mapping[str, timedelta]
    ) -> dict[str, Any] | None:
        """The latest survey asked before ``at`` and still open to a reply, if any."""
        for s in reversed(self.surveys):
            if s["asked_at"] <= at:
                window = windows.get(s["kind"])
                fresh = window is not None and at - s["asked_at"] <= window
                return s if fresh and s["score"] is None else None
        return None

    def awaiting_comment(
        self, at: datetime, windows: Mapping[str, timedelta]
    ) -> dict[str, Any] | None:
        """The latest survey answered before ``at`` whose comment window is still open."""
        answered = [s for s in self.surveys if s["answered_at"] is not None]
        if not answered:
            return None
        last = max(answered, key=lambda s: s["answered_at"])
        window = windows.get(last["kind"], timedelta(0))
        if last["commented"] or not last["answered_at"] < at <= last["answered_at"] + window:
            return None
        return last


def _survey_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("survey_id", "kind", "conversation_id", "agent", "channel")}


@dataclass(frozen=True)
class Incoming:
    """An inbound message a survey may be waiting for (``SurveyCommands.record_replies``)."""

    customer_id: UUID
    message_id: UUID
    text: str
    at: datetime
    #: How a score in it was given: ``reply`` (written), ``button`` (a chat widget's button).
    via: str = "reply"
    #: When the customer wrote it (the provider's time): a message written well before the
    #: question went out (an import, a late delivery) answers nothing.
    written_at: datetime | None = None


@dataclass(frozen=True)
class Answer:
    """What became of a survey's answer: ``recorded`` now, or ``already`` answered (the first
    answer stands); the score that stands."""

    outcome: str
    score: int
    kind: str


#: How far a provider's clock may be behind the hub's before a reply counts as written before
#: the question it seems to answer.
_CLOCK_SKEW = timedelta(minutes=5)


def _written_before(reply: Incoming, survey: Mapping[str, Any]) -> bool:
    written = reply.written_at
    return written is not None and written < survey["asked_at"] - _CLOCK_SKEW


def is_bare_score(uow: UnitOfWork, customer_id: UUID, text: str | None, at: datetime) -> bool:
    """Whether ``text`` is nothing but a score answering the customer's open survey (so a
    resolved conversation stays resolved: ``hub.domain.inbound``). Reads the ledger and the
    policies; a comment, or no open survey, is False."""
    if not text:
        return False
    ledger = uow.get(SurveyLedger, ledger_id(customer_id))
    if ledger is None:
        return False
    windows = {kind: policy_in(uow, kind).answer_window for kind in KINDS}
    survey = ledger.awaiting_answer(at, windows)
    if survey is None:
        return False
    parsed = parse_reply(text, survey["kind"])
    return parsed is not None and parsed.comment is None


def policy_in(uow: UnitOfWork, kind: str) -> SurveyPolicy:
    """The saved policy of ``kind`` (off when none was saved)."""
    book = uow.get(SurveyBook, BOOK_ID)
    entry = book.policies.get(kind) if book is not None else None
    return SurveyPolicy.loaded(entry["definition"]) if entry else SurveyPolicy(kind=kind)


def survey_ids(customer_id: UUID) -> list[UUID]:
    """What :func:`survey_refusal` and :func:`record_question` read (to load in bulk)."""
    return [BOOK_ID, ledger_id(customer_id)]


def survey_refusal(
    uow: UnitOfWork,
    customer_id: UUID,
    kind: str,
    conversation_id: UUID | None,
    conversation_status: str | None,
    now: datetime,
) -> tuple[str, str] | None:
    """Why a survey due now is not sent (a skip code and words), or None: the policy was
    turned off, the conversation is open again or was surveyed already, or the customer had
    a survey of this kind within ``every_days``."""
    policy = policy_in(uow, kind)
    if not policy.enabled:
        return "automation_disabled", f"the {kind} survey was turned off"
    ledger = uow.get(SurveyLedger, ledger_id(customer_id))
    if kind == CSAT:
        if conversation_status != "resolved":
            return "conversation_reopened", "the conversation is no longer resolved"
        if ledger is not None and conversation_id and ledger.asked_about(conversation_id):
            return "already_surveyed", "this conversation was surveyed already"
    last = ledger.last_asked(kind) if ledger is not None else None
    recent = timedelta(days=policy.every_days)
    if kind == NPS:
        recent -= min(_NPS_SLACK, recent / 2)
    if last is not None and now - last < recent:
        return "surveyed_recently", f"a {kind} survey went out within {policy.every_days} days"
    return None


def record_question(
    uow: UnitOfWork,
    survey_id: UUID,
    customer_id: UUID,
    kind: str,
    conversation_id: UUID | None,
    agent: str | None,
    channel: str,
    message_id: UUID,
    now: datetime,
) -> None:
    """Note in the customer's ledger that the survey's question went out (with its message)."""
    ledger = uow.get(SurveyLedger, ledger_id(customer_id))
    if ledger is None:
        ledger = SurveyLedger(customer_id=customer_id)
        uow.add(ledger)
    ledger.ask(
        customer_id=customer_id,
        survey_id=survey_id,
        kind=kind,
        conversation_id=conversation_id,
        agent=agent,
        channel=channel,
        message_id=message_id,
        asked_at=now,
    )
    uow.collect(ledger)


class SurveyCommands:
    """Survey policies, and the answers (``HubApplication.surveys``)."""

    def __init__(self, runner: CommandRunner, cipher: PersonalDataCipher) -> None:
        self._runner = runner
        self._cipher = cipher

    def save_policy(self, policy: SurveyPolicy, *, actor: str | None) -> tuple[SurveyPolicy, bool]:
        """Save a policy; it and whether it changed. The same one again records nothing."""
        wanted = check_survey_policy(policy)

        def command(uow: UnitOfWork) -> tuple[SurveyPolicy, bool]:
            if wanted.enabled and wanted.template:
                found = uow.get(Template, template_id(wanted.template))
                if found is None or found.deleted:
                    raise TemplateMissing(
                        f"no template named {wanted.template!r}", field="template"
                    )
            if wanted.segment_id is not None:
                segment = uow.get(Segment, wanted.segment_id)
                if segment is None or segment.deleted:
                    raise SegmentMissing(f"no segment {wanted.segment_id}", field="segment_id")
            book = uow.get(SurveyBook, BOOK_ID)
            if book is None:
                book = SurveyBook()
                uow.add(book)
            entry = book.policies.get(wanted.kind)
            stored = wanted.stored()
            if entry is not None and entry["definition"] == stored:
                return wanted, False
            book.save_policy(
                kind=wanted.kind, definition=stored, actor=actor, changed_at=datetime.now(UTC)
            )
            uow.collect(book)
            return wanted, True

        return self._runner.run(command)

    def policies(self) -> dict[str, tuple[SurveyPolicy, datetime | None]]:
        """Both policies (an unsaved one off), with when each was last changed."""

        def query(uow: UnitOfWork) -> dict[str, tuple[SurveyPolicy, datetime | None]]:
            book = uow.get(SurveyBook, BOOK_ID)
            saved = book.policies if book is not None else {}
            found: dict[str, tuple[SurveyPolicy, datetime | None]] = {}
            for kind in KINDS:
                entry = saved.get(kind)
                if entry is None:
                    found[kind] = (SurveyPolicy(kind=kind), None)
                else:
                    found[kind] = (SurveyPolicy.loaded(entry["definition"]), entry["changed_at"])
            return found

        return self._runner.read(query)

    def policy(self, kind: str) -> SurveyPolicy:
        return self.policies()[kind][0]

    def conversations(self, ids: Sequence[UUID]) -> dict[UUID, tuple[str, str | None]]:
        """The channel and assignee of each of these conversations that exists."""

        def query(uow: UnitOfWork) -> dict[UUID, tuple[str, str | None]]:
            uow.load(ids)
            found = ((i, uow.get(Conversation, i)) for i in ids)
            return {i: (c.channel, c.assignee) for i, c in found if c is not None}

        return self._runner.read(query)

    def record_replies(self, replies: Sequence[Incoming]) -> tuple[int, int]:
        """Read customers' messages as answers to their open surveys: a score answers the
        latest open one (with the rest of the message as its comment), and the next message
        after a score, within the comment window, is its comment. How many scores and how
        many comments were recorded; a message a survey does not wait for changes nothing."""
        if not replies:
            return 0, 0
        policies = {kind: p for kind, (p, _) in self.policies().items()}
        answers = {kind: p.answer_window for kind, p in policies.items()}
        comments = {kind: p.comment_window for kind, p in policies.items()}

        def command(uow: UnitOfWork) -> tuple[int, int]:
            uow.load(ledger_id(r.customer_id) for r in replies)
            scored = commented = 0
            for reply in sorted(replies, key=lambda r: r.at):
                ledger = uow.get(SurveyLedger, ledger_id(reply.customer_id))
                if ledger is None or self._cipher.is_erased(reply.customer_id):
                    continue
                open_survey = ledger.awaiting_answer(reply.at, answers)
                if open_survey is not None and _written_before(reply, open_survey):
                    open_survey = None
                if open_survey is not None:
                    parsed = parse_reply(reply.text, open_survey["kind"])
                    if parsed is not None:
                        at, mid = reply.at, reply.message_id
                        self._answer(ledger, open_survey, parsed.score, reply.via, mid, at)
                        scored += 1
                        if parsed.comment:
                            self._comment(ledger, open_survey, parsed.comment, mid, at)
                            commented += 1
                        uow.collect(ledger)
                        continue
                waiting = ledger.awaiting_comment(reply.at, comments)
                # A button is a score, never a comment (a click after a typed score).
                if waiting is not None and reply.via != "button" and reply.text.strip():
                    self._comment(ledger, waiting, reply.text, reply.message_id, reply.at)
                    commented += 1
                    uow.collect(ledger)
            return scored, commented

        return self._runner.run(command)

    def answer(
        self,
        customer_id: UUID,
        survey_id: UUID,
        score: int,
        *,
        via: str,
        comment: str | None,
        at: datetime | None = None,
    ) -> Answer:
        """A score given by a signed link or a chat button (the first answer stands; a comment
        with it is recorded once), ``at`` now unless told (the demo's history).
        :class:`NotFound` for a survey the ledger does not hold."""

        def command(uow: UnitOfWork) -> Answer:
            ledger = uow.get(SurveyLedger, ledger_id(customer_id))
            entry = ledger.find(survey_id) if ledger is not None else None
            if ledger is None or entry is None or self._cipher.is_erased(customer_id):
                raise NotFound("no such survey", survey_id=str(survey_id))
            low, high = SCALES[entry["kind"]]
            if not low <= score <= high:
                raise InvalidCommand(f"a {entry['kind']} score is {low} to {high}", field="score")
            now = at or datetime.now(UTC)
            outcome = "already"
            if entry["score"] is None:
                self._answer(ledger, entry, score, via, None, now)
                outcome = "recorded"
            entry = ledger.find(survey_id)
            assert entry is not None
            if comment and comment.strip() and not entry["commented"]:
                self._comment(ledger, entry, comment, None, now)
            uow.collect(ledger)
            return Answer(outcome, entry["score"], entry["kind"])

        return self._runner.run(command)

    def _answer(
        self,
        ledger: SurveyLedger,
        entry: Mapping[str, Any],
        score: int,
        via: str,
        message_id: UUID | None,
        at: datetime,
    ) -> None:
        ledger.answer(
            customer_id=ledger.customer_id,
            **_survey_fields(entry),
            score=score,
            via=via,
            message_id=message_id,
            asked_at=entry["asked_at"],
            answered_at=at,
        )

    def _comment(
        self,
        ledger: SurveyLedger,
        entry: Mapping[str, Any],
        text: str,
        message_id: UUID | None,
        at: datetime,
    ) -> None:
        words = text.strip()[:MAX_COMMENT]
        ledger.comment(
            customer_id=ledger.customer_id,
            **_survey_fields(entry),
            comment=self._cipher.encrypt_dated(ledger.customer_id, words, at),
            message_id=message_id,
            commented_at=at,
        )
