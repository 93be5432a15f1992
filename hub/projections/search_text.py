"""The words of full-text search: how text is cut into words, what a query means, and how the
matched words are marked in a snippet (``hub.projections.search`` indexes and queries).

One rule cuts both documents and queries into words: runs of letters and digits, lower-cased;
everything else (punctuation, ``@``, ``+``, quotes, FTS operators) separates words. Accents are
folded by the database (SQLite FTS5 ``remove_diacritics 2``, PostgreSQL ``unaccent``), so
"zasu" finds "Žąsų" and "žąsų" finds "zasu". What a user types never reaches the database as
syntax: a query is parsed here into words, and each backend is given words only.

Query syntax (like a web search engine's):

- ``word other``: both words, anywhere, in any order;
- ``"two words"``: the words next to each other, in that order;
- ``refund OR return``: either (binds tighter than the implicit AND);
- ``-word`` or ``-"two words"``: not this;
- ``zas*``: a word that starts with ``zas`` (``"two wor"*``: the phrase's last word).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hub import memory

__all__ = [
    "Marker",
    "Part",
    "Query",
    "QueryError",
    "Term",
    "fold",
    "parse",
    "to_fts5",
    "word_spans",
    "words",
]

#: A run of letters and numbers (any script); see :func:`word_spans`.
_ALNUM = re.compile(r"[^\W_]+")
#: Numbers that are not digits (², ½, ①, Ⅻ): PostgreSQL's parser drops them, so here they
#: separate words like punctuation does, and documents and queries agree on every backend.
_NOT_DIGITS = frozenset(("No", "Nl"))
#: How much text a snippet shows around the first match (characters).
SNIPPET_CHARS = 180
#: Terms a query may have (a 200-character query has fewer).
MAX_TERMS = 64
_CHUNK = re.compile(r'(-?)"([^"]*)("\*)?"?|(\S+)')
#: Letters NFKD does not decompose but people type without their stroke.
_UNSTROKED = str.maketrans(
    {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ħ": "h", "Ħ": "H", "\u0131": "i"}
)
_ELLIPSIS = "…"
#: Control characters (NUL among them) separate words like spaces and go no further.
_CONTROLS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], " ")


class QueryError(ValueError):
    """A query with nothing to search for (no word outside a ``-`` exclusion)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word, or several that must stand next to each other (a phrase): ``text`` as typed
    (without quotes, ``-`` or ``*``) and its ``words``; ``prefix``: the last word is the start
    of a word."""

    text: str
    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """What to find: every group (each group: any of its terms), and none of ``excluded``."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    def positive_terms(self) -> list[Term]:
        return [term for group in self.groups for term in group]


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a snippet: text, and whether it is a matched word."""

    text: str
    match: bool = False


def words(text: str | None) -> list[str]:
    """The words of ``text``, lower-cased (accents kept: the database folds them)."""
    if not text:
        return []
    flat = unicodedata.normalize("NFC", text)
    return [flat[start:end].lower() for start, end in word_spans(flat)]


def word_spans(text: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """Where the words of ``text`` are (from ``start``): runs of letters and digits (any
    script)."""
    for match in _ALNUM.finditer(text, start):
        start, end = match.span()
        if match.group().isascii():
            yield start, end
            continue
        at = start
        for index in range(start, end):
            if unicodedata.category(text[index]) in _NOT_DIGITS:
                if index > at:
                    yield at, index
                at = index + 1
        if end > at:
            yield at, end


def indexed_words(*texts: str | None) -> str:
    """What a document's text is indexed as: its words, separated by spaces."""
    return " ".join(w for text in texts for w in words(text))


#: Words as a search compares them.
WORDS = memory.Part("search words", share=0.02, entry_bytes=240)


@memory.lru(WORDS)
def fold(word: str) -> str:
    """A word without case and accents (to mark the words a search matched)."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_UNSTROKED))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def parse(q: str) -> Query:
    """The query ``q`` means; :class:`QueryError` when it has no word to look for."""
    groups: list[tuple[Term, ...]] = []
    excluded: list[Term] = []
    either = False  # the previous chunk was OR
    for match in _CHUNK.finditer(q.translate(_CONTROLS)):
        negated, quoted, starred, bare = match.groups()
        if bare == "OR":
            either = bool(groups)
            continue
        if bare is not None:
            negated = "-" if bare.startswith("-") and len(bare) > 1 else ""
            body = bare[1:] if negated else bare
            text = body.rstrip("*")
            term = Term(text, tuple(words(text)), prefix=text != body)
        else:
            term = Term(quoted, tuple(words(quoted)), prefix=starred is not None)
        if not term.words:
            continue
        if negated:
            excluded.append(term)
        elif either:
            groups[-1] = (*groups[-1], term)
        else:
            groups.append((term,))
        either = False
        if len(groups) + len(excluded) >= MAX_TERMS:
            break
    if not groups:
        raise QueryError("the query has no word to search for (letters or digits)")
    return Query(tuple(groups), tuple(excluded))


def to_fts5(query: Query) -> str:
    """The query as an SQLite FTS5 expression: every term its text as typed in an FTS5
    string (quotes doubled: nothing inside is syntax), which FTS5 cuts into words as it cut
    the documents; combined with AND, OR and NOT."""
    anded = " AND ".join(_fts5_group(group) for group in query.groups)
    for term in query.excluded:
        anded = f"({anded}) NOT {_fts5_term(term)}"
    return anded


def _fts5_group(group: tuple[Term, ...]) -> str:
    if len(group) == 1:
        return _fts5_term(group[0])
    return "(" + " OR ".join(_fts5_term(t) for t in group) + ")"


def _fts5_term(term: Term) -> str:
    quoted = '"' + term.text.replace('"', '""') + '"'
    return f"{quoted} *" if term.prefix else quoted


# -- snippets -------------------------------------------------------------------------------


class Marker:
    """Marks the words a query looks for in the texts it found (built once per search)."""

    def __init__(self, query: Query) -> None:
        self.exact, self.prefixes = _wanted(query.positive_terms())

    def matches(self, word: str) -> bool:
        folded = fold(word)
        return folded in self.exact or any(folded.startswith(p) for p in self.prefixes)

    def highlight(self, text: str | None, width: int = SNIPPET_CHARS) -> tuple[Part, ...]:
        """``text`` (white space collapsed) around its first matched word, cut to about
        ``width`` characters at word boundaries, with every word the query looks for
        marked."""
        if not text:
            return ()
        flat = " ".join(unicodedata.normalize("NFC", text).split())
        words = word_spans(flat)
        first = next((s for s, e in words if self.matches(flat[s:e])), None)
        start, end = _window(flat, first or 0, width)
        parts: list[Part] = [Part(_ELLIPSIS)] if start > 0 else []
        at = start
        if first is not None:
            after = word_spans(flat, first)  # from the first match to the end of the window
            for s, e in after:
                if s >= end:
                    break
                if not self.matches(flat[s:e]):
                    continue
                e = min(e, end)
                if s > at:
                    parts.append(Part(flat[at:s]))
                parts.append(Part(flat[s:e], match=True))
                at = e
        if at < end:
            parts.append(Part(flat[at:end]))
        if end < len(flat):
            parts.append(Part(_ELLIPSIS))
        return tuple(parts)


def _wanted(terms: Iterable[Term]) -> tuple[set[str], set[str]]:
    """The folded words to mark: whole words, and starts of words."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for term in terms:
        folded = [fold(term.text[s:e]) for s, e in word_spans(term.text)]
        if term.prefix:
            exact.update(folded[:-1])
            prefixes.add(folded[-1])
        else:
            exact.update(folded)
    return exact, prefixes


def _window(text: str, first: int, width: int) -> tuple[int, int]:
    """Where a snippet of ``text`` starts and ends: a quarter of it before ``first``, cut at
    spaces (mid-word only where a word is longer than the snippet)."""
    if len(text) <= width:
        return 0, len(text)
    start = max(0, first - width // 4)
    if start > 0:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and first - space <= width // 2 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > first else end
    return start, end
