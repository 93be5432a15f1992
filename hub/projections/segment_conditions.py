"""Conditions on one customer for segment filters (``hub.projections.segment_filter``): each
leaf about what a person has (a tag, an address for a channel, an attribute, a language, a
time zone, an acquisition source, an open conversation) as a correlated SQL condition on a
customer's id, which the compiler asks of a group's root and of its merged members.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    String,
    Text,
    Uuid,
    and_,
    column,
    exists,
    false,
    func,
    or_,
    select,
    table,
    true,
)

from hub.events import CHANNEL_ADDRESS_KINDS
from hub.events.segments import (
    AttributeCondition,
    ChannelCondition,
    Filter,
    LanguageCondition,
    SourceCondition,
    TagCondition,
    TimeZoneCondition,
)
from hub.projections.conversations import conversations
from hub.projections.directory import facts, identities
from hub.projections.segments import tag_index

__all__ = [
    "OPEN_STATUSES",
    "Member",
    "attributes",
    "has_open_conversation",
    "member_condition",
    "profiles",
    "reachable",
]

#: The directory's profile fields and custom attributes (tables of the directory projection;
#: named here as SQL only, so this module needs nothing else of it).
profiles = table(
    "directory_profiles",
    column("customer_id", Uuid),
    column("time_zone", String),
    column("language", String),
    column("source", String),
    column("source_medium", String),
    column("source_campaign", String),
    column("source_via", String),
)
attributes = table(
    "directory_attributes",
    column("customer_id", Uuid),
    column("key", String),
    column("kind", String),
    column("text_value", Text),
    column("number_value", Float),
    column("bool_value", Boolean),
)
#: Conversation statuses that count as open.
OPEN_STATUSES = ("open", "pending")

Bool = ColumnElement[bool]
#: A condition on one customer's id.
Member = Callable[[ColumnElement[UUID]], Bool]


def member_condition(leaf: Filter) -> Member:
    """The condition on one customer's id that a leaf about what a person has names."""
    if isinstance(leaf, TagCondition):
        return _tagged(leaf.tag)
    if isinstance(leaf, ChannelCondition):
        return reachable(leaf.channel)
    if isinstance(leaf, AttributeCondition):
        return _attribute(leaf)
    if isinstance(leaf, LanguageCondition):
        return _speaks(leaf.language.lower())
    if isinstance(leaf, TimeZoneCondition):
        zone = leaf.zone() or leaf.time_zone  # kept in its canonical spelling
        return _profile_has(lambda p: p.c.time_zone == zone)
    if isinstance(leaf, SourceCondition):
        return _from_source(leaf)
    raise TypeError(f"not a condition on one customer: {type(leaf).__name__}")


def _tagged(tag: str) -> Member:
    def holds(customer_id: ColumnElement[UUID]) -> Bool:
        t = tag_index.alias()
        return exists().where(t.c.customer_id == customer_id, t.c.tag == tag)

    return holds


def reachable(channel: str) -> Member:
    kinds = sorted(CHANNEL_ADDRESS_KINDS.get(channel, frozenset()))

    def holds(customer_id: ColumnElement[UUID]) -> Bool:
        i = identities.alias()
        return exists().where(i.c.customer_id == customer_id, i.c.kind.in_(kinds))

    return holds


def has_open_conversation(customer_id: ColumnElement[UUID]) -> Bool:
    c = conversations.alias()
    return exists().where(c.c.customer_id == customer_id, c.c.status.in_(OPEN_STATUSES))


def _profile_has(condition: Callable[[FromClause], Bool]) -> Member:
    def holds(customer_id: ColumnElement[UUID]) -> Bool:
        p = profiles.alias()
        return exists().where(p.c.customer_id == customer_id, condition(p))

    return holds


def _from_source(leaf: SourceCondition) -> Member:
    wanted = leaf.match()

    def condition(p: FromClause) -> Bool:
        parts: list[Bool] = []
        for name, value in (
            ("source", wanted.source),
            ("source_medium", wanted.medium),
            ("source_campaign", wanted.campaign),
        ):
            if value is not None:
                parts.append(func.lower(p.c[name]) == value.lower())
        if wanted.via is not None:
            parts.append(p.c.source_via == wanted.via)
        return and_(true(), *parts)

    return _profile_has(condition)


def _speaks(language: str) -> Member:
    """The customer's effective language (set by an agent, else the channel's) is
    ``language`` or a tag under it (``lt`` matches ``lt-LT``)."""

    def holds(customer_id: ColumnElement[UUID]) -> Bool:
        p, f = profiles.alias(), facts.alias()
        effective = func.lower(
            func.coalesce(
                select(p.c.language).where(p.c.customer_id == customer_id).scalar_subquery(),
                select(f.c.language).where(f.c.customer_id == customer_id).scalar_subquery(),
            )
        )
        return or_(effective == language, effective.like(f"{language}-%"))

    return holds


def _attribute(leaf: AttributeCondition) -> Member:
    def holds(customer_id: ColumnElement[UUID]) -> Bool:
        a = attributes.alias()
        return exists().where(
            a.c.customer_id == customer_id, a.c.key == leaf.attribute, _compare(a, leaf)
        )

    return holds


def _value_column(a: FromClause, value: object) -> ColumnElement[object]:
    """Where a value of this JSON type is kept: booleans, numbers, text (string, enum, date)."""
    if isinstance(value, bool):
        return a.c.bool_value
    if isinstance(value, int | float):
        return a.c.number_value
    return a.c.text_value


def _compare(a: FromClause, leaf: AttributeCondition) -> Bool:
    value = leaf.value
    if leaf.op == "exists":
        return or_(
            a.c.text_value.is_not(None), a.c.number_value.is_not(None), a.c.bool_value.is_not(None)
        )
    if leaf.op == "in":
        assert isinstance(value, list)
        return or_(false(), *(_value_column(a, v) == v for v in value))
    assert value is not None
    assert not isinstance(value, list)
    col = _value_column(a, value)
    operations: dict[str, Callable[[], Bool]] = {
        "eq": lambda: col == value,
        "ne": lambda: and_(col.is_not(None), col != value),
        "lt": lambda: col < value,
        "le": lambda: col <= value,
        "gt": lambda: col > value,
        "ge": lambda: col >= value,
    }
    return operations[leaf.op]()
