"""Why two customers may be one person: the evidence items a pair of customers (or of merge
groups) shows, their weights, and the score and band they add up to (docs/duplicates.md).

Pure functions: the duplicates projection scores pairs with them as events arrive, and the
readers score again after dropping evidence the blocklist now refuses, so a blocklist change
takes effect at once.

- A strong identifier (the same mailbox or phone number written differently, an address one
  customer mentioned that the other owns, a chat visitor who proved the other's address) is
  what a **high** suggestion needs.
- A name is weak: the same name alone is **low** at most; with a matching mailbox name or
  phone suffix it is **medium**.
- Clearly different names weigh against: a strong identifier shared by two differently named
  people (a family phone, an office mailbox) is **medium**, never high.

Names are compared word by word (accent-folded, ``rapidfuzz.fuzz.ratio`` >= 85 per word, an
initial matching its word), not with ``WRatio`` or ``token_sort_ratio`` on whole names:
those rate "Anna Nováková" and "Jana Nováková" 92 of 100, though they are two people.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from rapidfuzz import fuzz

from hub.events.duplicate_keys import fold_name, phone_key

Band = Literal["high", "medium", "low"]
BANDS: tuple[Band, ...] = ("high", "medium", "low")

#: Weights (points of 100) of each kind of evidence.
WEIGHTS: dict[str, int] = {
    "verified_visitor": 95,
    "same_email": 90,
    "same_phone": 90,
    "same_phone_other_country": 80,
    "mentioned_address": 85,
    "mentioned_number_other_country": 75,
    "both_mentioned": 35,
    "email_local_part": 30,
    "same_name": 25,
    "same_first_name": 10,
    "phone_suffix": 20,
    "similar_name": 18,
    "name_part": 15,
    "first_name_part": 8,
    "names_differ": -30,
}
#: Evidence a high suggestion needs one of.
STRONG = frozenset(
    {
        "verified_visitor",
        "same_email",
        "same_phone",
        "same_phone_other_country",
        "mentioned_address",
    }
)
HIGH, MEDIUM, LOW = 80, 45, 25
#: Two words of names are one when ``fuzz.ratio`` reaches this (a typo, a missing diacritic).
WORD_MATCH = 85


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One thing known about a customer that another customer may share (a row of
    ``duplicate_keys``): its comparison ``key``, its ``role`` (own, mentioned, name, visitor,
    prover) and the ``value`` as the customer has it (address, name, or customer id)."""

    customer_id: UUID
    key: str
    role: str
    value: str


Evidence = dict[str, Any]  # kind, detail, weight, addresses (what a blocklist may refuse)


def item(kind: str, detail: str, addresses: Iterable[str] = ()) -> Evidence:
    return {
        "kind": kind,
        "detail": detail,
        "weight": WEIGHTS[kind],
        "addresses": sorted(set(addresses)),
    }


def shown(address: str) -> str:
    """An address as a person reads it: ``email:a@b.lt`` is ``a@b.lt``."""
    kind, sep, value = address.partition(":")
    return value if sep and kind in ("email", "phone") else address


def grade(evidence: Sequence[Evidence]) -> tuple[int, Band | None]:
    """The score (0-100) and band of a pair with this evidence (None: not worth showing)."""
    score = max(0, min(100, sum(int(e["weight"]) for e in evidence)))
    strong = any(e["kind"] in STRONG for e in evidence)
    if strong and score >= HIGH:
        return score, "high"
    if score >= MEDIUM:
        return score, "medium"
    if score >= LOW:
        return score, "low"
    return score, None


def without_blocked(evidence: Sequence[Evidence], blocked: Callable[[str], bool]) -> list[Evidence]:
    """The evidence that names no address ``blocked`` refuses."""
    return [e for e in evidence if not any(blocked(a) for a in e.get("addresses", ()))]


# -- evidence between two groups -----------------------------------------------------------


def evidence_between(mine: Sequence[KeyRow], theirs: Sequence[KeyRow]) -> list[Evidence]:
    """Every item of evidence that the customers of one group (``mine``: their key rows) and
    of another (``theirs``) are one person. Only rows of keys both hold and that are not
    shared by too many customers should be given, plus every name row."""
    found: dict[tuple[str, str], Evidence] = {}
    by_key: dict[str, list[KeyRow]] = {}
    for row in theirs:
        by_key.setdefault(row.key, []).append(row)
    strong_kinds: set[str] = set()
    weak: list[tuple[KeyRow, KeyRow]] = []
    for row in mine:
        for other in by_key.get(row.key, ()):
            kind = row.key.partition(":")[0]
            if kind in ("tail", "local"):
                weak.append((row, other))
                continue
            made = _identifier(kind, row, other)
            if made is not None:
                found.setdefault((made["kind"], made["detail"]), made)
                if made["kind"] != "both_mentioned":
                    strong_kinds.add(kind)
    for row, other in weak:  # a suffix or mailbox name says nothing beside the whole address
        kind = row.key.partition(":")[0]
        if kind == "tail" and "tel" not in strong_kinds:
            made = _suffix(row, other)
        elif kind == "local" and "email" not in strong_kinds:
            made = _local_part(row, other)
        else:
            made = None
        if made is not None:
            found.setdefault((made["kind"], made["detail"]), made)
    names = compare_names(
        [r.value for r in mine if r.role == "name"], [r.value for r in theirs if r.role == "name"]
    )
    if names is not None:
        found[(names["kind"], names["detail"])] = names
    return sorted(found.values(), key=lambda e: (-int(e["weight"]), e["kind"], e["detail"]))


def _identifier(kind: str, row: KeyRow, other: KeyRow) -> Evidence | None:
    """Evidence from an email (``email:``), a number (``tel:``) or a proof (``proved:``)."""
    if kind == "proved":
        if {row.role, other.role} == {"visitor", "prover"}:
            return item(
                "verified_visitor",
                "a chat visitor proved an address of the other customer (a merge by "
                "verification, later undone)",
            )
        return None
    roles = {row.role, other.role}
    if roles == {"mentioned"}:
        return item("both_mentioned", f"both wrote {shown(row.value)} in a message", [row.value])
    if roles == {"own"}:
        if kind == "email":
            return item(
                "same_email",
                f"{shown(row.value)} and {shown(other.value)} reach one mailbox",
                [row.value, other.value],
            )
        return _same_number(row.value, other.value)
    if roles == {"own", "mentioned"}:
        owned, said = (row, other) if row.role == "own" else (other, row)
        if kind == "tel" and _country(owned.value) != _country(said.value):
            return item(
                "mentioned_number_other_country",
                f"a message mentions {shown(said.value)}, the number {shown(owned.value)} of "
                "the other customer with another country code",
                [owned.value, said.value],
            )
        return item(
            "mentioned_address",
            f"a message mentions {shown(said.value)}, an address of the other customer",
            [owned.value, said.value],
        )
    return None


def _same_number(a: str, b: str) -> Evidence:
    first, second = sorted((a, b))
    if _country(a) == _country(b):
        return item("same_phone", f"{shown(first)} and {shown(second)} are one number", [a, b])
    return item(
        "same_phone_other_country",
        f"{shown(first)} and {shown(second)} are one number with another country code",
        [a, b],
    )


def _country(address: str) -> int | None:
    key = phone_key(address)
    return key.country_code if key else None


def _suffix(row: KeyRow, other: KeyRow) -> Evidence | None:
    if row.value == other.value:
        return None
    first, second = sorted((row.value, other.value))
    return item("phone_suffix", f"{first} and {second} end with the same 7 digits", [first, second])


def _local_part(row: KeyRow, other: KeyRow) -> Evidence | None:
    if row.value == other.value:
        return None
    first, second = sorted((row.value, other.value))
    name = row.key.partition(":")[2]
    return item(
        "email_local_part",
        f"{shown(first)} and {shown(second)} share the mailbox name {name}",
        [first, second],
    )


# -- names ---------------------------------------------------------------------------------

#: How names compare, best first, with the evidence kind of each (None: no evidence).
_NAME_RANK = ("same", "similar", "part", "differ")


def compare_names(mine: Sequence[str], theirs: Sequence[str]) -> Evidence | None:
    """The name evidence between two groups' names as written (the best of every pair of
    names), or None when either has no name."""
    best: tuple[int, str, str, str] | None = None
    for a in mine:
        for b in theirs:
            folded_a, folded_b = fold_name(a), fold_name(b)
            if folded_a is None or folded_b is None:
                continue
            how = name_relation(folded_a, folded_b)
            if how is None:
                continue
            rank = _NAME_RANK.index(how)
            if best is None or rank < best[0]:
                best = (rank, how, a, b)
    if best is None:
        return None
    _, how, a, b = best
    words = min(len((fold_name(a) or "").split()), len((fold_name(b) or "").split()))
    if how == "same":
        kind = "same_name" if words >= 2 else "same_first_name"
        return item(kind, f"both are named {a}")
    if how == "similar":
        return item("similar_name", f"similar names: {a} / {b}")
    if how == "part":
        kind = "name_part" if words >= 2 else "first_name_part"
        return item(kind, f"one name is part of the other: {a} / {b}")
    return item("names_differ", f"different names: {a} / {b}")


def name_relation(a: str, b: str) -> str | None:
    """How two folded names (``fold_name``) relate: same, similar (every word matches, with
    a typo or an initial), part (every word of the shorter is in the longer), differ (a word
    of the shorter matches none of the longer); None for an empty name."""
    left, right = a.split(), b.split()
    if not left or not right:
        return None
    if left == right:
        return "same"
    short, long = (left, right) if len(left) <= len(right) else (right, left)
    unused = list(long)
    for word in short:
        match = max(unused, key=lambda w: _word_score(word, w))
        if _word_score(word, match) < WORD_MATCH:
            return "differ"
        unused.remove(match)
    return "similar" if len(short) == len(long) else "part"


def _word_score(a: str, b: str) -> float:
    if len(a) == 1 or len(b) == 1:  # an initial
        return 100.0 if a[0] == b[0] else 0.0
    return float(fuzz.ratio(a, b))
