"""Rules and campaigns: what plans automated messages ahead (docs/automation.md, "Rules" and
"Campaigns").

- :class:`Automation`, one aggregate per rule or campaign (UUIDv7), records ``Defined``,
  ``Changed``, ``Planned`` (a campaign's audience was expanded into occurrences) and
  ``Deleted``, with its :class:`Definition` as a dict and who;
- :class:`AutomationIndex`, one per hub, lists them by name: names are unique (case
  ignored) because two commands taking the same name both write the index's next version;
- their events are internal (not published): a rule is the company's definition, holding
  no customer's data.

Three kinds: ``date`` (a birthday, the first contact's anniversary, a date attribute, at a
local time in each customer's zone), ``event`` (a published event that matches, after a
delay, optionally for customers of a segment) and ``campaign`` (a segment, at a time). The
planners that turn them into occurrences live in ``hub.runtime.automation``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, get_args
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.errors import Conflict, DomainError, InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.domain.segments import Segment
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.common import Channel, check_text

__all__ = [
    "CAMPAIGN",
    "DATE",
    "DATE_FIELDS",
    "EVENT",
    "INDEX_ID",
    "KINDS",
    "MAX_DELAY",
    "MAX_NAME",
    "PURPOSES",
    "TRIGGER_TYPES",
    "Automation",
    "AutomationCommands",
    "AutomationIndex",
    "AutomationRecord",
    "Definition",
    "check_definition",
]

INDEX_ID = uuid5(UUID("0b7f6a52-93c4-4d1e-a8f0-6c2e5d9b1a47"), "automation-index")
DATE, EVENT, CAMPAIGN = "date", "event", "campaign"
KINDS = (DATE, EVENT, CAMPAIGN)
PURPOSES = ("service", "marketing")
#: The profile dates a date rule reads besides date attributes (``attributes.<key>``).
DATE_FIELDS = ("birthday", "first_contact")
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_TEMPLATE = 100
MAX_MATCH = 10
MAX_MATCH_VALUE = 200
MAX_OFFSET_DAYS = 366
MAX_DELAY = timedelta(days=366)
MAX_THROTTLE = 1000.0
#: The published events an event rule may follow: what customers and agents do. Not the
#: hub's own sends (``interaction.queued.v1``, ``interaction.sent.v1``, delivery updates,
#: ``scheduled_message.*``): a rule on those would answer its own messages without end.
TRIGGER_TYPES = frozenset(
    {
        "customer.created.v1",
        "customer.identity_linked.v1",
        "customer.tags_changed.v1",
        "customer.profile_updated.v1",
        "customer.consent_changed.v1",
        "conversation.opened.v1",
        "conversation.status_changed.v1",
        "conversation.assigned.v1",
        "interaction.received.v1",
        "note.added.v1",
    }
)
_CHANNELS = frozenset(get_args(Channel)) - {"api", "voice"}
_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MATCH_PATH = re.compile(r"^data(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,4}$")


class SegmentMissing(DomainError):
    """The rule or campaign names a segment that does not exist (or was deleted)."""

    code = "segment_missing"
    status = 422


@dataclass(frozen=True)
class Definition:
    """What a rule or campaign is: everything the API sets. Fields of the other kinds stay
    at their defaults (None)."""

    kind: str
    name: str
    template: str
    channels: tuple[str, ...]
    purpose: str = "service"
    enabled: bool = True
    description: str | None = None
    #: date rules: ``birthday``, ``first_contact`` or ``attributes.<key>`` (a date attribute)
    date_field: str | None = None
    offset_days: int = 0
    #: date rules, and campaigns at a local time: the time in each customer's zone
    local_time: time | None = None
    #: date attributes: every year (True) or once, on the date itself (False)
    yearly: bool = True
    #: event rules
    event_type: str | None = None
    match: Mapping[str, Any] = field(default_factory=dict)
    delay: timedelta = timedelta(0)
    #: event rules: a condition (the customer is in it); campaigns: the audience
    segment_id: UUID | None = None
    #: campaigns: an absolute time, or a date (with ``local_time``) in each customer's zone
    at: datetime | None = None
    on: date | None = None
    #: campaigns: messages per second (None: as fast as the dispatcher sends)
    throttle: float | None = None

    def stored(self) -> dict[str, Any]:
        """The definition as an event holds it (JSON types, UUIDs and datetimes)."""
        values = asdict(self)
        values["channels"] = list(self.channels)
        values["match"] = dict(self.match)
        values["local_time"] = self.local_time.strftime("%H:%M") if self.local_time else None
        values["delay"] = self.delay.total_seconds()
        values["on"] = self.on.isoformat() if self.on else None
        return values

    @classmethod
    def loaded(cls, values: Mapping[str, Any]) -> Definition:
        given = dict(values)
        given["channels"] = tuple(given["channels"])
        given["local_time"] = (
            time.fromisoformat(given["local_time"]) if given["local_time"] else None
        )
        given["delay"] = timedelta(seconds=given["delay"])
        given["on"] = date.fromisoformat(given["on"]) if given["on"] else None
        return cls(**given)

    @property
    def yearly_date(self) -> bool:
        """Whether a date rule recurs every year (birthdays and anniversaries always do)."""
        return self.date_field in DATE_FIELDS or self.yearly


class Automation(Aggregate):
    """One rule or campaign (internal events)."""

    @staticmethod
    def create_id(automation_id: UUID, **_: Any) -> UUID:
        return automation_id

    @event("Defined")
    def __init__(self, automation_id: UUID, definition: dict[str, Any], actor: str | None) -> None:
        self.definition = definition
        self.created_by = actor
        self.changed_by = actor
        self.deleted = False
        self.planned: int | None = None
        self.planned_at: datetime | None = None
        self.missed = False

    @event("Changed")
    def change(self, definition: dict[str, Any], actor: str | None) -> None:
        """The definition as it is now (the whole of it)."""
        self.definition = definition
        self.changed_by = actor

    @event("Planned")
    def plan(self, count: int, at: datetime, missed: bool) -> None:
        """A campaign's audience became ``count`` occurrences (``missed``: its time had
        passed too long ago when a planner first saw it, and nothing was planned)."""
        self.planned = count
        self.planned_at = at
        self.missed = missed

    @event("Deleted")
    def delete(self, actor: str | None) -> None:
        self.deleted = True
        self.changed_by = actor


class AutomationIndex(Aggregate):
    """Every rule's and campaign's id and name (internal); names unique, case ignored."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return INDEX_ID

    @event("Started")
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # automation id (str) -> name

    @event("Listed")
    def list_automation(self, automation_id: UUID, name: str) -> None:
        self.names = self.names | {str(automation_id): name}

    @event("Unlisted")
    def unlist(self, automation_id: UUID) -> None:
        self.names = {k: v for k, v in self.names.items() if k != str(automation_id)}

    def holder_of(self, name: str) -> UUID | None:
        wanted = name.casefold()
        found = next((k for k, v in self.names.items() if v.casefold() == wanted), None)
        return UUID(found) if found is not None else None


@dataclass(frozen=True, slots=True)
class AutomationRecord:
    """A rule or campaign as readers see it. ``state``: ``active`` or ``disabled`` for
    rules; for campaigns ``scheduled`` (waiting for its time), ``planned`` (its audience
    expanded into occurrences), ``missed`` or ``disabled``."""

    automation_id: UUID
    definition: Definition
    state: str
    planned: int | None
    planned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None

    @property
    def kind(self) -> str:
        return self.definition.kind

    @property
    def name(self) -> str:
        return self.definition.name

    @classmethod
    def of(cls, automation: Automation) -> AutomationRecord:
        definition = Definition.loaded(automation.definition)
        return cls(
            automation_id=automation.id,
            definition=definition,
            state=_state(automation, definition),
            planned=automation.planned,
            planned_at=automation.planned_at,
            created_at=automation.created_on,
            updated_at=automation.modified_on,
            created_by=automation.created_by,
            updated_by=automation.changed_by,
        )


def _state(automation: Automation, definition: Definition) -> str:
    if definition.kind == CAMPAIGN and automation.planned_at is not None:
        return "missed" if automation.missed else "planned"
    if not definition.enabled:
        return "disabled"
    return "scheduled" if definition.kind == CAMPAIGN else "active"


# -- checks --------------------------------------------------------------------------------


def _refuse(name: str, message: str) -> InvalidCommand:
    return InvalidCommand(f"{name}: {message}", field=name)


def _text(name: str, value: str, limit: int, *, required: bool = True) -> str:
    try:
        check_text(value)
    except ValueError as exc:
        raise _refuse(name, str(exc)) from None
    trimmed = value.strip()
    if required and not trimmed:
        raise _refuse(name, "must not be empty")
    if len(trimmed) > limit:
        raise _refuse(name, f"at most {limit} characters")
    return trimmed


def check_definition(wanted: Definition) -> Definition:
    """``wanted``, trimmed and complete (the defaults of its kind filled in), or
    :class:`InvalidCommand` naming the field that is wrong."""
    if wanted.kind not in KINDS:
        raise _refuse("kind", f"one of {', '.join(KINDS)}")
    name = _text("name", wanted.name, MAX_NAME)
    about = _text("description", wanted.description or "", MAX_DESCRIPTION, required=False)
    template = _text("template", wanted.template, MAX_TEMPLATE)
    if not wanted.channels:
        raise _refuse("channels", "name at least one channel")
    unknown = [c for c in wanted.channels if c not in _CHANNELS]
    if unknown:
        raise _refuse("channels", f"{unknown[0]!r} is not one of {', '.join(sorted(_CHANNELS))}")
    if len(set(wanted.channels)) != len(wanted.channels):
        raise _refuse("channels", "each channel once")
    if wanted.purpose not in PURPOSES:
        raise _refuse("purpose", f"one of {', '.join(PURPOSES)}")
    checked = replace(wanted, name=name, description=about or None, template=template)
    if wanted.kind == DATE:
        return _date_rule(checked)
    if wanted.kind == EVENT:
        return _event_rule(checked)
    return _campaign(checked)


def _date_rule(d: Definition) -> Definition:
    source = d.date_field or ""
    key = source.removeprefix("attributes.")
    if source not in DATE_FIELDS and not (
        source.startswith("attributes.") and _ATTRIBUTE_KEY.match(key)
    ):
        raise _refuse("date_field", "birthday, first_contact or attributes.<key>")
    if not -MAX_OFFSET_DAYS <= d.offset_days <= MAX_OFFSET_DAYS:
        raise _refuse("offset_days", f"between -{MAX_OFFSET_DAYS} and {MAX_OFFSET_DAYS}")
    return replace(
        d,
        local_time=d.local_time or time(10, 0),
        yearly=d.yearly or source in DATE_FIELDS,
        event_type=None,
        match={},
        delay=timedelta(0),
        segment_id=None,
        at=None,
        on=None,
        throttle=None,
    )


def _event_rule(d: Definition) -> Definition:
    if d.event_type not in TRIGGER_TYPES:
        raise _refuse("event_type", f"one of {', '.join(sorted(TRIGGER_TYPES))}")
    if len(d.match) > MAX_MATCH:
        raise _refuse("match", f"at most {MAX_MATCH} conditions")
    for path, value in d.match.items():
        if not isinstance(path, str) or not _MATCH_PATH.fullmatch(path):
            raise _refuse("match", f"{path!r} is no field path such as data.status")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _refuse("match", f"{path}: a string, number, boolean or null")
        if isinstance(value, str):
            _text("match", value, MAX_MATCH_VALUE, required=False)
    if not timedelta(0) <= d.delay <= MAX_DELAY:
        raise _refuse("delay", f"between 0 and {MAX_DELAY.days} days")
    return replace(
        d, date_field=None, offset_days=0, local_time=None, at=None, on=None, throttle=None
    )


def _campaign(d: Definition) -> Definition:
    if d.segment_id is None:
        raise _refuse("segment_id", "a campaign goes to a segment")
    if (d.at is None) == (d.on is None):
        raise _refuse("at", "give either at (a time) or on (a date, with local_time)")
    if d.at is not None and d.at.tzinfo is None:
        raise _refuse("at", "a time with its zone offset")
    year = d.at.year if d.at is not None else d.on.year if d.on is not None else 2000
    if not 2000 <= year <= 9998:
        raise _refuse("at" if d.at is not None else "date", "a year from 2000 to 9998")
    if d.throttle is not None and not 0 < d.throttle <= MAX_THROTTLE:
        raise _refuse("throttle", f"above 0, at most {MAX_THROTTLE:g} per second")
    return replace(
        d,
        local_time=(d.local_time or time(10, 0)) if d.on is not None else None,
        date_field=None,
        offset_days=0,
        event_type=None,
        match={},
        delay=timedelta(0),
    )


# -- commands ------------------------------------------------------------------------------


class AutomationCommands:
    """Define, change, delete and read rules and campaigns (``HubApplication.automations``)."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    def define(self, definition: Definition, *, actor: str | None) -> AutomationRecord:
        """A new rule or campaign; :class:`Conflict` ``automation_name_taken`` when the
        name is, :class:`SegmentMissing` for a segment that is not there."""
        wanted = check_definition(definition)
        automation_id = uuid7()

        def command(uow: UnitOfWork) -> AutomationRecord:
            _check_segment(uow, wanted)
            index = _index(uow)
            _claim(index, wanted.name, automation_id)
            automation = Automation(
                automation_id=automation_id, definition=wanted.stored(), actor=actor
            )
            index.list_automation(automation_id=automation_id, name=wanted.name)
            uow.add(automation)
            uow.collect(index, automation)
            return AutomationRecord.of(automation)

        return self._runner.run(command)

    def change(
        self, automation_id: UUID, definition: Definition, *, actor: str | None
    ) -> tuple[AutomationRecord, bool]:
        """Make the definition this one (its kind stays); whether anything changed. A
        campaign already planned may only be enabled or disabled (:class:`Conflict`
        ``campaign_planned``)."""
        wanted = check_definition(definition)

        def command(uow: UnitOfWork) -> tuple[AutomationRecord, bool]:
            automation = _require(uow, automation_id)
            current = Definition.loaded(automation.definition)
            if wanted.kind != current.kind:
                raise _refuse("kind", "a rule keeps its kind (define a new one instead)")
            stored = wanted.stored()
            if stored == automation.definition:
                return AutomationRecord.of(automation), False
            if (
                current.kind == CAMPAIGN
                and automation.planned_at is not None
                and replace(wanted, enabled=current.enabled) != current
            ):
                raise Conflict(
                    "campaign_planned",
                    "this campaign's messages are planned already: only enabling or "
                    "disabling it changes anything now",
                    automation_id=str(automation_id),
                )
            if wanted.segment_id != current.segment_id:
                _check_segment(uow, wanted)
            if wanted.name != current.name:
                index = _index(uow)
                _claim(index, wanted.name, automation_id)
                index.list_automation(automation_id=automation_id, name=wanted.name)
                uow.collect(index)
            automation.change(definition=stored, actor=actor)
            uow.collect(automation)
            return AutomationRecord.of(automation), True

        return self._runner.run(command)

    def delete(self, automation_id: UUID, *, actor: str | None) -> bool:
        """Delete it (its planned occurrences stay as they are); whether it was there."""

        def command(uow: UnitOfWork) -> bool:
            automation = uow.get(Automation, automation_id)
            if automation is None:
                raise _not_found(automation_id)
            if automation.deleted:
                return False
            index = _index(uow)
            index.unlist(automation_id=automation_id)
            automation.delete(actor=actor)
            uow.collect(index, automation)
            return True

        return self._runner.run(command)

    def mark_planned(
        self, automation_id: UUID, count: int, at: datetime, *, missed: bool = False
    ) -> bool:
        """Record that a campaign's occurrences are planned (once: again records nothing,
        and returns False)."""

        def command(uow: UnitOfWork) -> bool:
            automation = _require(uow, automation_id)
            if automation.planned_at is not None:
                return False
            automation.plan(count=count, at=at, missed=missed)
            uow.collect(automation)
            return True

        return self._runner.run(command)

    def get(self, automation_id: UUID) -> AutomationRecord:
        """The rule or campaign (:class:`NotFound` when there is none, or it was deleted)."""
        return self._runner.read(lambda uow: AutomationRecord.of(_require(uow, automation_id)))

    def all(self, kind: str | None = None) -> list[AutomationRecord]:
        """Every rule and campaign (of ``kind``), by name."""

        def query(uow: UnitOfWork) -> list[AutomationRecord]:
            index = uow.get(AutomationIndex, INDEX_ID)
            if index is None:
                return []
            ids = [UUID(k) for k in index.names]
            uow.load(ids)
            found = [uow.get(Automation, i) for i in ids]
            records = [AutomationRecord.of(a) for a in found if a is not None and not a.deleted]
            if kind is not None:
                records = [r for r in records if r.kind == kind]
            return sorted(records, key=lambda r: (r.name.casefold(), r.automation_id))

        return self._runner.read(query)


def _check_segment(uow: UnitOfWork, wanted: Definition) -> None:
    if wanted.segment_id is None:
        return
    segment = uow.get(Segment, wanted.segment_id)
    if segment is None or segment.deleted:
        raise SegmentMissing(
            f"no segment {wanted.segment_id}", field="segment_id", id=str(wanted.segment_id)
        )


def _index(uow: UnitOfWork) -> AutomationIndex:
    index = uow.get(AutomationIndex, INDEX_ID)
    if index is None:
        index = AutomationIndex()
        uow.add(index)
    return index


def _claim(index: AutomationIndex, name: str, automation_id: UUID) -> None:
    holder = index.holder_of(name)
    if holder is not None and holder != automation_id:
        raise Conflict(
            "automation_name_taken",
            f"a rule or campaign is already called {name!r}",
            automation_id=str(holder),
        )


def _not_found(automation_id: UUID) -> DomainError:
    return NotFound(f"no rule or campaign {automation_id}", id=str(automation_id))


def _require(uow: UnitOfWork, automation_id: UUID) -> Automation:
    automation = uow.get(Automation, automation_id)
    if automation is None or automation.deleted:
        raise _not_found(automation_id)
    return automation
