"""Service times (docs/analytics.md): per conversation its first response, later responses,
resolution, replies and reopenings, each in wall-clock and business seconds, measured
against the SLA policy it falls under; and the due times of open conversations, which the
queue shows and the SLA watcher records breaches from.

The company's definitions (business calendars, SLA policies) come from a
:class:`ServiceLevels` the runtime passes in (``hub.domain.service_levels.Definitions``):
each batch is measured with the definitions current when it is applied, so a changed
calendar or target applies from then on, and ``hub projections rebuild service`` measures
the whole history again with the current ones.

Definitions, in short: the clock of a response starts at a customer message that finds no
clock running; an agent's message (``interaction.queued.v1`` without an automation, or an
``interaction.sent.v1``) stops it. Automated messages (rules, campaigns, follow-ups) are not
responses. Resolution counts from the conversation's first customer message to its latest
resolution; a reopening counts once each time a resolved conversation opens again.

A conversation falls under the policy of its customer's group's tags (the customer a merged
group is shown as, from the directory's groups, which the directory applies first) and, when
a policy names saved segments, of the segments the group is in: evaluated with the segment
SQL (``hub.projections.segment_filter``) against the views in the batch's transaction, as of
the event that chose the policy (the conversation's opening, or the tags change, merge or
unmerge that chose it again: ``within_days`` counts back from that event's time, so a
rebuild evaluates the same moment). It is not evaluated again when the segment's other
conditions change later. Only when some policy names a segment, and in one query per batch
for every conversation that needs it.

Holds ids and times only; an erasure forgets whose conversations they were and keeps the
figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    literal,
    select,
    union_all,
)

from hub import memory
from hub.events import (
    ConversationAssigned,
    ConversationOpened,
    ConversationSlaBreached,
    ConversationStatusChanged,
    CustomerMerged,
    CustomerTagsChanged,
    CustomerUnmerged,
    Envelope,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
)
from hub.events.segments import Filter, FirstContactCondition, LastContactCondition, leaves
from hub.projections.base import KeepingProjection, KeptRows, as_utc, utc
from hub.projections.directory import customers
from hub.projections.merges import merges, root_of, roots_of
from hub.projections.segment_filter import FilterContext, matches
from hub.sql import insert_ignoring_duplicates

__all__ = [
    "ServiceLevels",
    "ServiceProjection",
    "responses",
    "service_conversations",
]


#: The conversations' rows a batch keeps for the next (``ServiceProjection.kept``).
KEPT_ROWS = memory.Part("service rows kept", share=0.15, entry_bytes=1200)


class ServiceLevels(Protocol):
    """What the projection measures with (``hub.domain.service_levels.Definitions``)."""

    @property
    def version(self) -> int:
        """Which version of the definitions these are (0: none defined)."""
        ...

    @property
    def segment_filters(self) -> Mapping[UUID, Filter]:
        """The filter trees of the segments the policies name, by segment id (empty: no
        policy names one, and no membership is evaluated)."""
        ...

    @property
    def granted_by_contact(self) -> frozenset[str]:
        """The consent purposes those filters count as granted by the customer writing."""
        ...

    def policy_for(
        self, channel: str, tags: Collection[str], segments: Collection[UUID] = ()
    ) -> str | None:
        """The SLA policy a conversation on ``channel`` of a customer with ``tags``, in
        ``segments`` (those of :attr:`segment_filters` its group is in), is under."""
        ...

    def business_seconds(self, policy: str | None, start: datetime, end: datetime) -> float:
        """Seconds of ``policy``'s calendar (none: the default one) between two instants."""
        ...

    def due(self, policy: str | None, target: str, since: datetime) -> datetime | None:
        """When ``target`` of ``policy`` falls due for a clock started ``since``."""
        ...


class NoServiceLevels:
    """No calendars, no policies: every figure in wall-clock time, nothing due."""

    version = 0
    segment_filters: Mapping[UUID, Filter] = {}
    granted_by_contact = frozenset({"service"})

    def policy_for(
        self, channel: str, tags: Collection[str], segments: Collection[UUID] = ()
    ) -> str | None:
        return None

    def business_seconds(self, policy: str | None, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())

    def due(self, policy: str | None, target: str, since: datetime) -> datetime | None:
        return None


metadata = MetaData()
service_conversations = Table(
    "service_conversations",
    metadata,
    Column("conversation_id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("channel", String(32), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee", String(200)),
    Column("policy", String(64)),
    Column("first_inbound_at", DateTime(timezone=True)),
    Column("first_response_at", DateTime(timezone=True)),
    Column("first_response_seconds", Float),
    Column("first_response_business", Float),
    Column("replies", Integer, nullable=False),
    Column("reopened", Integer, nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution_seconds", Float),
    Column("resolution_business", Float),
    Column("resolution_breached", Boolean),
    #: The clock of the response the customer waits for now (None: nobody waits).
    Column("waiting_since", DateTime(timezone=True)),
    Column("response_due_at", DateTime(timezone=True)),
    Column("resolution_due_at", DateTime(timezone=True)),
    #: The clock starts of the breaches recorded (``conversation.sla_breached.v1``).
    Column("response_breach_clock", DateTime(timezone=True)),
    Column("resolution_breach_recorded", Boolean, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_service_conversations_response_due", "response_due_at"),
    Index("ix_service_conversations_resolution_due", "resolution_due_at"),
    Index("ix_service_conversations_opened", "opened_at"),
    Index("ix_service_conversations_customer", "customer_id"),
    Index("ix_service_conversations_status", "status", "channel"),
)
#: One row per response (an agent's message that stopped a customer's clock).
responses = Table(
    "service_responses",
    metadata,
    Column("message_id", Uuid, primary_key=True),
    Column("conversation_id", Uuid, nullable=False),
    Column("customer_id", Uuid),
    Column("channel", String(32), nullable=False),
    Column("agent", String(200)),
    Column("policy", String(64)),
    Column("kind", String(16), nullable=False),  # first_response, next_response
    Column("waiting_since", DateTime(timezone=True), nullable=False),
    Column("responded_at", DateTime(timezone=True), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("business_seconds", Float, nullable=False),
    Column("due_at", DateTime(timezone=True)),
    Column("breached", Boolean),
    Index("ix_service_responses_at", "responded_at"),
)
#: Customers' current tags: which policy covers a conversation, reports by tag.
customer_tags = Table(
    "service_customer_tags",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("tag", String(100), primary_key=True),
)

OPEN = ("open", "pending")


class ServiceProjection(KeepingProjection):
    name = "service"
    handles = frozenset(
        {
            "conversation.opened.v1",
            "conversation.status_changed.v1",
            "conversation.assigned.v1",
            "conversation.sla_breached.v1",
            "interaction.received.v1",
            "interaction.queued.v1",
            "interaction.sent.v1",
            "customer.tags_changed.v1",
            "customer.merged.v1",
            "customer.unmerged.v1",
        }
    )
    tables = (service_conversations, responses, customer_tags)

    def __init__(self, definitions: Callable[[], ServiceLevels] | None = None) -> None:
        self._definitions = definitions or NoServiceLevels
        #: The rows of the conversations the last committed batch touched, as it wrote them:
        #: the next batch of the same follower starts from these instead of reading them
        #: back (a conversation's events usually span batches in a rebuild).
        self.kept: KeptRows[UUID, dict[str, Any]] = KeptRows(KEPT_ROWS.entries)

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Keep the figures; forget whose they were."""
        self.kept.forget()
        ids = list(customer_ids)
        for table in (service_conversations, responses):
            conn.execute(
                table.update().where(table.c.customer_id.in_(ids)).values(customer_id=None)
            )
        conn.execute(delete(customer_tags).where(customer_tags.c.customer_id.in_(ids)))

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        levels = self._definitions()
        kept = self.kept.take()
        fold = _Fold(conn, levels, kept or {})
        fold.load({getattr(getattr(e, "data", None), "conversation_id", None) for e in events})
        fold.prepare_groups(events)
        fold.prepare_segments(events)
        for event in events:  # in order: one batch may open, answer and resolve
            fold.apply(event)
        fold.flush()
        if kept is not None:
            self.kept.keep(kept, fold.rows)


class _Fold:
    """One batch: the conversations it touches, read once, written back at the end."""

    def __init__(
        self, conn: Connection, levels: ServiceLevels, kept: Mapping[UUID, dict[str, Any]]
    ) -> None:
        self.conn = conn
        self.levels = levels
        #: Rows as the previous batch wrote them, when they still hold (read no further).
        self.kept = kept
        self.rows: dict[UUID, dict[str, Any]] = {}
        #: The loaded rows as stored (what an UPDATE needs to write is what differs).
        self.stored: dict[UUID, dict[str, Any]] = {}
        self.missing: set[UUID] = set()
        self.new: set[UUID] = set()
        self.changed: set[UUID] = set()
        self.responses: list[dict[str, Any]] = []  # written at the end, in one statement
        #: Group roots (the directory has applied the whole batch: they hold for all of it).
        self.roots: dict[UUID, UUID] = {}
        #: The segments (of the policies') a group root is in, as of an instant.
        self.memberships: dict[tuple[UUID, datetime], frozenset[UUID]] = {}
        #: The loaded and new rows' conversation ids by customer.
        self.by_customer: dict[UUID | None, list[UUID]] = defaultdict(list)
        #: Customers' tags as the batch has left them (read once, kept here when changed).
        self.tags: dict[UUID, list[str]] = {}
        #: The tags the batch changed, by customer: written at the end.
        self.tags_written: dict[UUID, list[str]] = {}
        #: The merged members of group roots (the directory's groups hold for the batch).
        self.members: dict[UUID, list[UUID]] = {}
        #: The open conversations of customers as stored when the batch began (the rows are
        #: written back only at the end).
        self.open_stored: dict[UUID, list[UUID]] = {}

    def load(self, conversation_ids: Collection[Any]) -> None:
        """Read the rows of these conversations in one query (those the previous batch
        left in :attr:`kept` are taken from there)."""
        c = service_conversations.c
        wanted = []
        for i in conversation_ids:
            if isinstance(i, UUID) and i not in self.rows:
                kept = self.kept.get(i)
                if kept is None:
                    wanted.append(i)
                else:
                    self._loaded(kept)
        for start in range(0, len(wanted), 500):
            found = self.conn.execute(
                select(service_conversations).where(
                    c.conversation_id.in_(wanted[start : start + 500])
                )
            )
            keys = list(found.keys())  # tuples and the keys once (a mapping per row is slow)
            for values in found:
                row: dict[str, Any] = dict(zip(keys, values, strict=True))
                for k in _TIMES:
                    if row[k] is not None:
                        row[k] = as_utc(row[k])
                self._loaded(row)
        self.missing.update(i for i in wanted if i not in self.rows)

    def _loaded(self, row: dict[str, Any]) -> None:
        self.rows[row["conversation_id"]] = row
        self.stored[row["conversation_id"]] = dict(row)
        self.by_customer[row["customer_id"]].append(row["conversation_id"])

    def row(self, conversation_id: UUID) -> dict[str, Any] | None:
        found = self.rows.get(conversation_id)  # (one look-up: hashing a UUID is slow)
        if found is None and conversation_id not in self.missing:
            self.load([conversation_id])
            found = self.rows.get(conversation_id)
        return found

    def root(self, customer_id: UUID) -> UUID:
        if customer_id not in self.roots:
            self.roots[customer_id] = root_of(self.conn, customer_id)
        return self.roots[customer_id]

    def tags_of(self, customer_id: UUID) -> list[str]:
        """The tags of the customer's group (an agent tags the customer a group is shown as)."""
        root = self.root(customer_id)
        if root not in self.tags:
            self._read_tags([root])
        return self.tags[root]

    def _read_tags(self, customer_ids: Collection[UUID]) -> None:
        t = customer_tags.c
        wanted = [i for i in set(customer_ids) if i not in self.tags]  # (sorting UUIDs is slow)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found: dict[UUID, list[str]] = {i: [] for i in chunk}
            for customer_id, tag in self.conn.execute(
                select(t.customer_id, t.tag).where(t.customer_id.in_(chunk))
            ):
                found[customer_id].append(tag)
            self.tags.update(found)

    def group(self, customer_id: UUID) -> list[UUID]:
        """The customers shown as one with ``customer_id`` (``merges.group_of``): its root
        first, then the merged ones in the order they were merged."""
        root = self.root(customer_id)
        if root not in self.members:
            self._read_members([root])
        return [root, *self.members[root]]

    def _read_members(self, roots: Collection[UUID]) -> None:
        m = merges.c
        wanted = [i for i in set(roots) if i not in self.members]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found: dict[UUID, list[UUID]] = {i: [] for i in chunk}
            for customer_id, root in self.conn.execute(
                select(m.customer_id, m.root_id)
                .where(m.root_id.in_(chunk))
                .order_by(m.merged_at, m.customer_id)
            ):
                found[root].append(customer_id)
                self.roots[customer_id] = root
            self.members.update(found)

    def _read_roots(self, customer_ids: Collection[UUID]) -> None:
        unknown = list({i for i in customer_ids if i not in self.roots})
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            found = roots_of(self.conn, chunk)
            self.roots.update({cid: found.get(cid, cid) for cid in chunk})

    def _read_open(self, customer_ids: Collection[UUID]) -> None:
        c = service_conversations.c
        wanted = [i for i in set(customer_ids) if i not in self.open_stored]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found: dict[UUID, list[UUID]] = {i: [] for i in chunk}
            for conversation_id, customer_id in self.conn.execute(
                select(c.conversation_id, c.customer_id).where(
                    c.customer_id.in_(chunk), c.status.in_(OPEN)
                )
            ):
                found[customer_id].append(conversation_id)
            self.open_stored.update(found)

    def prepare_groups(self, events: Sequence[Envelope]) -> None:
        """Read, in a few queries for the whole batch, what choosing policies will ask: the
        roots of the customers whose conversations open, the groups whose tags change or
        that merge or unmerge, their open conversations and the roots' tags."""
        opening: list[UUID] = []
        regrouping: list[UUID] = []
        for event in events:
            if isinstance(event, ConversationOpened):
                if event.data.conversation_id not in self.rows:  # not a replay
                    opening.append(event.customer_id)
            elif isinstance(event, CustomerTagsChanged):
                regrouping.append(event.customer_id)
            elif isinstance(event, CustomerMerged):
                regrouping += [event.customer_id, event.data.into_customer_id]
            elif isinstance(event, CustomerUnmerged):
                regrouping += [event.customer_id, event.data.from_customer_id]
        if not opening and not regrouping:
            return
        self._read_roots([*opening, *regrouping])
        self._read_members({self.roots[i] for i in regrouping})
        everyone = {i for r in {self.roots[i] for i in regrouping} for i in self.group(r)}
        self._read_open(everyone)
        self.load([i for ids in self.open_stored.values() for i in ids])
        stored = (self.rows[i]["customer_id"] for ids in self.open_stored.values() for i in ids)
        self._read_roots({i for i in stored if i is not None})
        self._read_tags({self.roots[i] for i in [*opening, *everyone]})

    def prepare_segments(self, events: Sequence[Envelope]) -> None:
        """When a policy names segments: which of them the groups the batch chooses a policy
        for are in, at the instants it chooses, in one query (those it misses, a group
        reached through another member, are asked one at a time by :meth:`segments_of`)."""
        if not self.levels.segment_filters:
            return
        wanted: list[tuple[UUID, datetime]] = []
        for event in events:
            at = utc(event.occurred_at)
            if isinstance(event, ConversationOpened):
                if event.data.conversation_id not in self.rows:  # not a replay
                    wanted.append((event.customer_id, at))
            elif isinstance(event, CustomerTagsChanged):
                wanted.append((event.customer_id, at))
            elif isinstance(event, CustomerMerged):
                wanted += [(event.customer_id, at), (event.data.into_customer_id, at)]
            elif isinstance(event, CustomerUnmerged):
                wanted += [(event.customer_id, at), (event.data.from_customer_id, at)]
        self._read_roots([cid for cid, _ in wanted])
        pairs = {(self.roots[cid], at) for cid, at in wanted}
        self.memberships.update(self._members(pairs - self.memberships.keys()))

    def segments_of(self, customer_id: UUID, at: datetime) -> frozenset[UUID]:
        """The segments of the policies the customer's group is in at ``at``."""
        if not self.levels.segment_filters:
            return frozenset()
        key = (self.root(customer_id), at)
        if key not in self.memberships:
            self.memberships.update(self._members({key}))
        return self.memberships[key]

    def _members(self, pairs: Collection[tuple[UUID, datetime]]) -> dict[Any, frozenset[UUID]]:
        """Which segments each (root, instant) is in: one statement, a UNION ALL of one
        SELECT per segment (per instant for a segment whose windows count back from now)."""
        found: dict[tuple[UUID, datetime], set[UUID]] = {pair: set() for pair in pairs}
        if not pairs:
            return {}
        latest = max(at for _, at in pairs)
        granted = self.levels.granted_by_contact
        groups: list[tuple[UUID, datetime | None, list[UUID]]] = []
        for segment_id, tree in self.levels.segment_filters.items():
            if _counts_from_now(tree):
                by_time: dict[datetime, set[UUID]] = defaultdict(set)
                for root, at in pairs:
                    by_time[at].add(root)
                groups += [(segment_id, at, sorted(r)) for at, r in sorted(by_time.items())]
            else:
                groups.append((segment_id, None, sorted({root for root, _ in pairs})))
        c = customers.c
        queries: list[Select[Any]] = []
        for number, (segment_id, when, roots) in enumerate(groups):
            ctx = FilterContext(now=when or latest, granted_by_contact=granted)
            tree = self.levels.segment_filters[segment_id]
            queries.append(
                select(literal(number, Integer).label("g"), c.customer_id).where(
                    c.customer_id.in_(roots), matches(tree, ctx)
                )
            )
        times: dict[UUID, list[datetime]] = defaultdict(list)
        for root, at in pairs:
            times[root].append(at)
        for start in range(0, len(queries), _UNION_TERMS):
            chunk = queries[start : start + _UNION_TERMS]
            statement = chunk[0] if len(chunk) == 1 else union_all(*chunk)
            for number, root in self.conn.execute(statement):
                segment_id, when, _ = groups[number]
                for at in times[root] if when is None else [when]:
                    found[(root, at)].add(segment_id)
        return {pair: frozenset(ids) for pair, ids in found.items()}

    def apply(self, event: Envelope) -> None:
        if isinstance(event, ConversationOpened):
            self.opened(event)
        elif isinstance(event, InteractionReceived):
            self.customer_wrote(event)
        elif isinstance(event, InteractionQueued):
            if event.data.automation is None:
                self.agent_wrote(event, event.data.author)
        elif isinstance(event, InteractionSent):
            self.agent_wrote(event, None)
        elif isinstance(event, ConversationStatusChanged):
            self.status_changed(event)
        elif isinstance(event, ConversationAssigned):
            row = self.row(event.data.conversation_id)
            if row is not None and not _seen(row, event):
                row["assignee"] = event.data.assignee
                self.touch(row, event)
        elif isinstance(event, ConversationSlaBreached):
            self.breached(event)
        elif isinstance(event, CustomerTagsChanged):
            self.tags_changed(event)
        elif isinstance(event, CustomerMerged | CustomerUnmerged):
            self.regrouped(event)

    def touch(self, row: dict[str, Any], event: Envelope) -> None:
        row["position"] = event.position
        self.changed.add(row["conversation_id"])

    def opened(self, event: ConversationOpened) -> None:
        d = event.data
        if self.row(d.conversation_id) is not None:
            return  # a replay
        policy = self.levels.policy_for(
            d.channel,
            self.tags_of(event.customer_id),
            self.segments_of(event.customer_id, utc(event.occurred_at)),
        )
        row: dict[str, Any] = {
            "conversation_id": d.conversation_id,
            "customer_id": event.customer_id,
            "channel": d.channel,
            "opened_at": utc(event.occurred_at),
            "status": "open",
            "assignee": None,
            "policy": policy,
            "first_inbound_at": None,
            "first_response_at": None,
            "first_response_seconds": None,
            "first_response_business": None,
            "replies": 0,
            "reopened": 0,
            "resolved_at": None,
            "resolution_seconds": None,
            "resolution_business": None,
            "resolution_breached": None,
            "waiting_since": None,
            "response_due_at": None,
            "resolution_due_at": None,
            "response_breach_clock": None,
            "resolution_breach_recorded": False,
            "position": event.position,
        }
        self.rows[d.conversation_id] = row
        self.by_customer[event.customer_id].append(d.conversation_id)
        self.missing.discard(d.conversation_id)
        self.new.add(d.conversation_id)

    def customer_wrote(self, event: InteractionReceived) -> None:
        row = self.row(event.data.conversation_id)
        if row is None or _seen(row, event):
            return
        at = utc(event.occurred_at)
        if row["first_inbound_at"] is None:
            row["first_inbound_at"] = at
            row["resolution_due_at"] = self.levels.due(row["policy"], "resolution", at)
        if row["waiting_since"] is None:
            row["waiting_since"] = at
            row["response_due_at"] = self.levels.due(row["policy"], response_kind(row), at)
        self.touch(row, event)

    def agent_wrote(self, event: InteractionQueued | InteractionSent, agent: str | None) -> None:
        row = self.row(event.data.conversation_id)
        if row is None or _seen(row, event):
            return
        at = utc(event.occurred_at)
        row["replies"] += 1
        since = row["waiting_since"]
        if since is not None:
            kind = response_kind(row)
            seconds = max(0.0, (at - since).total_seconds())
            business = self.levels.business_seconds(row["policy"], since, at)
            due = row["response_due_at"]
            self.responses.append(
                {
                    "message_id": event.data.message_id,
                    "conversation_id": row["conversation_id"],
                    "customer_id": row["customer_id"],
                    "channel": row["channel"],
                    "agent": (agent or "")[:200] or None,
                    "policy": row["policy"],
                    "kind": kind,
                    "waiting_since": since,
                    "responded_at": at,
                    "seconds": seconds,
                    "business_seconds": business,
                    "due_at": due,
                    "breached": None if due is None else at > due,
                }
            )
            if kind == "first_response":
                row["first_response_at"] = at
                row["first_response_seconds"] = seconds
                row["first_response_business"] = business
            row["waiting_since"] = None
            row["response_due_at"] = None
        self.touch(row, event)

    def status_changed(self, event: ConversationStatusChanged) -> None:
        row = self.row(event.data.conversation_id)
        if row is None or _seen(row, event):
            return
        status = event.data.status
        if status == "resolved" and row["status"] != "resolved":
            at = utc(event.occurred_at)
            start = row["first_inbound_at"] or row["opened_at"]
            row["resolved_at"] = at
            row["resolution_seconds"] = max(0.0, (at - start).total_seconds())
            row["resolution_business"] = self.levels.business_seconds(row["policy"], start, at)
            due = row["resolution_due_at"]
            row["resolution_breached"] = None if due is None else at > due
            row["waiting_since"] = None
            row["response_due_at"] = None
        elif status != "resolved" and row["status"] == "resolved":
            row["reopened"] += 1
        row["status"] = status
        self.touch(row, event)

    def breached(self, event: ConversationSlaBreached) -> None:
        row = self.row(event.data.conversation_id)
        if row is None or _seen(row, event):
            return
        if event.data.target == "resolution":
            row["resolution_breach_recorded"] = True
        else:
            row["response_breach_clock"] = utc(event.data.clock_started_at)
        self.touch(row, event)

    def tags_changed(self, event: CustomerTagsChanged) -> None:
        """The customer's tags now; the open conversations of its group fall under the
        policy the tags make them fall under."""
        tags = sorted({tag[:100] for tag in event.data.tags})
        self.tags[event.customer_id] = tags
        self.tags_written[event.customer_id] = tags
        self.reconsider(self.group(event.customer_id), utc(event.occurred_at))

    def regrouped(self, event: CustomerMerged | CustomerUnmerged) -> None:
        """A merge or an unmerge (the directory, applied first, has the groups as they are
        now): the conversations of both sides are measured with their group's tags."""
        other = (
            event.data.into_customer_id
            if isinstance(event, CustomerMerged)
            else event.data.from_customer_id
        )
        self.reconsider(
            [*self.group(event.customer_id), *self.group(other)], utc(event.occurred_at)
        )

    def reconsider(self, customer_ids: Sequence[UUID], at: datetime) -> None:
        """The open conversations of these customers under the policy their group's tags
        (and segments, as of ``at``) make them fall under now, with their due times counted
        again."""
        wanted = set(customer_ids)
        self._read_open(wanted)
        # Open as stored when the batch began (whatever the batch has done to them since),
        # and the batch's rows open now.
        open_ids = [i for customer_id in wanted for i in self.open_stored[customer_id]]
        open_ids += [
            i
            for customer_id in wanted
            for i in self.by_customer.get(customer_id, ())
            if self.rows[i]["status"] in OPEN
        ]
        for conversation_id in dict.fromkeys(open_ids):
            row = self.row(conversation_id)
            if row is None:
                continue
            customer_id = row["customer_id"]
            policy = self.levels.policy_for(
                row["channel"], self.tags_of(customer_id), self.segments_of(customer_id, at)
            )
            if policy == row["policy"]:
                continue
            row["policy"] = policy
            if row["first_inbound_at"] is not None:
                row["resolution_due_at"] = self.levels.due(
                    policy, "resolution", row["first_inbound_at"]
                )
            if row["waiting_since"] is not None:
                row["response_due_at"] = self.levels.due(
                    policy, response_kind(row), row["waiting_since"]
                )
            self.changed.add(conversation_id)

    def flush(self) -> None:
        """Write what the batch changed: new rows in one INSERT; of a changed row only the
        columns that differ from what was stored (SQLite leaves the indexes of the others
        alone), with one UPDATE per set of columns executed per row; responses in one
        INSERT; the customers' tags it changed (their last) in one DELETE and one INSERT."""
        created = [self.rows[i] for i in self.new]
        if created:
            insert_ignoring_duplicates(self.conn, service_conversations, created)
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for i in self.changed - self.new:
            row, stored = self.rows[i], self.stored[i]
            columns = tuple(k for k, v in row.items() if v != stored[k])
            if columns:
                by_columns[columns].append({"b_id": i, **{k: row[k] for k in columns}})
        c = service_conversations.c
        for _, changed in sorted(by_columns.items()):
            self.conn.execute(
                service_conversations.update().where(c.conversation_id == bindparam("b_id")),
                changed,
            )
        if self.responses:
            insert_ignoring_duplicates(self.conn, responses, self.responses)
        if self.tags_written:
            t = customer_tags.c
            tagged = sorted(self.tags_written)
            for start in range(0, len(tagged), 500):
                self.conn.execute(
                    delete(customer_tags).where(t.customer_id.in_(tagged[start : start + 500]))
                )
            rows = [
                {"customer_id": customer_id, "tag": tag}
                for customer_id in tagged
                for tag in self.tags_written[customer_id]
            ]
            if rows:
                self.conn.execute(customer_tags.insert(), rows)


#: The rows' datetime columns (aware again when read).
_TIMES = tuple(c.name for c in service_conversations.c if isinstance(c.type, DateTime))
#: SELECTs per UNION ALL statement (SQLite takes at most 500 by default).
_UNION_TERMS = 200


def _counts_from_now(tree: Filter) -> bool:
    """Whether the filter has a contact window counting back from now (``within_days``)."""
    return any(
        (isinstance(leaf, FirstContactCondition) and leaf.first_contact.within_days is not None)
        or (isinstance(leaf, LastContactCondition) and leaf.last_contact.within_days is not None)
        for leaf in leaves(tree)
    )


def _seen(row: dict[str, Any], event: Envelope) -> bool:
    """Whether the row has applied ``event`` already (a replay): rows keep the position of
    the last event that changed them."""
    return bool(event.position) and row["position"] >= event.position


def response_kind(row: dict[str, Any]) -> str:
    return "first_response" if row["first_response_at"] is None else "next_response"
