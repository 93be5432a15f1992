"""Service levels: the business calendars and SLA policies response and resolution times are
measured by (docs/analytics.md), and the breaches the scheduler records.

- :class:`ServiceBook`, one aggregate per hub, holds every calendar and every SLA policy by
  name (``CalendarSaved``, ``PolicySaved``, ``...Deleted``, with who). Its events are internal:
  they are the company's definitions, holding no customer's data. One aggregate keeps the
  two consistent (a policy names a calendar that exists; a calendar in use cannot go) and
  gives every set of definitions a version.
- :class:`Definitions` is a snapshot of the book that measures: which policy a conversation
  falls under, business seconds between two instants, when a target falls due. The service
  projection (``hub.projections.service``) and the SLA watcher take one; a projection rebuild
  measures the whole history with the current definitions.
- :class:`SlaBreach`, one per conversation, target and clock start (its id is derived from
  them), records that a target passed; published as ``conversation.sla_breached.v1``. Two
  schedulers racing record it once: the second finds it, or loses on the store's uniqueness.

A policy::

    {"calendar": "vilnius-office",            # or null: the "default" calendar, else 24/7
     "first_response_minutes": 60, "next_response_minutes": 240,
     "resolution_minutes": 2880,              # each optional; at least one
     "channels": ["email", "sms"], "tags": ["vip"],   # the conversations it covers (empty: any)
     "segments": ["0190f1c2-..."],            # saved segments' ids (empty: any customer)
     "priority": 10, "description": "VIP email and SMS"}

A conversation falls under the first policy (lowest ``priority``, then name) whose channels
include its channel, whose tags share one with its customer's and whose segments include one
its customer (the group) is in. A policy names segments that exist (:class:`SegmentMissing`
otherwise); one deleted later matches nobody. Which segments a customer is in is the service
projection's to find out, in SQL: :class:`Definitions` carries the filter trees of the
segments the policies use.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.calendars import ALWAYS, BusinessCalendar, check_calendar
from hub.domain.errors import Conflict, DomainError, InvalidCommand, NotFound
from hub.domain.model import Customer
from hub.domain.segments import Segment
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.common import Channel, check_text
from hub.events.segments import Filter, parse_filter

__all__ = [
    "BOOK_ID",
    "DEFAULT_CALENDAR",
    "MAX_SEGMENTS",
    "TARGETS",
    "BreachSpec",
    "DefinitionRecord",
    "Definitions",
    "SegmentMissing",
    "ServiceBook",
    "ServiceLevelCommands",
    "SlaBreach",
    "SlaPolicy",
    "check_name",
    "check_policy",
]

_NAMESPACE = UUID("5d0f3c1e-7b2a-4f8e-9c61-2a7e4b9d0c13")
BOOK_ID = uuid5(_NAMESPACE, "service-book")
#: The calendar of conversations no policy names one for, when it is defined.
DEFAULT_CALENDAR = "default"
#: What a policy sets targets for, with the definition key of each.
TARGETS = {
    "first_response": "first_response_minutes",
    "next_response": "next_response_minutes",
    "resolution": "resolution_minutes",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHANNELS = frozenset(Channel.__args__)  # type: ignore[attr-defined]
_POLICY_KEYS = frozenset(
    {*TARGETS.values(), "calendar", "channels", "tags", "segments", "priority", "description"}
)
_MAX_MINUTES = 366 * 24 * 60
#: How many segments one policy may name.
MAX_SEGMENTS = 20
#: The consent purposes granted by the customer writing to you, unless told otherwise
#: (``HUB_CONSENT__PURPOSES``: ``ServiceLevelCommands.granted_by_contact``).
_GRANTED_BY_CONTACT = frozenset({"service"})


class SegmentMissing(DomainError):
    """A policy names a segment that does not exist, or was deleted."""

    code = "segment_missing"
    status = 422


def check_name(name: str, what: str) -> str:
    """A calendar's or policy's name (it goes in a URL): letters, digits, ``_.-``."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidCommand(
            f"a {what} name is 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or a digit",
            field="name",
        )
    return name


def check_policy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical stored form of an SLA policy, or :class:`InvalidCommand` naming the
    field (whether its calendar exists is the book's to say)."""
    if not isinstance(raw, Mapping):
        raise InvalidCommand("a policy is a JSON object", field="")
    unknown = sorted(str(k) for k in raw if k not in _POLICY_KEYS)
    if unknown:
        raise InvalidCommand(f"unknown field {unknown[0]!r}", field=unknown[0])
    policy: dict[str, Any] = {}
    for key in TARGETS.values():
        value = raw.get(key)
        if value is None:
            policy[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_MINUTES:
            raise InvalidCommand(f"{key} is a whole number of minutes, 1-{_MAX_MINUTES}", field=key)
        policy[key] = value
    if all(policy[k] is None for k in TARGETS.values()):
        raise InvalidCommand(
            "a policy sets at least one target (first_response_minutes, "
            "next_response_minutes, resolution_minutes)",
            field="first_response_minutes",
        )
    calendar = raw.get("calendar")
    if calendar is not None and (
        not isinstance(calendar, str) or not NAME_PATTERN.fullmatch(calendar)
    ):
        raise InvalidCommand("calendar is a calendar's name, or null", field="calendar")
    policy["calendar"] = calendar
    channels = raw.get("channels") or []
    if not isinstance(channels, list) or any(
        not isinstance(c, str) or c not in _CHANNELS for c in channels
    ):
        raise InvalidCommand(
            f"channels is a list of channels ({', '.join(sorted(_CHANNELS))})", field="channels"
        )
    policy["channels"] = sorted(set(channels))
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or len(tags) > 50 or any(not isinstance(t, str) for t in tags):
        raise InvalidCommand("tags is a list of at most 50 tags", field="tags")
    policy["tags"] = sorted({t for t in (_text(t, "tags", 100) for t in tags) if t})
    policy["segments"] = _segment_ids(raw.get("segments") or [])
    priority = raw.get("priority", 100)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 10_000:
        raise InvalidCommand("priority is a whole number, 0-10000 (lower first)", field="priority")
    policy["priority"] = priority
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise InvalidCommand("description is text", field="description")
    policy["description"] = _text(description, "description", 500)
    return policy


def _segment_ids(raw: object) -> list[str]:
    """Segment ids, canonical (lowercase, sorted, once each)."""
    refusal = InvalidCommand(
        f"segments is a list of at most {MAX_SEGMENTS} segment ids", field="segments"
    )
    if not isinstance(raw, list) or any(not isinstance(i, str) for i in raw):
        raise refusal
    try:
        ids = {str(UUID(i)) for i in raw}
    except ValueError:
        raise refusal from None
    if len(ids) > MAX_SEGMENTS:
        raise refusal
    return sorted(ids)


def _text(value: str, name: str, limit: int) -> str:
    try:
        check_text(value)
    except ValueError as exc:
        raise InvalidCommand(f"{name}: {exc}", field=name) from None
    if len(value) > limit:
        raise InvalidCommand(f"{name}: at most {limit} characters", field=name)
    return value.strip()


# -- the book ------------------------------------------------------------------------------


class ServiceBook(Aggregate):
    """Every calendar and SLA policy of the hub, by name."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return BOOK_ID

    @event("Started")
    def __init__(self) -> None:
        #: name -> {"definition", "changed_at", "actor"}
        self.calendars: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}

    @event("CalendarSaved")
    def save_calendar(
        self, name: str, definition: dict[str, Any], actor: str | None, changed_at: datetime
    ) -> None:
        entry = {"definition": definition, "changed_at": changed_at, "actor": actor}
        self.calendars = {**self.calendars, name: entry}

    @event("CalendarDeleted")
    def delete_calendar(self, name: str, actor: str | None) -> None:
        self.calendars = {k: v for k, v in self.calendars.items() if k != name}

    @event("PolicySaved")
    def save_policy(
        self, name: str, definition: dict[str, Any], actor: str | None, changed_at: datetime
    ) -> None:
        entry = {"definition": definition, "changed_at": changed_at, "actor": actor}
        self.policies = {**self.policies, name: entry}

    @event("PolicyDeleted")
    def delete_policy(self, name: str, actor: str | None) -> None:
        self.policies = {k: v for k, v in self.policies.items() if k != name}


@dataclass(frozen=True, slots=True)
class DefinitionRecord:
    """A calendar or a policy as the API shows it."""

    name: str
    definition: dict[str, Any]
    changed_at: datetime
    actor: str | None


# -- what measures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """A policy ready to measure with: its targets in seconds of its calendar's time."""

    name: str
    calendar: BusinessCalendar
    targets: Mapping[str, float]
    channels: frozenset[str]
    tags: frozenset[str]
    priority: int
    segments: frozenset[UUID] = frozenset()

    def covers(self, channel: str, tags: Collection[str], segments: Collection[UUID] = ()) -> bool:
        return (
            (not self.channels or channel in self.channels)
            and (not self.tags or not self.tags.isdisjoint(tags))
            and (not self.segments or not self.segments.isdisjoint(segments))
        )


@dataclass(frozen=True)
class Definitions:
    """One version of the book, measuring (what ``hub.projections.service.ServiceLevels``
    asks for). ``segment_filters`` are the filter trees of the segments the policies name,
    as they were when the definitions were read (a deleted one is absent: it matches
    nobody); ``granted_by_contact`` the consent purposes their consent conditions count as
    granted by the customer writing."""

    version: int
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    policies: tuple[SlaPolicy, ...] = ()
    segment_filters: Mapping[UUID, Filter] = field(default_factory=dict)
    granted_by_contact: frozenset[str] = _GRANTED_BY_CONTACT

    @classmethod
    def of(
        cls,
        book: ServiceBook | None,
        segments: Mapping[UUID, Filter] | None = None,
        granted_by_contact: frozenset[str] = _GRANTED_BY_CONTACT,
    ) -> Definitions:
        """The definitions of ``book``, with the trees of the ``segments`` its policies
        name (those absent match nobody)."""
        if book is None:
            return cls(version=0, granted_by_contact=granted_by_contact)
        calendars = {
            name: BusinessCalendar.of(name, entry["definition"])
            for name, entry in sorted(book.calendars.items())
        }
        policies = []
        for name, entry in book.policies.items():
            d = entry["definition"]
            policies.append(
                SlaPolicy(
                    name=name,
                    calendar=calendars.get(d["calendar"] or DEFAULT_CALENDAR, ALWAYS),
                    targets={t: d[k] * 60.0 for t, k in TARGETS.items() if d[k] is not None},
                    channels=frozenset(d["channels"]),
                    tags=frozenset(d["tags"]),
                    priority=d["priority"],
                    segments=frozenset(UUID(i) for i in d.get("segments", ())),
                )
            )
        policies.sort(key=lambda p: (p.priority, p.name))
        used = {i for p in policies for i in p.segments}
        trees = {i: tree for i, tree in (segments or {}).items() if i in used}
        return cls(
            version=book.version,
            calendars=calendars,
            policies=tuple(policies),
            segment_filters=trees,
            granted_by_contact=granted_by_contact,
        )

    def policy_for(
        self, channel: str, tags: Collection[str], segments: Collection[UUID] = ()
    ) -> str | None:
        """The name of the policy a conversation on ``channel`` of a customer with ``tags``,
        in ``segments`` (among those of :attr:`segment_filters`), falls under, if any."""
        for policy in self.policies:
            if policy.covers(channel, tags, segments):
                return policy.name
        return None

    def calendar_of(self, policy: str | None) -> BusinessCalendar:
        """The calendar ``policy`` counts in (none: the ``default`` calendar, or 24/7)."""
        for p in self.policies:
            if p.name == policy:
                return p.calendar
        return self.calendars.get(DEFAULT_CALENDAR, ALWAYS)

    def business_seconds(self, policy: str | None, start: datetime, end: datetime) -> float:
        return self.calendar_of(policy).business_seconds(start, end)

    def due(self, policy: str | None, target: str, since: datetime) -> datetime | None:
        """When ``target`` falls due for a clock started at ``since`` (None: no target)."""
        for p in self.policies:
            if p.name == policy:
                seconds = p.targets.get(target)
                if seconds is None:
                    return None
                return p.calendar.add_business_seconds(since, seconds)
        return None


# -- breaches ------------------------------------------------------------------------------


def breach_id(conversation_id: UUID, target: str, clock_started_at: datetime) -> UUID:
    started = clock_started_at.astimezone(UTC).isoformat()
    return uuid5(_NAMESPACE, f"breach/{conversation_id}/{target}/{started}")


class SlaBreach(Aggregate):
    """A target passed (published as ``conversation.sla_breached.v1``)."""

    @staticmethod
    def create_id(conversation_id: UUID, target: str, clock_started_at: datetime, **_: Any) -> UUID:
        return breach_id(conversation_id, target, clock_started_at)

    @event("Recorded")
    def __init__(
        self,
        conversation_id: UUID,
        target: str,
        clock_started_at: datetime,
        customer_id: UUID,
        policy: str,
        due_at: datetime,
        channel: str,
        correlation_id: UUID,
    ) -> None:
        self.conversation_id = conversation_id
        self.target = target
        self.clock_started_at = clock_started_at
        self.customer_id = customer_id
        self.policy = policy
        self.due_at = due_at
        self.channel = channel
        self.correlation_id = correlation_id


@dataclass(frozen=True, slots=True)
class BreachSpec:
    """A breach to record, as the service projection found it due."""

    conversation_id: UUID
    customer_id: UUID
    target: str
    clock_started_at: datetime
    policy: str
    due_at: datetime
    channel: str


# -- commands ------------------------------------------------------------------------------


class ServiceLevelCommands:
    """Calendars, policies and breaches (``HubApplication.service_levels``)."""

    def __init__(
        self,
        runner: CommandRunner,
        *,
        max_age: float = 5.0,
        granted_by_contact: frozenset[str] = _GRANTED_BY_CONTACT,
    ) -> None:
        self._runner = runner
        self._snapshot = Definitions(version=-1)
        #: What the snapshot was read from: the book's version and the versions of the
        #: segments its policies name (a changed segment filter is read again too).
        self._key: tuple[Any, ...] = ()
        #: How long :meth:`definitions` trusts its snapshot before it reads the book again
        #: (a change made by another process is seen within this time; one made here at once).
        self._max_age = max_age
        self._read_at = -math.inf
        #: The consent purposes the segments' consent conditions count as granted by the
        #: customer writing (the hub's consent rules; the built-in ``service`` unless set).
        self.granted_by_contact = granted_by_contact

    # calendars

    def save_calendar(
        self, name: str, definition: Mapping[str, Any], *, actor: str | None
    ) -> tuple[DefinitionRecord, bool]:
        """Save a calendar; the record and whether it is new. The same definition again
        records nothing."""
        wanted = check_name(name, "calendar")
        checked = check_calendar(definition)

        def command(uow: UnitOfWork) -> tuple[DefinitionRecord, bool]:
            book = _book(uow)
            entry = book.calendars.get(wanted)
            if entry is None or entry["definition"] != checked:
                book.save_calendar(
                    name=wanted, definition=checked, actor=actor, changed_at=datetime.now(UTC)
                )
                uow.collect(book)
            return _record(wanted, book.calendars[wanted]), entry is None

        try:
            return self._runner.run(command)
        finally:
            self._changed()

    def delete_calendar(self, name: str, *, actor: str | None) -> None:
        """Delete a calendar; :class:`NotFound`, or :class:`Conflict` (``calendar_in_use``)
        while a policy counts in it."""

        def command(uow: UnitOfWork) -> None:
            book = _book(uow)
            if name not in book.calendars:
                raise NotFound(f"no calendar {name!r}", name=name)
            users = sorted(
                p for p, e in book.policies.items() if e["definition"]["calendar"] == name
            )
            if users:
                raise Conflict(
                    "calendar_in_use",
                    f"the SLA policy {users[0]!r} counts in calendar {name!r}: change it first",
                    policies=users,
                )
            book.delete_calendar(name=name, actor=actor)
            uow.collect(book)

        try:
            self._runner.run(command)
        finally:
            self._changed()

    def calendars(self) -> list[DefinitionRecord]:
        return self._runner.read(lambda uow: _records(_peek(uow), "calendars"))

    def calendar(self, name: str) -> DefinitionRecord:
        return _one(self.calendars(), name, "calendar")

    # policies

    def save_policy(
        self, name: str, definition: Mapping[str, Any], *, actor: str | None
    ) -> tuple[DefinitionRecord, bool]:
        """Save an SLA policy; the record and whether it is new. Its calendar must exist
        (:class:`InvalidCommand` on ``calendar``), and its segments (:class:`SegmentMissing`
        on ``segments``)."""
        wanted = check_name(name, "policy")
        checked = check_policy(definition)

        def command(uow: UnitOfWork) -> tuple[DefinitionRecord, bool]:
            book = _book(uow)
            calendar = checked["calendar"]
            if calendar is not None and calendar not in book.calendars:
                raise InvalidCommand(
                    f"no calendar {calendar!r}: PUT /v1/calendars/{calendar} first",
                    field="calendar",
                )
            found = _segments(uow, [UUID(i) for i in checked["segments"]])
            for segment_id in checked["segments"]:
                if UUID(segment_id) not in found:
                    raise SegmentMissing(
                        f"no segment {segment_id}", field="segments", segment_id=segment_id
                    )
            entry = book.policies.get(wanted)
            if entry is None or entry["definition"] != checked:
                book.save_policy(
                    name=wanted, definition=checked, actor=actor, changed_at=datetime.now(UTC)
                )
                uow.collect(book)
            return _record(wanted, book.policies[wanted]), entry is None

        try:
            return self._runner.run(command)
        finally:
            self._changed()

    def delete_policy(self, name: str, *, actor: str | None) -> None:
        def command(uow: UnitOfWork) -> None:
            book = _book(uow)
            if name not in book.policies:
                raise NotFound(f"no SLA policy {name!r}", name=name)
            book.delete_policy(name=name, actor=actor)
            uow.collect(book)

        try:
            self._runner.run(command)
        finally:
            self._changed()

    def policies(self) -> list[DefinitionRecord]:
        return self._runner.read(lambda uow: _records(_peek(uow), "policies"))

    def policy(self, name: str) -> DefinitionRecord:
        return _one(self.policies(), name, "SLA policy")

    # measuring

    def definitions(self) -> Definitions:
        """The current definitions: those this process saved at once, another process's
        within ``max_age`` seconds. Projections ask for them with every batch, so most calls
        answer from memory, without the store or the command lock."""
        if time.monotonic() - self._read_at < self._max_age:
            return self._snapshot

        def query(uow: UnitOfWork) -> Definitions:
            book = _peek(uow)
            named = sorted(
                {
                    UUID(i)
                    for entry in (book.policies.values() if book is not None else ())
                    for i in entry["definition"].get("segments", ())
                }
            )
            segments = _segments(uow, named)
            key = (
                book.version if book is not None else 0,
                tuple((i, segments[i].version) for i in named if i in segments),
                self.granted_by_contact,
            )
            if key != self._key:
                trees = {i: tree for i, s in segments.items() if (tree := _tree(s)) is not None}
                self._snapshot = Definitions.of(book, trees, self.granted_by_contact)
                self._key = key
            self._read_at = time.monotonic()
            return self._snapshot

        return self._runner.read(query)

    def _changed(self) -> None:
        self._read_at = -math.inf  # read the book again at the next call

    def record_breaches(self, specs: Collection[BreachSpec]) -> int:
        """Record these breaches; those recorded before (a replay, a racing scheduler) and
        those of erased customers are passed over. How many were new."""

        def command(uow: UnitOfWork) -> int:
            ids = [breach_id(s.conversation_id, s.target, s.clock_started_at) for s in specs]
            uow.load([*ids, *{s.customer_id for s in specs}])
            new = 0
            for bid, spec in zip(ids, specs, strict=True):
                customer = uow.get(Customer, spec.customer_id)
                if (
                    uow.get(SlaBreach, bid) is not None
                    or customer is None
                    or customer.erased_at is not None
                ):
                    continue
                breach = SlaBreach(
                    conversation_id=spec.conversation_id,
                    target=spec.target,
                    clock_started_at=spec.clock_started_at.astimezone(UTC),
                    customer_id=spec.customer_id,
                    policy=spec.policy,
                    due_at=spec.due_at.astimezone(UTC),
                    channel=spec.channel,
                    correlation_id=bid,
                )
                uow.add(breach)
                uow.collect(breach)
                new += 1
            return new

        return self._runner.run(command)


def _peek(uow: UnitOfWork) -> ServiceBook | None:
    return uow.get(ServiceBook, BOOK_ID)


def _segments(uow: UnitOfWork, segment_ids: Collection[UUID]) -> dict[UUID, Segment]:
    """Those of these segments that exist and are not deleted, read in one go."""
    if not segment_ids:
        return {}
    uow.load(list(segment_ids))
    found = {i: uow.get(Segment, i) for i in segment_ids}
    return {i: s for i, s in found.items() if s is not None and not s.deleted}


def _tree(segment: Segment) -> Filter | None:
    """The segment's filter tree (None: one the filter language no longer takes, which
    matches nobody rather than stopping the measuring)."""
    try:
        return parse_filter(segment.conditions)
    except ValueError:
        return None


def _book(uow: UnitOfWork) -> ServiceBook:
    book = _peek(uow)
    if book is None:
        book = ServiceBook()
        uow.add(book)
    return book


def _record(name: str, entry: Mapping[str, Any]) -> DefinitionRecord:
    return DefinitionRecord(
        name=name,
        definition=entry["definition"],
        changed_at=entry["changed_at"],
        actor=entry["actor"],
    )


def _records(book: ServiceBook | None, kind: str) -> list[DefinitionRecord]:
    entries: dict[str, dict[str, Any]] = getattr(book, kind) if book is not None else {}
    return [_record(name, entries[name]) for name in sorted(entries, key=str.casefold)]


def _one(records: list[DefinitionRecord], name: str, what: str) -> DefinitionRecord:
    for record in records:
        if record.name == name:
            return record
    raise NotFound(f"no {what} {name!r}", name=name)
