"""Survey replies: the CSAT (1-5) or NPS (0-10) score in a customer's free-text answer ("5",
"4/5", "penki", "★★★☆☆", "👍", "9 - quick answer"), with any comment after it. A reply that is
not clearly a score gives ``None`` and is handled as an ordinary message. Pure.

A wrong score is worse than a missed one (the customer can still click the survey link), so
anything ambiguous gives ``None``: two numbers, a number inside a sentence, decimals, words
around the score other than :data:`FILLER_WORDS`, stars or thumbs on the 0-10 scale.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "FILLER_WORDS",
    "MAX_HEAD_CHARS",
    "NUMBER_WORDS",
    "Reply",
    "Scale",
    "parse_reply",
    "parse_score",
]

Scale = Literal["csat", "nps"]

#: How much of a reply (after stripping) is read for the score; a comment may run on past it.
MAX_HEAD_CHARS = 200

#: Number words 0..10 by language: eleven space-separated entries, "/" between accepted
#: spellings of one number. They are matched after case folding and stripping diacritics, so
#: "pet" matches "pět" and "funf" matches "fünf".
NUMBER_WORDS: Mapping[str, str] = {
    "en": "zero one two three four five six seven eight nine ten",
    "lt": "nulis vienas/viena du/dvi trys keturi/keturios penki/penkios šeši/šešios "
    "septyni/septynios aštuoni/aštuonios devyni/devynios dešimt",
    "lv": "nulle viens/viena divi/divas trīs četri/četras pieci/piecas seši/sešas "
    "septiņi/septiņas astoņi/astoņas deviņi/deviņas desmit",
    "cs": "nula jedna/jeden/jedno dva/dvě tři čtyři pět šest sedm osm devět deset",
    "sk": "nula jeden/jedna/jedno dva/dve tri štyri päť šesť sedem osem deväť desať",
    "de": "null eins zwei drei vier fünf/fuenf sechs sieben acht neun zehn",
    "pl": "zero jeden/jedna dwa/dwie trzy cztery pięć sześć siedem osiem dziewięć dziesięć",
    "ru": "ноль/нуль один/одна два/две три четыре пять шесть семь восемь девять десять",
}

#: Words that may stand around a bare score without making it ambiguous ("5 thanks",
#: "Score: 4", "ačiū, 5 stars"). Short on purpose: every word here is a chance of a wrong score.
FILLER_WORDS = frozenset(
    {
        *("ok", "okay", "thanks", "thank", "you", "thx", "score", "rating", "star", "stars"),
        *("points", "ačiū", "paldies", "děkuji", "díky", "ďakujem", "vďaka", "danke"),
        *("dziękuję", "dzięki", "спасибо"),
    }
)

#: "4 out of 5", "4 iš 5" (lt), "4 no 5" (lv), "4 z 5" (cs, sk, pl), "4 na 5" (pl),
#: "4 von 5" (de), "4 из 5" (ru); "4/5" is the same with a slash.
_OUT_OF = frozenset({"of", "iš", "no", "z", "na", "von", "из"})

_LOWEST: Mapping[str, int] = {"csat": 1, "nps": 0}
_HIGHEST: Mapping[str, int] = {"csat": 5, "nps": 10}
# Punctuation that may stand around a bare score. Not "-", "+", "~" before it (a sign, an
# approximation), "." or "," right before it (a decimal), nor "?", "/", "%", "#" anywhere.
_PUNCT_BEFORE = frozenset("!:;\"'`()[]{}*«»„“”‘’‹›")  # noqa: RUF001
_PUNCT_AFTER = _PUNCT_BEFORE | frozenset(".,\u2013\u2014-")
# What ends a score and starts a comment: "5: fine", "4. Slow", "5, ok", "5! Great", a newline;
# a dash only with a space beside it ("4-5" is a range).
_SEPARATORS = frozenset(":.,!;")
_DASHES = frozenset("-\u2013\u2014")
_COMMENT_LEAD = _SEPARATORS | _DASHES | frozenset("\u2026")
_NEWLINES = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")

_STARS = frozenset("\u2b50\u2605\U0001f31f")  # ⭐ ★ 🌟
_EMPTY_STARS = frozenset("\u2606")  # ☆
_THUMBS_UP = "\U0001f44d"
_THUMBS_DOWN = "\U0001f44e"
_KEYCAP = "\u20e3"  # combining enclosing keycap: "5" + U+FE0F + U+20E3 is 5️⃣
_KEYCAP_TEN = "\U0001f51f"  # 🔟
_IGNORED = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)

_SPACE = "space"
_NEWLINE = "newline"
_NUMBER = "number"
_WORD = "word"
_STAR = "star"
_EMPTY_STAR = "empty_star"
_UP = "up"
_DOWN = "down"
_KEYCAP_EMOJI = "keycap"
_EMOJI = "emoji"
_PUNCT = "punct"
_MORE = "more"  # the rest of a reply past MAX_HEAD_CHARS
_SCORE_KINDS = frozenset({_NUMBER, _KEYCAP_EMOJI, _STAR, _EMPTY_STAR, _UP, _DOWN})


@dataclass(frozen=True, slots=True)
class Reply:
    """A recognised survey answer: the score, and the free text the customer wrote after it."""

    score: int
    comment: str | None = None


def parse_score(text: str, scale: Scale) -> int | None:
    """The score a reply gives on ``scale`` (csat 1-5, nps 0-10), or ``None`` when it is not
    clearly one; the score of :func:`parse_reply`, comment or not."""
    reply = parse_reply(text, scale)
    return None if reply is None else reply.score


def parse_reply(text: str, scale: Scale) -> Reply | None:
    """The score a reply gives on ``scale`` and the comment after it ("4. Slow but fine"), or
    ``None`` when the reply is not clearly a score. Never raises on any text."""
    if scale not in _HIGHEST:
        raise ValueError(f"unknown survey scale {scale!r}")
    stripped = text.strip()
    if not stripped:
        return None
    tokens, origin = _tokenize(stripped[:MAX_HEAD_CHARS], len(stripped) > MAX_HEAD_CHARS)
    start, preceded = _lead(tokens)
    head = _head(tokens, start, scale)
    if head is None:
        return None
    score, end, emoji = head
    if not _LOWEST[scale] <= score <= _HIGHEST[scale]:
        return None
    if all(_is_filler(t, _PUNCT_AFTER) for t in tokens[end:]):
        return Reply(score)
    if preceded:  # a comment is split off only when the score comes first
        return None
    cut = _separator(tokens, end, emoji)
    if cut is None:
        return None
    comment = _comment(stripped[origin[cut] :])
    if _starts_with_score(comment):  # "4, 5", "4 - 5", "5. 4 for the agent"
        return None
    return Reply(score, comment or None)


# -- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    start: int  # in the folded text
    end: int
    value: int | None = None


def _is_ignored(char: str) -> bool:
    """Invisible characters: zero-width and bidi marks, variation selectors (the U+FE0F of
    "⭐️"), skin tones (the modifier of "👍🏽"), tags."""
    code = ord(char)
    return (
        char in _IGNORED
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0000 <= code <= 0xE01EF
    )


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return 0x2600 <= code <= 0x27BF or 0x1F000 <= code <= 0x1FAFF


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One character compared loosely: compatibility forms (a full-width 5 is "5"), case and
    diacritics ("Pět" is "pet") folded away, invisible characters dropped."""
    if _is_ignored(char):
        return ""
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", char).casefold())
    return "".join(c for c in folded if unicodedata.category(c) != "Mn")


def _fold_text(text: str) -> str:
    return "".join(_fold(c) for c in text)


def _tokenize(text: str, truncated: bool) -> tuple[list[_Token], list[int]]:
    """The tokens of folded ``text``, and for each folded position the position in ``text``
    it came from (one more entry for the end). When ``text`` is cut short its last token may
    be cut too, so it becomes a ``more`` token."""
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for c in _fold(char):
            chars.append(c)
            origin.append(i)
    origin.append(len(text))
    s = "".join(chars)
    tokens: list[_Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        j = i + 1
        if c.isspace():
            while j < n and s[j].isspace():
                j += 1
            newline = any(x in _NEWLINES for x in s[i:j])
            tokens.append(_Token(_NEWLINE if newline else _SPACE, s[i:j], i, j))
        elif c.isdecimal():
            while j < n and s[j].isdecimal():
                j += 1
            if j < n and s[j] == _KEYCAP:
                if j - 1 > i:
                    tokens.append(_number(s, i, j - 1))
                digit = unicodedata.decimal(s[j - 1])
                tokens.append(_Token(_KEYCAP_EMOJI, s[j - 1 : j + 1], j - 1, j + 1, digit))
                j += 1
            else:
                tokens.append(_number(s, i, j))
        elif c.isalpha():
            while j < n and s[j].isalpha():
                j += 1
            tokens.append(_Token(_WORD, s[i:j], i, j))
        elif c in _STARS:
            tokens.append(_Token(_STAR, c, i, j))
        elif c in _EMPTY_STARS:
            tokens.append(_Token(_EMPTY_STAR, c, i, j))
        elif c == _THUMBS_UP:
            tokens.append(_Token(_UP, c, i, j, 5))
        elif c == _THUMBS_DOWN:
            tokens.append(_Token(_DOWN, c, i, j, 1))
        elif c == _KEYCAP_TEN:
            tokens.append(_Token(_KEYCAP_EMOJI, c, i, j, 10))
        elif _is_emoji(c):
            tokens.append(_Token(_EMOJI, c, i, j))
        else:
            tokens.append(_Token(_PUNCT, c, i, j))
        i = j
    if truncated:
        cut = tokens.pop().start if tokens else n
        tokens.append(_Token(_MORE, "", cut, n))
    return tokens, origin


def _number(s: str, start: int, end: int) -> _Token:
    digits = s[start:end]
    # Longer runs are never a score; not converting them also avoids int()'s digit limit.
    value = (
        None
        if len(digits) > 2
        else sum(unicodedata.decimal(d) * 10**k for k, d in enumerate(reversed(digits)))
    )
    return _Token(_NUMBER, digits, start, end, value)


def _build_word_values() -> dict[str, int]:
    values: dict[str, int] = {}
    for words in NUMBER_WORDS.values():
        for value, spellings in enumerate(words.split()):
            for spelling in spellings.split("/"):
                if values.setdefault(_fold_text(spelling), value) != value:
                    raise ValueError(f"number word {spelling!r} means two numbers")
    return values


_WORD_VALUES = _build_word_values()
_FILLERS = frozenset(_fold_text(w) for w in FILLER_WORDS)
_OUT_OF_FOLDED = frozenset(_fold_text(w) for w in _OUT_OF)


# -- parsing -----------------------------------------------------------------------------------


def _is_filler(token: _Token, punct: frozenset[str]) -> bool:
    if token.kind in (_SPACE, _NEWLINE, _EMOJI):
        return True
    if token.kind == _PUNCT:
        return token.text in punct
    return token.kind == _WORD and token.text in _FILLERS


def _lead(tokens: list[_Token]) -> tuple[int, bool]:
    """Where the score may start, past quotes, fillers and emoji; and whether words or emoji
    came before it (then it is no longer the first thing in the reply)."""
    i, preceded = 0, False
    while i < len(tokens) and (_is_filler(tokens[i], _PUNCT_BEFORE) or _is_pause(tokens, i)):
        preceded = preceded or tokens[i].kind in (_WORD, _EMOJI)
        i += 1
    return i, preceded


def _is_pause(tokens: list[_Token], i: int) -> bool:
    """A full stop or comma with a space after it ("paldies, 4"), so not a decimal point."""
    return (
        tokens[i].kind == _PUNCT
        and tokens[i].text in ".,"
        and i + 1 < len(tokens)
        and tokens[i + 1].kind in (_SPACE, _NEWLINE)
    )


def _head(tokens: list[_Token], i: int, scale: Scale) -> tuple[int, int, bool] | None:
    """(score, index after it, whether it is emoji) for the score starting at ``i``."""
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token.kind == _NUMBER or (token.kind == _WORD and token.text in _WORD_VALUES):
        value = token.value if token.kind == _NUMBER else _WORD_VALUES[token.text]
        if value is None:
            return None
        end = i + 1
        if token.kind == _NUMBER and (starred := _unit_star(tokens, end)) is not None:
            return value, starred, True  # "5⭐"
        out_of = _out_of(tokens, end)
        if out_of is not None:
            highest, end = out_of
            if highest != _HIGHEST[scale]:  # "4/10" on the 1-5 scale
                return None
        return value, end, False
    if token.kind == _KEYCAP_EMOJI:
        end = i
        while end < len(tokens) and tokens[end].kind == _KEYCAP_EMOJI:
            end += 1
        keys = [t.value or 0 for t in tokens[i:end]]
        if len(keys) > 2 or (len(keys) == 2 and keys[0] == 10):
            return None
        return (keys[0] if len(keys) == 1 else keys[0] * 10 + keys[1]), end, True
    if scale != "csat":  # stars and thumbs say nothing clear on a 0-10 scale
        return None
    if token.kind in (_UP, _DOWN):
        end = i
        while end < len(tokens) and tokens[end].kind == token.kind:
            end += 1
        return token.value or 0, end, True
    if token.kind in (_STAR, _EMPTY_STAR):
        return _stars(tokens, i)
    return None


def _skip_spaces(tokens: list[_Token], i: int) -> int:
    while i < len(tokens) and tokens[i].kind == _SPACE:
        i += 1
    return i


def _unit_star(tokens: list[_Token], i: int) -> int | None:
    """The index after one star following a number ("5⭐", "5 ★"), if that is all there is."""
    i = _skip_spaces(tokens, i)
    if i >= len(tokens) or tokens[i].kind != _STAR:
        return None
    after = _skip_spaces(tokens, i + 1)
    if after < len(tokens) and tokens[after].kind in (_STAR, _EMPTY_STAR):
        return None
    return i + 1


def _out_of(tokens: list[_Token], i: int) -> tuple[int, int] | None:
    """(the scale's top, index after it) for "/5", "out of 5", "iš 5", ... starting at ``i``."""
    i = _skip_spaces(tokens, i)
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token.kind == _PUNCT and token.text == "/":
        i += 1
    elif token.kind == _WORD and token.text in ("out", *_OUT_OF_FOLDED):
        if token.text == "out":
            i = _skip_spaces(tokens, i + 1)
            if i >= len(tokens) or tokens[i].text != "of":
                return None
        i += 1
    else:
        return None
    i = _skip_spaces(tokens, i)
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token.kind == _NUMBER and token.value is not None:
        return token.value, i + 1
    if token.kind == _WORD and token.text in _WORD_VALUES:
        return _WORD_VALUES[token.text], i + 1
    return None


def _stars(tokens: list[_Token], i: int) -> tuple[int, int, bool] | None:
    """A run of stars ("⭐⭐⭐", "★★★☆☆", "⭐ ⭐"): the filled ones, at most five in all."""
    filled = empty = 0
    while i < len(tokens):
        kind = tokens[i].kind
        if kind == _STAR:
            if empty:  # "★☆★"
                return None
            filled += 1
        elif kind == _EMPTY_STAR:
            empty += 1
        elif not (
            kind == _SPACE and i + 1 < len(tokens) and tokens[i + 1].kind in (_STAR, _EMPTY_STAR)
        ):
            break
        i += 1
    if not filled or filled + empty > 5:
        return None
    return filled, i, True


def _separator(tokens: list[_Token], i: int, emoji: bool) -> int | None:
    """The folded position after the separator that ends the score at ``i`` and starts a
    comment, past filler words ("5 stars - great"); ``None`` when there is none."""
    if emoji and i < len(tokens) and tokens[i].kind == _SPACE:  # "⭐⭐⭐⭐ fast answer"
        return tokens[i].end
    spaced = False
    while i < len(tokens):
        token = tokens[i]
        if token.kind == _NEWLINE:
            return token.end
        if token.kind == _PUNCT:
            if token.text in _SEPARATORS:
                return token.end
            spaced_after = i + 1 < len(tokens) and tokens[i + 1].kind in (_SPACE, _NEWLINE)
            if token.text in _DASHES and (spaced or spaced_after):
                return token.end
            return None
        if not (token.kind == _SPACE or (token.kind == _WORD and token.text in _FILLERS)):
            return None
        spaced = token.kind == _SPACE
        i += 1
    return None


def _comment(text: str) -> str:
    i = 0
    while i < len(text) and (text[i].isspace() or text[i] in _COMMENT_LEAD or _is_ignored(text[i])):
        i += 1
    return text[i:].rstrip()


def _starts_with_score(comment: str) -> bool:
    tokens, _ = _tokenize(comment[:32], truncated=False)
    first = next((t for t in tokens if t.kind not in (_SPACE, _NEWLINE)), None)
    if first is None:
        return False
    return first.kind in _SCORE_KINDS or (first.kind == _WORD and first.text in _WORD_VALUES)
