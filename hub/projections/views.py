"""The read-model database: projections, their positions, and applying batches to them.

Each projection keeps the store position it has applied up to in ``view_positions``. A batch is
applied in ONE transaction that first reads those positions (under the database's write lock),
applies only what lies beyond them and then moves them: a crash, a replay or a second process
applying the same events can neither skip nor double anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
)

from hub.events import Envelope
from hub.projections.automations import AutomationsProjection
from hub.projections.base import Projection
from hub.projections.business import BusinessProjection
from hub.projections.conversations import ConversationsProjection
from hub.projections.directory import DirectoryProjection
from hub.projections.duplicates import SHARED_ADDRESS_LIMIT, DuplicatesProjection
from hub.projections.history import HistoryProjection
from hub.projections.search import SearchProjection
from hub.projections.segments import SegmentsProjection
from hub.projections.service import ServiceLevels, ServiceProjection
from hub.projections.surveys import SurveysProjection
from hub.projections.timeline import TimelineProjection
from hub.sql import insert_ignoring_duplicates, lock_keys, upsert, write_transaction

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Projection)

metadata = MetaData()
view_positions = Table(
    "view_positions",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
#: Positions per partition of a topic (the Kafka runtime): store positions increase within a
#: partition of hub.events but interleave across partitions.
partition_positions = Table(
    "view_partition_positions",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", BigInteger, primary_key=True),
    Column("position", BigInteger, nullable=False),
)
#: Events a projection could not apply, set aside so the others flow (see apply_isolating).
dead_letters = Table(
    "view_dead_letters",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("error", Text, nullable=False),
    Column("set_aside_at", DateTime(timezone=True), nullable=False),
)


#: Customers whose personal data was erased (ids only): the API answers 410 for them, and
#: every batch that touches one is followed by a purge of its rows, so a lagging event (a
#: Kafka copy decrypted before the erasure) can never put plaintext back.
erased_customers = Table(
    "view_erased_customers",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)
_ERASED = "customer.erased.v1"


class UnknownProjection(KeyError):
    pass


class Views:
    """The projections of one read-model database."""

    def __init__(self, engine: Engine, projections: Sequence[Projection] | None = None) -> None:
        self.engine = engine
        self.projections = list(projections or default_projections())
        self.timeline = self._find(TimelineProjection)
        #: Whether any customer was ever erased, as last looked (at most a second ago while
        #: none was): until one is, a batch needs no look-up of erased customers (the common
        #: case, on the hot path). An erasure by another process is seen within that second.
        self._any_erased = False
        self._erasures_looked_at = -1.0
        self.directory = self._find(DirectoryProjection)
        self.conversations = self._find(ConversationsProjection)

    def _find(self, cls: type[P]) -> P:
        for projection in self.projections:
            if isinstance(projection, cls):
                return projection
        raise UnknownProjection(cls.name)

    def by_name(self, name: str) -> Projection:
        for projection in self.projections:
            if projection.name == name:
                return projection
        raise UnknownProjection(name)

    def create(self) -> None:
        """Create missing tables and position rows (idempotent)."""
        with write_transaction(self.engine) as conn:  # reads, then may write: lock first
            # (a check for a table, then its creation, would otherwise meet a follower's
            # commit in between: SQLite refuses that at once, it does not wait)
            metadata.create_all(conn)
            for projection in self.projections:
                for table in projection.tables:
                    table.create(conn, checkfirst=True)
            for projection in self.projections:
                projection.create(conn)
            known = set(conn.scalars(select(view_positions.c.projection)))
            missing = [
                {"projection": p.name, "position": 0}
                for p in self.projections
                if p.name not in known
            ]
            if missing:
                conn.execute(view_positions.insert(), missing)

    def positions(self, conn: Connection | None = None, *, lock: bool = False) -> dict[str, int]:
        """Each projection's position; ``lock``: held until ``conn``'s transaction ends
        (PostgreSQL's row locks; a SQLite write transaction holds its lock already)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.positions(own)
        query = select(view_positions.c.projection, view_positions.c.position)
        rows = conn.execute(query.with_for_update() if lock else query)
        return {name: position for name, position in rows}

    def low_water_mark(self, only: Iterable[str] | None = None) -> int:
        """The position every (selected) projection has reached."""
        positions = self.positions()
        names = list(only) if only is not None else [p.name for p in self.projections]
        return min(positions.get(n, 0) for n in names) if names else 0

    def apply(
        self,
        events: Sequence[Envelope],
        up_to: int,
        only: Iterable[str] | None = None,
        after: int | None = None,
    ) -> int:
        """Apply a batch read from the store up to position ``up_to`` (the batch's last
        notification, published or not). Returns how many (projection, event) pairs applied.

        ``after``: the position the batch was read after. A projection that has not reached
        it is left where it is: it was reset after the batch was read (a rebuild while the
        hub runs), and moving it to ``up_to`` would skip the events before the batch, which
        it does not hold. The next batch, read from its position, catches it up."""
        wanted = set(only) if only is not None else None
        applied = 0
        moved: list[Projection] = []
        try:
            with write_transaction(self.engine) as conn:
                # Locked: a second applier (a rebuild beside the server, on PostgreSQL) waits
                # here and then sees this batch applied, instead of applying it again.
                positions = self.positions(conn, lock=True)
                for projection in self.projections:
                    if wanted is not None and projection.name not in wanted:
                        continue
                    done = positions.get(projection.name, 0)
                    if done >= up_to or (after is not None and done < after):
                        continue
                    moved.append(projection)
                    projection.batch_begins(done)
                    mine = [e for e in events if e.position > done and e.type in projection.handles]
                    if mine:
                        projection.apply(conn, mine)
                        applied += len(mine)
                if moved:
                    conn.execute(
                        view_positions.update()
                        .where(view_positions.c.projection.in_([p.name for p in moved]))
                        .values(position=up_to)
                    )
                self._purge_erased(conn, events)
        except BaseException:
            for projection in moved:
                projection.batch_ends(None)
            raise
        for projection in moved:
            projection.batch_ends(up_to)
        return applied

    # -- erasure ---------------------------------------------------------------------------

    def erase(self, customer_ids: Sequence[UUID], erased_at: datetime) -> None:
        """Remove every row of these customers that holds personal data, now, and remember
        them as erased (idempotent)."""
        with write_transaction(self.engine) as conn:
            self._erase(conn, customer_ids, erased_at)

    def _erase(self, conn: Connection, customer_ids: Sequence[UUID], erased_at: datetime) -> None:
        rows = [{"customer_id": c, "erased_at": erased_at} for c in customer_ids]
        insert_ignoring_duplicates(conn, erased_customers, rows)
        self._any_erased = True
        for projection in self.projections:
            projection.purge(conn, customer_ids)

    def erased_among(self, conn: Connection, customer_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these customers were erased."""
        wanted = list(set(customer_ids))
        if not wanted:
            return set()
        ec = erased_customers.c
        return set(conn.scalars(select(ec.customer_id).where(ec.customer_id.in_(wanted))))

    def _purge_erased(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """After a batch: record the erasures it carries, and purge again the rows it wrote
        for erased customers (in the same transaction: nothing personal is committed)."""
        for event in events:
            if event.type == _ERASED:
                self._erase(conn, [event.customer_id], event.occurred_at)
        if not self._any_erased and time.monotonic() - self._erasures_looked_at > 1.0:
            first = conn.scalar(select(erased_customers.c.customer_id).limit(1))
            self._any_erased = first is not None
            self._erasures_looked_at = time.monotonic()
        if not self._any_erased:
            return
        erased = self.erased_among(conn, (e.customer_id for e in events))
        if erased:
            for projection in self.projections:
                projection.purge(conn, sorted(erased))

    # -- retention -------------------------------------------------------------------------

    def expire_bodies_before(self, cutoff: datetime) -> dict[str, int]:
        """Blank, in one transaction, every message body the views hold of messages that
        happened before ``cutoff`` (retention by age, docs/retention.md); rows changed per
        projection (only those that changed some)."""
        changed: dict[str, int] = {}
        with write_transaction(self.engine) as conn:
            for projection in self.projections:
                count = projection.expire_bodies_before(conn, cutoff)
                if count:
                    changed[projection.name] = count
        return changed

    def apply_partition(self, topic: str, partition: int, events: Sequence[Envelope]) -> int:
        """Apply events read from one partition of ``topic`` (see :meth:`apply_partitions`)."""
        return self.apply_partitions(topic, {partition: events})

    def apply_partitions(self, topic: str, batches: Mapping[int, Sequence[Envelope]]) -> int:
        """Apply events read from partitions of ``topic`` (partition -> events in the order
        read), in ONE transaction with those partitions' positions. Returns how many
        (projection, event) pairs applied.

        Within a partition store positions only grow, so an event at or below a projection's
        position there, or below one before it in the batch, is a replay and is skipped.
        What is left goes to each projection in store order, all partitions together. The
        partitions' positions are locked first (PostgreSQL; SQLite's write lock does it),
        so two workers applying the same partition at once, say around a rebalance, take
        turns and the second skips what the first applied.
        """
        batches = {p: events for p, events in batches.items() if events}
        if not batches:
            return 0
        partitions = sorted(batches)
        pp = partition_positions.c
        applied = 0
        with write_transaction(self.engine) as conn:
            _lock_partitions(conn, topic, partitions)
            done: dict[tuple[str, int], int] = {
                (name, int(partition)): position
                for name, partition, position in conn.execute(
                    select(pp.projection, pp.partition, pp.position).where(
                        pp.topic == topic, pp.partition.in_(partitions)
                    )
                )
            }
            moved: list[dict[str, object]] = []
            for projection in self.projections:
                handles = projection.handles
                mine: list[Envelope] = []
                for partition in partitions:
                    seen = top = done.get((projection.name, partition), 0)
                    for event in batches[partition]:
                        if event.position > top:
                            top = event.position
                            if event.type in handles:
                                mine.append(event)
                    if top > seen:
                        moved.append(
                            {
                                "projection": projection.name,
                                "topic": topic,
                                "partition": partition,
                                "position": top,
                            }
                        )
                if mine:
                    if len(partitions) > 1:
                        mine.sort(key=_position)  # store order; per partition it already is
                    projection.apply(conn, mine)
                    applied += len(mine)
            upsert(conn, partition_positions, moved)
            self._purge_erased(conn, [e for events in batches.values() for e in events])
        return applied

    def apply_isolating(
        self,
        events: Sequence[Envelope],
        up_to: int,
        only: Iterable[str] | None = None,
        after: int | None = None,
    ) -> tuple[int, int]:
        """Apply event by event and projection by projection, setting aside (in
        ``view_dead_letters``) each event a projection refuses while its database works.

        For a batch that failed as a whole: one bad event must not hold up every timeline.
        Returns (pairs applied, pairs set aside). Raises when the database itself fails.
        """
        wanted = set(only) if only is not None else {p.name for p in self.projections}
        applied = dead = 0
        previous = after
        for event in events:
            for projection in self.projections:
                if projection.name not in wanted:
                    continue
                try:
                    applied += self.apply(
                        [event], up_to=event.position, only=[projection.name], after=previous
                    )
                except Exception as exc:
                    self._check_database()  # an outage is not the event's fault: stop here
                    self._set_aside(projection.name, event, exc)
                    dead += 1
            previous = event.position
        self.apply([], up_to=up_to, only=wanted, after=previous)
        return applied, dead

    def _check_database(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))

    def _set_aside(self, projection: str, event: Envelope, exc: Exception) -> None:
        log.error(
            "projection %s set aside event %s (%s at position %d): %s",
            projection,
            event.id,
            event.type,
            event.position,
            exc,
        )
        with write_transaction(self.engine) as conn:
            if self.positions(conn).get(projection, 0) >= event.position:
                return
            conn.execute(
                dead_letters.insert().values(
                    projection=projection,
                    position=event.position,
                    event_id=event.id,
                    event_type=event.type,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    set_aside_at=datetime.now(UTC),
                )
            )
            conn.execute(
                view_positions.update()
                .where(view_positions.c.projection == projection)
                .values(position=event.position)
            )

    def dead_letter_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(dead_letters)) or 0)

    def reset(self, name: str) -> None:
        """Drop a projection's tables and position; :meth:`create` makes them anew."""
        projection = self.by_name(name)
        with write_transaction(self.engine) as conn:  # checks, then drops: lock first
            projection.drop(conn)
            for table in reversed(projection.tables):
                table.drop(conn, checkfirst=True)
            conn.execute(view_positions.delete().where(view_positions.c.projection == name))
            conn.execute(
                partition_positions.delete().where(partition_positions.c.projection == name)
            )
        self.create()

    def partition_positions(self) -> dict[str, dict[str, int]]:
        """Per projection, the store position applied from each partition
        (``topic:partition``) of the distributed runtime."""
        pp = partition_positions.c
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(pp.projection, pp.topic, pp.partition, pp.position))
            for name, topic, partition, position in rows:
                found.setdefault(name, {})[f"{topic}:{partition}"] = position
        return found

    def rebuilt_up_to(
        self, names: Iterable[str], topic: str, partitions: int, position: int
    ) -> None:
        """After a rebuild from the store up to ``position``: every partition of ``topic``
        counts as applied up to there, so the events the projectors read next from Kafka at
        or below it are skipped (they are in the rebuilt tables already)."""
        rows = [
            {"projection": name, "topic": topic, "partition": p, "position": position}
            for name in names
            for p in range(partitions)
        ]
        with write_transaction(self.engine) as conn:
            upsert(conn, partition_positions, rows)


def _position(event: Envelope) -> int:
    return event.position


def _lock_partitions(conn: Connection, topic: str, partitions: Sequence[int]) -> None:
    """Lock the positions of these partitions of ``topic`` until the transaction ends."""
    lock_keys(conn, f"hub.views:{topic}", partitions)


def default_projections(
    *,
    shared_address_limit: int = SHARED_ADDRESS_LIMIT,
    default_region: str | None = None,
    service_levels: Callable[[], ServiceLevels] | None = None,
) -> list[Projection]:
    """The hub's read models, in the order a batch is applied (the directory before the
    duplicates, which read it). The arguments are the hub's settings
    (``HUB_IDENTITY__SHARED_ADDRESS_LIMIT``, ``HUB_DEFAULT_REGION``) for the duplicates, and
    where the service times get the current calendars and SLA policies from."""
    return [
        TimelineProjection(),
        DirectoryProjection(),
        ConversationsProjection(),
        DuplicatesProjection(shared_address_limit, default_region),
        HistoryProjection(),
        SegmentsProjection(),
        SearchProjection(),
        AutomationsProjection(),
        ServiceProjection(service_levels),
        BusinessProjection(),
        SurveysProjection(),
    ]
