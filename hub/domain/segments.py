"""Saved segments: named filters over the directory, kept in the event log (docs/segments.md).

- :class:`Segment`, one aggregate per segment (UUIDv7), records ``Defined``, ``Changed`` and
  ``Deleted`` with the filter (``hub.events.segments``, stored as canonical JSON) and who.
- :class:`SegmentIndex`, one per hub, lists the segments by name: names are unique (case
  ignored) because two commands that take the same name both write the index's next
  version, and the store keeps only one (the other runs again and finds the name taken).
- Their events are internal (not published): a segment is a definition of the company's,
  holding no customer's data, so an erasure leaves it.

Which customers a segment holds is never stored: the views compile its filter to SQL on each
read (``hub.projections.segment_filter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.errors import Conflict, DomainError, InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.common import check_text
from hub.events.segments import (
    AttributeCondition,
    Filter,
    FilterRuleError,
    canonical,
    check_rules,
    leaves,
    parse_filter,
)

__all__ = [
    "INDEX_ID",
    "MAX_NAME",
    "AttributeType",
    "InvalidFilter",
    "Segment",
    "SegmentCommands",
    "SegmentIndex",
    "SegmentRecord",
    "check_attribute_types",
    "check_filter",
    "check_name",
]

#: The one segment index of a hub.
INDEX_ID = uuid5(UUID("5e1f0c1a-7d3b-4e2a-9c55-3b8f6a2d9e10"), "segment-index")
MAX_NAME = 100
MAX_DESCRIPTION = 500


class InvalidFilter(DomainError):
    """A filter the schema takes but this hub cannot evaluate as meant (an attribute compared
    against its type wrongly, a consent purpose not configured)."""

    code = "invalid_filter"
    status = 422


class Segment(Aggregate):
    """A saved filter with a name (internal events)."""

    @staticmethod
    def create_id(segment_id: UUID, **_: Any) -> UUID:
        return segment_id

    @event("Defined")
    def __init__(
        self,
        segment_id: UUID,
        name: str,
        description: str | None,
        conditions: dict[str, Any],
        actor: str | None,
    ) -> None:
        self.name = name
        self.description = description
        self.conditions = conditions
        self.created_by = actor
        self.changed_by = actor
        self.deleted = False

    @event("Changed")
    def change(
        self, name: str, description: str | None, conditions: dict[str, Any], actor: str | None
    ) -> None:
        """The name, description or filter changed (all three as they are now)."""
        self.name = name
        self.description = description
        self.conditions = conditions
        self.changed_by = actor

    @event("Deleted")
    def delete(self, actor: str | None) -> None:
        self.deleted = True
        self.changed_by = actor


class SegmentIndex(Aggregate):
    """Every segment's id and name (internal events); names unique, case ignored."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return INDEX_ID

    @event("Started")
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # segment id (str) -> name

    @event("Listed")
    def list_segment(self, segment_id: UUID, name: str) -> None:
        """A segment is listed under ``name`` (a new one, or a new name)."""
        self.names = self.names | {str(segment_id): name}

    @event("Unlisted")
    def unlist(self, segment_id: UUID) -> None:
        self.names = {k: v for k, v in self.names.items() if k != str(segment_id)}

    def holder_of(self, name: str) -> UUID | None:
        """The segment listed under ``name`` (case ignored), if any."""
        wanted = name.casefold()
        found = next((k for k, v in self.names.items() if v.casefold() == wanted), None)
        return UUID(found) if found is not None else None


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A segment as readers see it; ``filter`` is the canonical JSON of its tree."""

    segment_id: UUID
    name: str
    description: str | None
    filter: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None

    @property
    def tree(self) -> Filter:
        return parse_filter(self.filter)

    @classmethod
    def of(cls, segment: Segment) -> SegmentRecord:
        return cls(
            segment_id=segment.id,
            name=segment.name,
            description=segment.description,
            filter=segment.conditions,
            created_at=segment.created_on,
            updated_at=segment.modified_on,
            created_by=segment.created_by,
            updated_by=segment.changed_by,
        )


def check_filter(tree: Filter) -> Filter:
    """``tree``, or :class:`InvalidFilter` for a rule of the language it breaks (depth,
    size, a value that does not fit its comparison...: ``hub.events.segments.check_rules``)."""
    try:
        check_rules(tree)
    except FilterRuleError as exc:
        raise InvalidFilter(str(exc)) from None
    return tree


def check_name(name: str) -> str:
    """A segment's name, trimmed: 1 to :data:`MAX_NAME` characters of text."""
    try:
        check_text(name)
    except ValueError as exc:
        raise InvalidCommand(f"name: {exc}", field="name") from None
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= MAX_NAME:
        raise InvalidCommand(f"a segment's name has 1 to {MAX_NAME} characters", field="name")
    return trimmed


def _description(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        check_text(text)
    except ValueError as exc:
        raise InvalidCommand(f"description: {exc}", field="description") from None
    if len(text) > MAX_DESCRIPTION:
        raise InvalidCommand(
            f"a description has at most {MAX_DESCRIPTION} characters", field="description"
        )
    return text.strip()


class SegmentCommands:
    """Define, change, delete and read saved segments (``HubApplication.segments``)."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    def define(
        self, name: str, tree: Filter, *, description: str | None = None, actor: str | None
    ) -> SegmentRecord:
        """A new segment; :class:`Conflict` ``segment_name_taken`` when the name is."""
        wanted, about = check_name(name), _description(description)
        conditions = canonical(check_filter(tree))
        segment_id = uuid7()

        def command(uow: UnitOfWork) -> SegmentRecord:
            index = _index(uow)
            _claim(index, wanted, segment_id)
            segment = Segment(
                segment_id=segment_id,
                name=wanted,
                description=about,
                conditions=conditions,
                actor=actor,
            )
            index.list_segment(segment_id=segment_id, name=wanted)
            uow.add(segment)
            uow.collect(index, segment)
            return SegmentRecord.of(segment)

        return self._runner.run(command)

    def change(
        self,
        segment_id: UUID,
        name: str,
        tree: Filter,
        *,
        description: str | None = None,
        actor: str | None,
    ) -> tuple[SegmentRecord, bool]:
        """Make the segment's name, description and filter these; whether anything changed
        (the same again records nothing)."""
        wanted, about = check_name(name), _description(description)
        conditions = canonical(check_filter(tree))

        def command(uow: UnitOfWork) -> tuple[SegmentRecord, bool]:
            segment = _require(uow, segment_id)
            same = (segment.name, segment.description, segment.conditions)
            if same == (wanted, about, conditions):
                return SegmentRecord.of(segment), False
            if segment.name != wanted:
                index = _index(uow)
                _claim(index, wanted, segment_id)
                index.list_segment(segment_id=segment_id, name=wanted)
                uow.collect(index)
            segment.change(name=wanted, description=about, conditions=conditions, actor=actor)
            uow.collect(segment)
            return SegmentRecord.of(segment), True

        return self._runner.run(command)

    def delete(self, segment_id: UUID, *, actor: str | None) -> bool:
        """Delete the segment; whether it was there (deleting again records nothing).
        :class:`NotFound` for an id no segment ever had."""

        def command(uow: UnitOfWork) -> bool:
            segment = uow.get(Segment, segment_id)
            if segment is None:
                raise NotFound(f"no segment {segment_id}", id=str(segment_id))
            if segment.deleted:
                return False
            index = _index(uow)
            index.unlist(segment_id=segment_id)
            segment.delete(actor=actor)
            uow.collect(index, segment)
            return True

        return self._runner.run(command)

    def get(self, segment_id: UUID) -> SegmentRecord:
        """The segment (:class:`NotFound` when there is none, or it was deleted)."""
        return self._runner.read(lambda uow: SegmentRecord.of(_require(uow, segment_id)))

    def all(self) -> list[SegmentRecord]:
        """Every segment, by name."""

        def query(uow: UnitOfWork) -> list[SegmentRecord]:
            index = uow.get(SegmentIndex, INDEX_ID)
            if index is None:
                return []
            ids = [UUID(k) for k in index.names]
            uow.load(ids)
            found = [uow.get(Segment, i) for i in ids]
            records = [SegmentRecord.of(s) for s in found if s is not None and not s.deleted]
            return sorted(records, key=lambda r: (r.name.casefold(), r.segment_id))

        return self._runner.read(query)


def _index(uow: UnitOfWork) -> SegmentIndex:
    index = uow.get(SegmentIndex, INDEX_ID)
    if index is None:
        index = SegmentIndex()
        uow.add(index)
    return index


def _claim(index: SegmentIndex, name: str, segment_id: UUID) -> None:
    holder = index.holder_of(name)
    if holder is not None and holder != segment_id:
        raise Conflict(
            "segment_name_taken",
            f"a segment is already called {name!r}",
            segment_id=str(holder),
        )


def _require(uow: UnitOfWork, segment_id: UUID) -> Segment:
    segment = uow.get(Segment, segment_id)
    if segment is None or segment.deleted:
        raise NotFound(f"no segment {segment_id}", id=str(segment_id))
    return segment


# -- attribute types ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeType:
    """What a defined attribute holds: ``kind`` (string, number, boolean, date, enum) and
    an enum's allowed values."""

    kind: str
    values: tuple[str, ...] = ()


_KIND_OF_VALUE = {bool: "boolean", int: "number", float: "number", str: "text"}
_ORDERED = frozenset({"lt", "le", "gt", "ge"})


def check_attribute_types(tree: Filter, types: Mapping[str, AttributeType]) -> None:
    """:class:`InvalidFilter` when the tree compares a defined attribute against a value its
    type cannot hold (a number with a string attribute, an enum value not allowed, a date
    that is no YYYY-MM-DD, an order comparison of a boolean or an enum). Attributes not
    defined are left alone: they match no customer."""
    for leaf in leaves(tree):
        if not isinstance(leaf, AttributeCondition) or leaf.attribute not in types:
            continue
        defined = types[leaf.attribute]
        where = f"attribute {leaf.attribute!r} ({defined.kind})"
        if leaf.op in _ORDERED and defined.kind in ("boolean", "enum"):
            raise InvalidFilter(f"{where}: {leaf.op} does not compare {defined.kind} values")
        values = leaf.value if isinstance(leaf.value, list) else [leaf.value]
        for value in values:
            if value is not None:
                _check_value(where, defined, value)


def _check_value(where: str, defined: AttributeType, value: object) -> None:
    given = _KIND_OF_VALUE[type(value)]
    wanted = {"string": "text", "enum": "text", "date": "text"}.get(defined.kind, defined.kind)
    if given != wanted:
        raise InvalidFilter(f"{where}: {value!r} is no {defined.kind} value")
    if defined.kind == "enum" and value not in defined.values:
        allowed = ", ".join(defined.values)
        raise InvalidFilter(f"{where}: {value!r} is not one of its values ({allowed})")
    if defined.kind == "date":
        try:
            datetime.strptime(str(value), "%Y-%m-%d")
        except ValueError:
            raise InvalidFilter(f"{where}: {value!r} is no date (YYYY-MM-DD)") from None
