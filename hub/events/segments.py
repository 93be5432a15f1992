"""The segment filter language: a JSON tree of conditions over the customer directory.

Combinations ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": {...}}``; leaves ``tag``,
``attribute`` (with a comparison), ``channel`` (reachable on), ``consent`` (granted now),
``language`` (prefix), ``time_zone``, ``source`` (acquisition), ``first_contact`` and
``last_contact`` (a time window) and ``open_conversations`` (``hub.events.segment_conditions``).
docs/segments.md describes each.

A contract like the events: the API takes it, the domain stores it in segment definitions and
the views compile it to SQL (``hub.projections.segment_filter``), so it lives here, where
every one of them may import it. Validation has two steps: :data:`FILTER` takes any JSON
that fits the published JSON Schema (the structure), then :func:`check_rules` refuses what a
schema cannot say (:class:`FilterRuleError`: deeper than :data:`MAX_DEPTH`, more than
:data:`MAX_LEAVES` conditions, a value that does not fit its comparison, an empty window, an
unknown time zone), so that a request the schema allows is never refused as not matching it.
:func:`parse_filter` does both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, cast

from pydantic import Discriminator, Field, Tag, TypeAdapter

from hub.events.segment_conditions import (
    CONSENT_CHANNELS,
    AttributeCondition,
    ChannelCondition,
    ConsentCondition,
    ContactWindow,
    FirstContactCondition,
    LanguageCondition,
    LastContactCondition,
    Node,
    OpenConversationsCondition,
    SourceCondition,
    SourceMatch,
    TagCondition,
    TimeZoneCondition,
)

__all__ = [
    "CONSENT_CHANNELS",
    "FILTER",
    "MAX_DEPTH",
    "MAX_LEAVES",
    "AllOf",
    "AnyOf",
    "AttributeCondition",
    "ChannelCondition",
    "ConsentCondition",
    "ContactWindow",
    "Filter",
    "FilterRuleError",
    "FilterTree",
    "FirstContactCondition",
    "LanguageCondition",
    "LastContactCondition",
    "Leaf",
    "NotOf",
    "OpenConversationsCondition",
    "SourceCondition",
    "SourceMatch",
    "TagCondition",
    "TimeZoneCondition",
    "canonical",
    "check_rules",
    "leaves",
    "parse_filter",
]

#: How deep combinations may nest (a leaf alone is depth 1), and how many leaves a tree has.
MAX_DEPTH = 8
MAX_LEAVES = 100


# -- combinations ----------------------------------------------------------------------------


class AllOf(Node):
    """Every condition holds (an empty list: every customer)."""

    all: list[Filter] = Field(max_length=MAX_LEAVES)


class AnyOf(Node):
    """At least one condition holds."""

    any: list[Filter] = Field(min_length=1, max_length=MAX_LEAVES)


class NotOf(Node):
    """The condition does not hold."""

    not_: Filter = Field(alias="not")


Leaf = (
    TagCondition
    | AttributeCondition
    | ChannelCondition
    | ConsentCondition
    | LanguageCondition
    | TimeZoneCondition
    | SourceCondition
    | FirstContactCondition
    | LastContactCondition
    | OpenConversationsCondition
)
#: The key that names each kind of node, in the order a node's keys are looked at.
_HEADS: dict[str, type[Node]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": NotOf,
    "tag": TagCondition,
    "attribute": AttributeCondition,
    "channel": ChannelCondition,
    "consent": ConsentCondition,
    "language": LanguageCondition,
    "time_zone": TimeZoneCondition,
    "source": SourceCondition,
    "first_contact": FirstContactCondition,
    "last_contact": LastContactCondition,
    "open_conversations": OpenConversationsCondition,
}
_BY_CLASS = {cls: head for head, cls in _HEADS.items()}


def _head(value: Any) -> str | None:
    """Which kind of node ``value`` is: the first key of :data:`_HEADS` it has."""
    if isinstance(value, dict):
        return next((head for head in _HEADS if head in value), None)
    return _BY_CLASS.get(type(value))


Filter = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[ChannelCondition, Tag("channel")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[LanguageCondition, Tag("language")]
    | Annotated[TimeZoneCondition, Tag("time_zone")]
    | Annotated[SourceCondition, Tag("source")]
    | Annotated[FirstContactCondition, Tag("first_contact")]
    | Annotated[LastContactCondition, Tag("last_contact")]
    | Annotated[OpenConversationsCondition, Tag("open_conversations")],
    Discriminator(
        _head,
        custom_error_type="unknown_condition",
        custom_error_message="a condition is an object with one of the keys " + ", ".join(_HEADS),
    ),
]

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


class FilterRuleError(ValueError):
    """A filter that fits the schema but breaks a rule the schema cannot state."""


#: A filter tree as the API, the console and stored definitions give it (its structure).
FilterTree = Filter
FILTER: TypeAdapter[Filter] = TypeAdapter(cast("Any", Filter))


def check_rules(tree: Filter) -> None:
    """:class:`FilterRuleError` for the first rule ``tree`` breaks that its JSON Schema
    cannot state (see the module's docstring)."""
    count = 0
    stack: list[tuple[Filter, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FilterRuleError(f"the filter nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, AllOf | AnyOf | NotOf):
            children = [node.not_] if isinstance(node, NotOf) else _children(node)
            stack.extend((child, depth + 1) for child in children)
            continue
        count += 1
        if count > MAX_LEAVES:
            raise FilterRuleError(f"the filter has more than {MAX_LEAVES} conditions")
        problem = _leaf_problem(node)
        if problem is not None:
            raise FilterRuleError(problem)


def _children(node: AllOf | AnyOf) -> list[Filter]:
    return node.all if isinstance(node, AllOf) else node.any


def _leaf_problem(leaf: Filter) -> str | None:
    if isinstance(leaf, TagCondition) and not leaf.tag:
        return "tag: a tag has more than spaces"
    if isinstance(leaf, AttributeCondition):
        problem = leaf.problem()
        return f"attribute {leaf.attribute!r}: {problem}" if problem else None
    if isinstance(leaf, TimeZoneCondition) and leaf.zone() is None:
        return f"{leaf.time_zone!r} is not an IANA time zone (e.g. Europe/Vilnius)"
    if isinstance(leaf, SourceCondition) and not leaf.match().given():
        return "source: name at least one of source, medium, campaign, via"
    if isinstance(leaf, FirstContactCondition | LastContactCondition):
        name = "first_contact" if isinstance(leaf, FirstContactCondition) else "last_contact"
        window = getattr(leaf, name)
        problem = window.problem()
        return f"{name}: {problem}" if problem else None
    return None


def parse_filter(value: Any) -> Filter:
    """The tree of a JSON value: a ``pydantic.ValidationError`` when it does not fit the
    schema, a :class:`FilterRuleError` when it breaks a rule."""
    tree = FILTER.validate_python(value)
    check_rules(tree)
    return tree


def canonical(tree: Filter) -> dict[str, Any]:
    """The tree as JSON, as it is stored and shown: every key by its name, nothing unset."""
    dumped: dict[str, Any] = FILTER.dump_python(tree, mode="json", by_alias=True, exclude_none=True)
    return dumped


def leaves(tree: Filter) -> Iterator[Any]:
    """Every leaf condition of ``tree``."""
    if isinstance(tree, AllOf):
        for child in tree.all:
            yield from leaves(child)
    elif isinstance(tree, AnyOf):
        for child in tree.any:
            yield from leaves(child)
    elif isinstance(tree, NotOf):
        yield from leaves(tree.not_)
    else:
        yield tree
