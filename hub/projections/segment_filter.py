"""Segment membership in SQL: a filter tree (``hub.events.segments``) compiled to one boolean
SQLAlchemy Core expression over the directory's customers, and the paged, counted query of
the customers it matches. Nothing is loaded into Python to decide membership; the same SQL
runs on SQLite and PostgreSQL.

Only ROOTS are listed (a customer merged into another is shown as its group), and a group
is one person (docs/segments.md):

- what a person HAS (a tag, an address for a channel, an attribute, a language, a time zone,
  an acquisition source, an open conversation) holds when any member of the group has it;
- first and last contact are the group's: its earliest first contact, its latest contact;
- consent is the group's ledger: the latest line across the members for (channel, purpose)
  decides, as ``GET /v1/customers/{id}/consent`` shows; with no line, the default rule
  (purposes granted by contact are granted on the channels that reach the customer);
- ``not`` negates at the level of the group.

Each condition is a correlated EXISTS or scalar subquery on an indexed key of the customer,
so a page costs only the rows it scans, and the total one pass over the directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    FromClause,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from hub.events.segments import (
    AllOf,
    AnyOf,
    ConsentCondition,
    ContactWindow,
    Filter,
    FirstContactCondition,
    LastContactCondition,
    NotOf,
    OpenConversationsCondition,
)
from hub.projections.base import utc
from hub.projections.directory import customers
from hub.projections.merges import merges
from hub.projections.segment_conditions import (
    Member,
    has_open_conversation,
    member_condition,
    reachable,
)
from hub.projections.segments import consent_state

__all__ = [
    "FilterContext",
    "count",
    "matches",
    "page",
]

_Bool = ColumnElement[bool]


@dataclass(frozen=True)
class FilterContext:
    """What a filter is evaluated against besides the views: the time ``within_days``
    counts back from, and the consent purposes the customer grants by writing to you."""

    now: datetime
    granted_by_contact: frozenset[str] = field(default_factory=lambda: frozenset({"service"}))


def matches(tree: Filter, ctx: FilterContext, root: FromClause = customers) -> _Bool:
    """The condition on a row of ``root`` (``directory_customers`` or an alias of it, a
    group's root) that its group matches ``tree``."""
    return _Compiler(ctx, root).node(tree)


def _roots(tree: Filter, ctx: FilterContext) -> _Bool:
    m = merges.alias()
    not_merged = ~exists().where(m.c.customer_id == customers.c.customer_id)
    return and_(not_merged, matches(tree, ctx))


def page(
    conn: Connection, tree: Filter, ctx: FilterContext, limit: int, after: UUID | None = None
) -> tuple[list[UUID], UUID | None]:
    """The roots matching ``tree``, newest customer first (ids are time-ordered), after the
    cursor ``after`` (the last id of the previous page); and the next cursor, if any."""
    c = customers.c
    query = select(c.customer_id).where(_roots(tree, ctx))
    if after is not None:
        query = query.where(c.customer_id < after)
    ids = list(conn.scalars(query.order_by(c.customer_id.desc()).limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more and ids else None)


def count(conn: Connection, tree: Filter, ctx: FilterContext) -> int:
    """How many roots match ``tree``."""
    query = select(func.count()).select_from(customers).where(_roots(tree, ctx))
    return int(conn.scalar(query) or 0)


class _Compiler:
    """One filter's SQL: each node to a boolean on the root row."""

    def __init__(self, ctx: FilterContext, root: FromClause) -> None:
        self.ctx = ctx
        self.root = root
        self.root_id: ColumnElement[UUID] = root.c.customer_id

    def node(self, tree: Filter) -> _Bool:
        if isinstance(tree, AllOf):
            return and_(true(), *(self.node(child) for child in tree.all))
        if isinstance(tree, AnyOf):
            return or_(false(), *(self.node(child) for child in tree.any))
        if isinstance(tree, NotOf):
            return not_(self.node(tree.not_))
        if isinstance(tree, FirstContactCondition):
            return self._window(tree.first_contact, _first_contact, earliest=True)
        if isinstance(tree, LastContactCondition):
            return self._window(tree.last_contact, _last_contact, earliest=False)
        if isinstance(tree, ConsentCondition):
            return self._consent(tree.consent.channel, tree.consent.purpose)
        if isinstance(tree, OpenConversationsCondition):
            has_open = self.any_member(has_open_conversation)
            return has_open if tree.open_conversations else not_(has_open)
        return self.any_member(member_condition(tree))

    def any_member(self, holds: Member) -> _Bool:
        """``holds`` for the root itself or for a customer merged into it."""
        m = merges.alias()
        merged = exists().where(m.c.root_id == self.root_id, holds(m.c.customer_id))
        return or_(holds(self.root_id), merged)

    # -- the group's times ---------------------------------------------------------------

    def _window(
        self,
        window: ContactWindow,
        at: Callable[[FromClause], ColumnElement[datetime]],
        earliest: bool,
    ) -> _Bool:
        """The group's time (its members' earliest ``at`` or their latest) within the window.

        Each bound is a question about members, so the root's own row answers it first and
        merged members are looked at only when it does not: the latest is at or after t when
        some member's is, before t when none is at or after t (the earliest alike, mirrored)."""
        bounds: list[_Bool] = []
        starts = [window.after] if window.after is not None else []
        within = window.within()
        if within is not None:
            starts.append(self.ctx.now - within)
        for start in starts:
            if earliest:  # the earliest is at or after t when no member's is before t
                bounds.append(not_(self._some_member(at, start, earlier=True)))
            else:
                bounds.append(self._some_member(at, start, earlier=False))
        if window.before is not None:
            if earliest:
                bounds.append(self._some_member(at, window.before, earlier=True))
            else:  # the latest is before t when no member's is at or after t
                bounds.append(not_(self._some_member(at, window.before, earlier=False)))
        return and_(true(), *bounds)

    def _some_member(
        self, at: Callable[[FromClause], ColumnElement[datetime]], bound: datetime, earlier: bool
    ) -> _Bool:
        """Whether the time ``at`` of the root's own row or of a merged member's is before
        ``bound`` (``earlier``) or at or after it."""

        def holds(row: FromClause) -> _Bool:
            return at(row) < _time(bound) if earlier else at(row) >= _time(bound)

        m, c2 = merges.alias(), customers.alias()
        merged = exists(
            select(1)
            .select_from(m.join(c2, c2.c.customer_id == m.c.customer_id))
            .where(m.c.root_id == self.root_id, holds(c2))
        )
        return or_(holds(self.root), merged)

    # -- consent -------------------------------------------------------------------------

    def _consent(self, channel: str, purpose: str) -> _Bool:
        """The group's latest ledger line for (channel, purpose) grants it; with none, the
        default rule does (granted by contact, on a channel that reaches the customer)."""
        latest = self._latest_line(channel, purpose)
        if purpose in self.ctx.granted_by_contact:
            default = self.any_member(reachable(channel))
        else:
            default = false()
        return case((latest.is_(None), default), else_=latest) == true()

    def _latest_line(self, channel: str, purpose: str) -> ColumnElement[bool]:
        """Granted or not by the group's latest line (NULL: no line): the root's own, unless
        a member's is later."""
        s, s2, m = consent_state.alias(), consent_state.alias(), merges.alias()
        own = select().where(
            s.c.customer_id == self.root_id, s.c.channel == channel, s.c.purpose == purpose
        )
        theirs = (
            select()
            .select_from(m.join(s2, s2.c.customer_id == m.c.customer_id))
            .where(m.c.root_id == self.root_id, s2.c.channel == channel, s2.c.purpose == purpose)
        )
        own_position = own.add_columns(s.c.position).scalar_subquery()
        own_granted = own.add_columns(s.c.granted).scalar_subquery()
        their_position = theirs.add_columns(func.max(s2.c.position)).scalar_subquery()
        their_granted = (
            theirs.add_columns(s2.c.granted)
            .order_by(s2.c.position.desc())
            .limit(1)
            .scalar_subquery()
        )
        theirs_later = and_(
            their_position.is_not(None),
            or_(own_position.is_(None), their_position > own_position),
        )
        return case((theirs_later, their_granted), else_=own_granted)


def _first_contact(row: FromClause) -> ColumnElement[datetime]:
    """A customer's first contact (``directory_customers.created_at``)."""
    return row.c.created_at


def _last_contact(row: FromClause) -> ColumnElement[datetime]:
    """A customer's last contact: its latest activity, else its first contact."""
    return func.coalesce(row.c.last_activity_at, row.c.created_at)


def _time(value: datetime) -> ColumnElement[datetime]:
    return literal(utc(value), DateTime(timezone=True))
