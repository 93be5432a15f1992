"""Duplicate suggestions, kept up to date as events arrive (docs/duplicates.md).

Each customer has **keys**: what another customer may share with it (``duplicate_keys``): its
emails by mailbox (``email:``) and mailbox name (``local:``), its phone numbers by national
significant number (``tel:``) and last seven digits (``tail:``), the addresses its messages
mention (same kinds, role ``mentioned``), its name folded (``name:``), and the proof of a chat
visitor who verified another customer's address (``proved:``). A batch recomputes the keys of
the customers it touches, and then only the **pairs** of their merge groups (the group's root
stands for it): the candidates are the groups sharing a key, each scored by
``hub.projections.duplicate_evidence``. A key held by more customers than the shared-address
limit (a front desk, a family phone) is no evidence and finds no candidates; a name more
common than :data:`NAME_BLOCK_LIMIT` finds none either. So the cost of a batch grows with what
it touches, never with the number of customers.

Pairs in one merge group are not suggested (a group is one root), nor pairs an agent
dismissed (``customer.duplicate_dismissed.v1`` between any members of the two groups). Merge
groups are read from the directory's ``directory_merges``, applied earlier in the same
transaction (the directory comes first in ``default_projections``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, func, or_, select, tuple_

from hub.events import (
    CustomerCreated,
    CustomerDuplicateDismissed,
    CustomerDuplicateRestored,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerUnmerged,
    Envelope,
    InteractionReceived,
)
from hub.events.duplicate_keys import (
    BUILTIN,
    canonical_email,
    fold_name,
    local_part_key,
    mentioned_addresses,
    phone_key,
)
from hub.projections import duplicate_tables as tables
from hub.projections.base import Projection, utc
from hub.projections.duplicate_evidence import KeyRow, evidence_between, grade
from hub.projections.duplicate_tables import (
    duplicate_dismissals,
    duplicate_keys,
    duplicate_pairs,
    ordered,
)
from hub.sql import insert_ignoring_duplicates, upsert

__all__ = [
    "DuplicatesProjection",
    "address_keys",
    "configure_duplicates",
    "duplicate_dismissals",
    "duplicate_keys",
    "duplicate_pairs",
]

#: A name shared by more customers than this finds no candidates by itself (it still counts
#: as evidence between customers that share something else).
NAME_BLOCK_LIMIT = 5
#: Default of ``HUB_IDENTITY__SHARED_ADDRESS_LIMIT`` (``DuplicatesProjection.configure``).
SHARED_ADDRESS_LIMIT = 3
_VERIFICATION = "verification"


@dataclass
class _Changes:
    """What one batch changes in the keys."""

    added: dict[tuple[UUID, str, str], dict[str, Any]] = field(default_factory=dict)
    mentions: dict[tuple[UUID, str, str], dict[str, Any]] = field(default_factory=dict)
    names: dict[UUID, dict[str, Any] | None] = field(default_factory=dict)
    dismissed: dict[tuple[UUID, UUID], bool] = field(default_factory=dict)
    touched: set[UUID] = field(default_factory=set)


class DuplicatesProjection(Projection):
    name = "duplicates"
    handles = frozenset(
        {
            "customer.created.v1",
            "customer.identity_linked.v1",
            "customer.profile_updated.v1",
            "customer.merged.v1",
            "customer.unmerged.v1",
            "customer.duplicate_dismissed.v1",
            "customer.duplicate_restored.v1",
            "interaction.received.v1",
        }
    )
    tables = (duplicate_keys, duplicate_pairs, duplicate_dismissals)

    def __init__(
        self, shared_address_limit: int = SHARED_ADDRESS_LIMIT, default_region: str | None = None
    ) -> None:
        self.configure(shared_address_limit, default_region)

    def configure(self, shared_address_limit: int, default_region: str | None) -> None:
        """The hub's settings: ``HUB_IDENTITY__SHARED_ADDRESS_LIMIT`` and
        ``HUB_DEFAULT_REGION`` (how numbers in messages without a country code are read when
        the writer's own number does not tell). A change applies to pairs scored from then
        on; ``hub projections rebuild duplicates`` applies it to all."""
        self.shared_address_limit = shared_address_limit
        self.default_region = default_region

    # -- erasure and retention -----------------------------------------------------------

    def purge(self, conn: Connection, customer_ids: Sequence[UUID]) -> None:
        """Keys (addresses, names, mentions) and every pair with their evidence go."""
        ids = list(customer_ids)
        k, p, d = duplicate_keys.c, duplicate_pairs.c, duplicate_dismissals.c
        their_keys = set(conn.scalars(select(k.key).where(k.customer_id.in_(ids))))
        before = self._counts(conn, their_keys)
        conn.execute(delete(duplicate_keys).where(k.customer_id.in_(ids)))
        conn.execute(
            delete(duplicate_pairs).where(or_(p.customer_a.in_(ids), p.customer_b.in_(ids)))
        )
        conn.execute(
            delete(duplicate_dismissals).where(or_(d.customer_a.in_(ids), d.customer_b.in_(ids)))
        )
        touched = self._crossed(conn, before, their_keys) - set(ids)
        if touched:
            self._rescore(conn, touched)

    def expire_bodies_before(self, conn: Connection, cutoff: datetime) -> int:
        """Forget the addresses mentioned only in messages older than ``cutoff`` (they come
        from message bodies), and score their customers' pairs again."""
        k = duplicate_keys.c
        old = k.role == "mentioned", k.seen_at < utc(cutoff)
        rows = conn.execute(select(k.customer_id, k.key).where(*old)).all()
        if not rows:
            return 0
        changed = {r.key for r in rows}
        before = self._counts(conn, changed)
        conn.execute(delete(duplicate_keys).where(*old))
        touched = {r.customer_id for r in rows} | self._crossed(conn, before, changed)
        self._rescore(conn, touched)
        return len(rows)

    # -- folding events into keys --------------------------------------------------------

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        changes = _Changes()
        for event in events:
            self._collect(event, changes)
        new_rows = self._new_rows(conn, changes)
        old_names = self._old_names(conn, changes.names)
        changed_keys = {r["key"] for r in new_rows} | set(old_names.values())
        changed_keys |= {r["key"] for r in changes.names.values() if r is not None}
        before = self._counts(conn, changed_keys)
        insert_ignoring_duplicates(
            conn, duplicate_keys, [r for r in new_rows if r["role"] != "mentioned"]
        )
        upsert(conn, duplicate_keys, list(changes.mentions.values()))
        self._save_names(conn, changes.names, old_names)
        self._save_dismissals(conn, changes.dismissed)
        touched = changes.touched | {r["customer_id"] for r in new_rows}
        touched |= {c for c in changes.names if _name_changed(changes.names[c], old_names.get(c))}
        touched |= self._crossed(conn, before, changed_keys)
        if touched:
            self._rescore(conn, touched)

    def _collect(self, event: Envelope, changes: _Changes) -> None:
        at = utc(event.occurred_at)
        cid = event.customer_id
        if isinstance(event, CustomerCreated):
            changes.names[cid] = _name_row(cid, event.data.display_name, at)
            if event.data.address:
                _own(changes, cid, event.data.address, at)
        elif isinstance(event, CustomerIdentityLinked):
            if event.data.address:
                _own(changes, cid, event.data.address, at)
        elif isinstance(event, CustomerProfileUpdated):
            changes.names[cid] = _name_row(cid, event.data.display_name, at)
        elif isinstance(event, CustomerMerged):
            into = event.data.into_customer_id
            changes.touched |= {cid, into}
            if event.data.reason == _VERIFICATION and event.data.actor is None:
                proof = f"proved:{cid}"
                for who, role in ((cid, "visitor"), (into, "prover")):
                    row = {"customer_id": who, "key": proof, "role": role, "value": str(cid)}
                    changes.added[(who, proof, role)] = row | {"seen_at": at}
        elif isinstance(event, CustomerUnmerged):
            changes.touched |= {cid, event.data.from_customer_id}
        elif isinstance(event, CustomerDuplicateDismissed | CustomerDuplicateRestored):
            other = event.data.other_customer_id
            dismissed = isinstance(event, CustomerDuplicateDismissed)
            changes.dismissed[ordered(cid, other)] = dismissed
            changes.touched |= {cid, other}
        elif isinstance(event, InteractionReceived):
            data = event.data
            for text in (data.text, data.subject):
                for address in mentioned_addresses(text, [self.default_region], data.address):
                    if address != data.address:
                        for key, value in address_keys(address):
                            row = {"customer_id": cid, "key": key, "role": "mentioned"}
                            changes.mentions[(cid, key, "mentioned")] = row | {
                                "value": value,
                                "seen_at": at,
                            }

    def _new_rows(self, conn: Connection, changes: _Changes) -> list[dict[str, Any]]:
        """The rows of ``changes`` not in the table yet (a mention seen again only moves its
        time: ``changes.mentions`` keeps those for the upsert, but they touch nothing)."""
        wanted = {**changes.added, **changes.mentions}
        if not wanted:
            return []
        k = duplicate_keys.c
        known: set[tuple[UUID, str, str]] = set()
        for chunk in tables.chunks(list(wanted)):
            known |= {
                (r.customer_id, r.key, r.role)
                for r in conn.execute(
                    select(k.customer_id, k.key, k.role).where(
                        tuple_(k.customer_id, k.key, k.role).in_(chunk)
                    )
                )
            }
        return [row for ident, row in wanted.items() if ident not in known]

    def _old_names(
        self, conn: Connection, names: dict[UUID, dict[str, Any] | None]
    ) -> dict[UUID, str]:
        if not names:
            return {}
        k = duplicate_keys.c
        found: dict[UUID, str] = {}
        for chunk in tables.chunks(list(names)):
            found |= {
                r.customer_id: r.key
                for r in conn.execute(
                    select(k.customer_id, k.key).where(k.customer_id.in_(chunk), k.role == "name")
                )
            }
        return found

    def _save_names(
        self,
        conn: Connection,
        names: dict[UUID, dict[str, Any] | None],
        old: dict[UUID, str],
    ) -> None:
        k = duplicate_keys.c
        gone = [c for c, row in names.items() if c in old and (row is None or row["key"] != old[c])]
        for chunk in tables.chunks(gone):
            conn.execute(delete(duplicate_keys).where(k.customer_id.in_(chunk), k.role == "name"))
        upsert(conn, duplicate_keys, [row for row in names.values() if row is not None])

    def _save_dismissals(self, conn: Connection, dismissed: dict[tuple[UUID, UUID], bool]) -> None:
        rows = [{"customer_a": a, "customer_b": b} for (a, b), yes in dismissed.items() if yes]
        insert_ignoring_duplicates(conn, duplicate_dismissals, rows)
        d = duplicate_dismissals.c
        for a, b in (pair for pair, yes in dismissed.items() if not yes):
            conn.execute(delete(duplicate_dismissals).where(d.customer_a == a, d.customer_b == b))

    # -- which keys say something ---------------------------------------------------------

    def limit_of(self, key: str) -> int:
        """How many customers may hold ``key`` for it to count."""
        return NAME_BLOCK_LIMIT if key.startswith("name:") else self.shared_address_limit

    def _counts(self, conn: Connection, keys: Iterable[str]) -> dict[str, int]:
        """How many customers hold each of ``keys``."""
        k = duplicate_keys.c
        counts: dict[str, int] = {}
        for chunk in tables.chunks(sorted(set(keys))):
            query = (
                select(k.key, func.count(k.customer_id.distinct()))
                .where(k.key.in_(chunk))
                .group_by(k.key)
            )
            counts |= {key: int(n) for key, n in conn.execute(query)}
        return counts

    def _crossed(self, conn: Connection, before: dict[str, int], keys: Iterable[str]) -> set[UUID]:
        """The holders of those ``keys`` that went from shared to not or back (their pairs
        gained or lost the key as evidence)."""
        after = self._counts(conn, keys)
        crossed = [
            key
            for key in set(keys)
            if (before.get(key, 0) > self.limit_of(key)) != (after.get(key, 0) > self.limit_of(key))
        ]
        k = duplicate_keys.c
        holders: set[UUID] = set()
        for chunk in tables.chunks(crossed):
            holders |= set(conn.scalars(select(k.customer_id).where(k.key.in_(chunk))))
        return holders

    # -- scoring pairs --------------------------------------------------------------------

    def _rescore(self, conn: Connection, customers: set[UUID]) -> None:
        """Score again every pair of the groups of ``customers``."""
        p = duplicate_pairs.c
        roots = tables.roots(conn, customers)
        members = [c for c in customers if roots[c] != c]  # merged: their group speaks now
        for chunk in tables.chunks(members):
            conn.execute(
                delete(duplicate_pairs).where(or_(p.customer_a.in_(chunk), p.customer_b.in_(chunk)))
            )
        scored = self._scoregroups(conn, set(roots.values()))
        for chunk in tables.chunks(sorted(set(roots.values()))):
            conn.execute(
                delete(duplicate_pairs).where(or_(p.customer_a.in_(chunk), p.customer_b.in_(chunk)))
            )
        insert_ignoring_duplicates(conn, duplicate_pairs, scored)

    def _scoregroups(self, conn: Connection, roots: set[UUID]) -> list[dict[str, Any]]:
        """The suggested pairs of each of ``roots`` (merge groups) with any other group."""
        groups = tables.groups(conn, roots)
        rows = tables.rows_of(conn, [m for group in groups.values() for m in group])
        counts = self._counts(conn, {r.key for r in rows})
        usable = {key for key, n in counts.items() if 2 <= n <= self.limit_of(key)}
        holders = tables.holders(conn, usable)
        holder_roots = tables.roots(conn, {h.customer_id for h in holders})
        root_of = {m: r for r, group in groups.items() for m in group}
        by_key: dict[str, set[UUID]] = {}
        for h in holders:
            by_key.setdefault(h.key, set()).add(holder_roots[h.customer_id])
        candidates: dict[UUID, set[UUID]] = {}
        for row in rows:
            if row.key in usable:
                mine = root_of[row.customer_id]
                candidates.setdefault(mine, set()).update(by_key.get(row.key, set()) - {mine})
        others = {c for found in candidates.values() for c in found} - set(groups)
        groups |= tables.groups(conn, others)
        rows += tables.rows_of(conn, [m for r in others for m in groups[r]])
        root_of = {m: r for r, group in groups.items() for m in group}
        dismissed = tables.dismissed(conn, root_of)
        per_group: dict[UUID, list[KeyRow]] = {}
        for row in rows:
            if row.key in usable or row.role == "name":
                per_group.setdefault(root_of[row.customer_id], []).append(row)
        pairs: dict[tuple[UUID, UUID], dict[str, Any]] = {}
        for root, found in candidates.items():
            for other in found:
                pair = ordered(root, other)
                if pair in pairs or pair in dismissed:
                    continue
                evidence = evidence_between(per_group[pair[0]], per_group.get(pair[1], []))
                score, band = grade(evidence)
                if band is not None:
                    pairs[pair] = {
                        "customer_a": pair[0],
                        "customer_b": pair[1],
                        "score": score,
                        "band": band,
                        "evidence": evidence,
                    }
        return list(pairs.values())


# -- keys of an address and of a name ------------------------------------------------------


def address_keys(address: str) -> list[tuple[str, str]]:
    """The (key, value) rows an address gives: an email its mailbox and mailbox name, a
    phone number its national number and last digits; nothing for a blocklisted one
    (:data:`~hub.events.duplicate_keys.BUILTIN_BLOCKLIST`) or another kind."""
    if BUILTIN.blocks(address):
        return []
    if address.startswith("email:"):
        found = [(canonical_email(address), address)]
        local = local_part_key(address)
        if local:
            found.append((f"local:{local}", address))
        return found
    if address.startswith("phone:"):
        key = phone_key(address)
        if key is None:
            return []
        found = [(f"tel:{key.national}", f"phone:{key.e164}")]
        if key.tail:
            found.append((f"tail:{key.tail}", f"phone:{key.e164}"))
        return found
    return []


def _own(changes: _Changes, customer_id: UUID, address: str, at: datetime) -> None:
    for key, value in address_keys(address):
        row = {"customer_id": customer_id, "key": key, "role": "own", "value": value}
        changes.added[(customer_id, key, "own")] = row | {"seen_at": at}


def _name_row(customer_id: UUID, name: str | None, at: datetime) -> dict[str, Any] | None:
    folded = fold_name(name)
    if folded is None or name is None:
        return None
    return {
        "customer_id": customer_id,
        "key": f"name:{folded}"[:400],
        "role": "name",
        "value": name.strip()[:400],
        "seen_at": at,
    }


def _name_changed(new: dict[str, Any] | None, old_key: str | None) -> bool:
    return (new["key"] if new else None) != old_key


def configure_duplicates(
    projections: Iterable[Projection], *, shared_address_limit: int, default_region: str | None
) -> None:
    """Hand the settings (``HUB_IDENTITY__SHARED_ADDRESS_LIMIT``, ``HUB_DEFAULT_REGION``) to
    the duplicates projection among ``projections`` (``Views.projections``), if there is one."""
    for projection in projections:
        if isinstance(projection, DuplicatesProjection):
            projection.configure(shared_address_limit, default_region)
