"""Reading duplicate suggestions: a customer's possible duplicates, the review queue (every
pair, highest score first, a page at a time), and the preview of merging a pair.

Each read scores a pair again from its stored evidence minus what ``blocked`` refuses, so
an address put on the blocklist stops counting at once, before any event is projected.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, RowMapping, and_, func, or_, select, tuple_

from hub.projections.directory import CustomerRecord, DirectoryProjection
from hub.projections.duplicate_evidence import Band, Evidence, grade, without_blocked
from hub.projections.duplicates import duplicate_pairs
from hub.projections.timeline import timeline_items

Blocked = Callable[[str], bool]
#: CustomerRecord fields that are no profile value to choose between in a merge.
_NOT_PROFILE = frozenset(
    {"customer_id", "created_at", "last_activity_at", "identities", "merged_customer_ids"}
)
_SUGGESTIONS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A pair of customers (merge groups, each shown as its root's profile) that may be one
    person, with the evidence that says so."""

    first: CustomerRecord
    second: CustomerRecord
    score: int
    band: Band
    evidence: list[Evidence]

    def other_than(self, customer_id: UUID) -> CustomerRecord:
        return self.second if self.first.customer_id == customer_id else self.first


def nobody_blocked(_: str) -> bool:
    return False


def suggestions_for(
    conn: Connection,
    directory: DirectoryProjection,
    customer_id: UUID,
    blocked: Blocked = nobody_blocked,
) -> list[Suggestion]:
    """The possible duplicates of ``customer_id``'s merge group, highest score first."""
    root = directory.root(conn, customer_id)
    p = duplicate_pairs.c
    rows = (
        conn.execute(
            select(duplicate_pairs)
            .where(or_(p.customer_a == root, p.customer_b == root))
            .order_by(p.score.desc(), p.customer_a, p.customer_b)
            .limit(_SUGGESTIONS_SHOWN)
        )
        .mappings()
        .all()
    )
    found = _suggestions(conn, directory, rows, blocked)
    return sorted(found, key=lambda s: -s.score)


def review_queue(
    conn: Connection,
    directory: DirectoryProjection,
    limit: int,
    cursor: str | None = None,
    band: Band | None = None,
    blocked: Blocked = nobody_blocked,
) -> tuple[list[Suggestion], str | None]:
    """Every suggested pair, highest score first, ``limit`` a page (fewer when blocklisted
    evidence makes some drop), and the cursor of the next page. ``ValueError``: a cursor
    this function did not make."""
    p = duplicate_pairs.c
    query = (
        select(duplicate_pairs)
        .order_by(p.score.desc(), p.customer_a, p.customer_b)
        .limit(limit + 1)
    )
    if band is not None:
        query = query.where(p.band == band)
    if cursor is not None:
        score, a, b = decode_cursor(cursor)
        query = query.where(
            or_(
                p.score < score, and_(p.score == score, tuple_(p.customer_a, p.customer_b) > (a, b))
            )
        )
    rows = list(conn.execute(query).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    found = _suggestions(conn, directory, rows, blocked)
    if band is not None:
        found = [s for s in found if s.band == band]
    last = rows[-1] if more and rows else None
    following = (
        encode_cursor(last["score"], last["customer_a"], last["customer_b"]) if last else None
    )
    return found, following


def _suggestions(
    conn: Connection,
    directory: DirectoryProjection,
    rows: Sequence[RowMapping],
    blocked: Blocked,
) -> list[Suggestion]:
    profiles: dict[UUID, CustomerRecord | None] = {}
    found = []
    for row in rows:
        evidence = without_blocked(row["evidence"], blocked)
        score, band = grade(evidence)
        if band is None:
            continue
        pair = []
        for cid in (row["customer_a"], row["customer_b"]):
            if cid not in profiles:
                profiles[cid] = directory.profile(conn, cid)
            pair.append(profiles[cid])
        first, second = pair
        if first is None or second is None:
            continue  # not projected yet, or erased
        found.append(Suggestion(first, second, score, band, evidence))
    return found


def encode_cursor(score: int, a: UUID, b: UUID) -> str:
    raw = f"{score}:{a}:{b}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, UUID, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, a, b = raw.split(":")
        return int(score), UUID(a), UUID(b)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor of the review queue") from exc


# -- merge preview ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChoice:
    """One profile value of a merge: each side's, the merged one, and where it comes from
    (``survivor``, ``merged``, ``both`` for lists joined); ``conflict`` when both sides set
    different values (the survivor's wins)."""

    name: str
    survivor: Any
    merged: Any
    result: Any
    source: str | None
    conflict: bool


@dataclass(frozen=True, slots=True)
class MergePreview:
    """What merging ``merged`` into ``survivor`` would show: the two profiles, the messages
    per channel of each side and together, and every profile value with the one that wins."""

    survivor: CustomerRecord
    merged: CustomerRecord
    survivor_channels: dict[str, int]
    merged_channels: dict[str, int]
    fields: list[FieldChoice]

    @property
    def channels(self) -> dict[str, int]:
        names = sorted(set(self.survivor_channels) | set(self.merged_channels))
        return {n: self.survivor_channels.get(n, 0) + self.merged_channels.get(n, 0) for n in names}

    @property
    def conflicts(self) -> list[FieldChoice]:
        return [f for f in self.fields if f.conflict]


def merge_preview(
    conn: Connection, directory: DirectoryProjection, survivor_id: UUID, merged_id: UUID
) -> MergePreview | None:
    """The preview of merging ``merged_id``'s group into ``survivor_id``'s; None when either
    is not in the views. Both in one group: the caller says so (compare the root ids)."""
    survivor = directory.profile(conn, survivor_id)
    merged = directory.profile(conn, merged_id)
    if survivor is None or merged is None:
        return None
    return MergePreview(
        survivor=survivor,
        merged=merged,
        survivor_channels=_messages_per_channel(conn, directory.group(conn, survivor_id)),
        merged_channels=_messages_per_channel(conn, directory.group(conn, merged_id)),
        fields=profile_choices(survivor, merged),
    )


def profile_choices(survivor: CustomerRecord, merged: CustomerRecord) -> list[FieldChoice]:
    """Every profile field of :class:`CustomerRecord` (whatever fields it has), lists joined,
    mappings key by key, other values the survivor's when set, else the merged one's."""
    choices: list[FieldChoice] = []
    for f in fields(CustomerRecord):
        if f.name in _NOT_PROFILE:
            continue
        mine, theirs = getattr(survivor, f.name), getattr(merged, f.name)
        if isinstance(mine, tuple | list) or isinstance(theirs, tuple | list):
            joined = sorted({*(mine or ()), *(theirs or ())}, key=str)
            source = "both" if mine and theirs else ("survivor" if mine else "merged")
            choices.append(
                FieldChoice(f.name, mine, theirs, joined, source if joined else None, False)
            )
        elif isinstance(mine, Mapping) and isinstance(theirs, Mapping):
            for key in sorted(set(mine) | set(theirs), key=str):
                choices.append(_choice(f"{f.name}.{key}", mine.get(key), theirs.get(key)))
        else:
            choices.append(_choice(f.name, mine, theirs))
    return [c for c in choices if _is_set(c.survivor) or _is_set(c.merged)]


def _choice(name: str, mine: Any, theirs: Any) -> FieldChoice:
    if _is_set(mine):
        return FieldChoice(name, mine, theirs, mine, "survivor", _is_set(theirs) and theirs != mine)
    return FieldChoice(name, mine, theirs, theirs, "merged" if _is_set(theirs) else None, False)


def _is_set(value: Any) -> bool:
    if isinstance(value, tuple | list | dict | str):
        return bool(value)
    return value is not None


def _messages_per_channel(conn: Connection, group: Sequence[UUID]) -> dict[str, int]:
    t = timeline_items.c
    rows = conn.execute(
        select(t.channel, func.count())
        .where(t.customer_id.in_(list(group)), t.kind == "message")
        .group_by(t.channel)
    )
    return {str(channel): int(count) for channel, count in rows if channel}
