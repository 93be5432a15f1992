"""Survey replies (hub.domain.feedback_replies): scores as digits, words in eight languages and
emoji; ambiguous and out-of-range replies give None; comments split off after a score."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.feedback_replies import (
    MAX_HEAD_CHARS,
    NUMBER_WORDS,
    Reply,
    Scale,
    parse_reply,
    parse_score,
)

RANGES: dict[Scale, range] = {"csat": range(1, 6), "nps": range(11)}
# What may stand around a bare digit without making it ambiguous.
BEFORE = " \t\n\u00a0!:;\"'`()[]{}*«»\u200b"
AFTER = BEFORE + ".,-\u2013\u2014\u2026"


def plain(word: str) -> str:
    """``word`` without diacritics, as customers often type it."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


# -- digits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "score"),
    [
        ("5", "csat", 5),
        (" 4 ", "csat", 4),
        ("1", "csat", 1),
        ("0", "nps", 0),
        ("10", "nps", 10),
        ("4/5", "csat", 4),
        ("4 / 5", "csat", 4),
        ("5/5!!!", "csat", 5),
        ("9/10", "nps", 9),
        ("10/10", "nps", 10),
        ("5!", "csat", 5),
        ("5.", "csat", 5),
        ("(5)", "csat", 5),
        ('"3"', "csat", 3),
        ("*5*", "csat", 5),
        ("\u200b5\ufeff", "csat", 5),
        ("\uff15", "csat", 5),  # full-width
        ("\uff11\uff10", "nps", 10),
        ("4 out of 5", "csat", 4),
        ("4 of 5", "csat", 4),
        ("4 iš 5", "csat", 4),
        ("4 no 5", "csat", 4),
        ("4 z 5", "csat", 4),
        ("8 na 10", "nps", 8),
        ("4 von 5", "csat", 4),
        ("8 из 10", "nps", 8),
        ("four out of five", "csat", 4),
        ("5⭐", "csat", 5),
        ("5 stars", "csat", 5),
        ("5 😊", "csat", 5),
        ("Score: 4", "csat", 4),
        ("Rating 9", "nps", 9),
        ("ok 5", "csat", 5),
        ("5 thanks", "csat", 5),
        ("Thanks! 5", "csat", 5),
        ("5, ačiū", "csat", 5),
        ("5 děkuji", "csat", 5),
        ("5 ďakujem", "csat", 5),
        ("paldies, 4", "csat", 4),
        ("5 danke", "csat", 5),
        ("5 dziękuję", "csat", 5),
        ("5 спасибо", "csat", 5),
    ],
)
def test_a_bare_score_is_recognised(text: str, scale: Scale, score: int) -> None:
    assert parse_reply(text, scale) == Reply(score)
    assert parse_score(text, scale) == score


# -- words -------------------------------------------------------------------------------------

WORDS = {
    "en": "zero one two three four five six seven eight nine ten",
    "lt": "nulis vienas du trys keturi penki šeši septyni aštuoni devyni dešimt",
    "lv": "nulle viens divi trīs četri pieci seši septiņi astoņi deviņi desmit",
    "cs": "nula jedna dva tři čtyři pět šest sedm osm devět deset",
    "sk": "nula jeden dva tri štyri päť šesť sedem osem deväť desať",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun zehn",
    "pl": "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć",
    "ru": "ноль один два три четыре пять шесть семь восемь девять десять",
}


@pytest.mark.parametrize(
    ("word", "score"),
    [(w, n) for line in WORDS.values() for n, w in enumerate(line.split())]
    + [
        ("jeden", 1),  # cs
        ("dvě", 2),  # cs
        ("jedna", 1),  # sk
        ("dve", 2),  # sk
        ("viena", 1),  # lt, lv
        ("dvi", 2),  # lt
        ("penkios", 5),  # lt
        ("divas", 2),  # lv
        ("piecas", 5),  # lv
        ("fuenf", 5),  # de
        ("dwie", 2),  # pl
        ("одна", 1),  # ru
        ("две", 2),  # ru
        ("нуль", 0),  # ru
    ],
)
def test_number_words_are_recognised_in_any_case_with_or_without_diacritics(
    word: str, score: int
) -> None:
    for form in (word, word.upper(), word.capitalize(), plain(word), f" {word}! "):
        assert parse_score(form, "nps") == score, form
        assert parse_score(form, "csat") == (score if 1 <= score <= 5 else None), form


def test_every_listed_spelling_means_its_number() -> None:
    for words in NUMBER_WORDS.values():
        assert len(words.split()) == 11
        for value, spellings in enumerate(words.split()):
            for spelling in spellings.split("/"):
                assert parse_score(spelling, "nps") == value, spelling


# -- emoji -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("⭐", 1),
        ("⭐⭐⭐⭐⭐", 5),
        ("⭐️⭐️⭐️", 3),  # with variation selectors
        ("⭐ ⭐ ⭐ ⭐", 4),
        ("★★", 2),
        ("★★★☆☆", 3),
        ("★☆☆☆☆", 1),
        ("🌟🌟🌟🌟", 4),
        ("👍", 5),
        ("👍🏽", 5),
        ("👍🏿👍🏿", 5),
        ("👎", 1),
        ("👎🏻", 1),
        ("5️⃣", 5),
        ("1⃣", 1),  # without the variation selector
        ("3️⃣!", 3),
    ],
)
def test_emoji_scores_on_the_csat_scale(text: str, score: int) -> None:
    assert parse_score(text, "csat") == score


@pytest.mark.parametrize(
    ("text", "score"),
    [("🔟", 10), ("0️⃣", 0), ("7️⃣", 7), ("1️⃣0️⃣", 10), ("9️⃣ ", 9)],
)
def test_keycaps_score_on_the_nps_scale(text: str, score: int) -> None:
    assert parse_score(text, "nps") == score


@pytest.mark.parametrize("text", ["⭐⭐⭐⭐⭐", "★★★☆☆", "🌟", "👍", "👎🏽", "9 👍"])
def test_stars_and_thumbs_mean_nothing_on_the_nps_scale(text: str) -> None:
    assert parse_score(text, "nps") is None


@pytest.mark.parametrize(
    "text",
    [
        "⭐⭐⭐⭐⭐⭐",  # six
        "★★★☆☆☆",  # six in all
        "☆☆☆☆☆",  # none filled
        "★☆★",
        "👍👎",
        "🔟",  # 10 on a 1-5 scale
        "5 ⭐⭐⭐⭐⭐",
    ],
)
def test_unclear_emoji_give_none(text: str) -> None:
    assert parse_score(text, "csat") is None


# -- out of range and ambiguous ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("0", "csat"),
        ("6", "csat"),
        ("7", "csat"),
        ("10", "csat"),
        ("ten", "csat"),
        ("zero", "csat"),
        ("11", "nps"),
        ("100", "nps"),
        ("4/10", "csat"),  # the wrong scale
        ("8/5", "csat"),
        ("10/10", "csat"),
        ("4 out of 10", "csat"),
        ("9/5", "nps"),
        ("9" * 5000, "nps"),  # past int()'s digit limit
    ],
)
def test_out_of_range_gives_none(text: str, scale: Scale) -> None:
    assert parse_reply(text, scale) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello",
        "I ordered 5 shirts and none arrived",
        "5 shirts never arrived",
        "5 of them were broken",
        "4 or 5",
        "between 3 and 4",
        "3-4",
        "4 - 5",
        "4, 5",
        "4 5",
        "5 5",
        "4\n5",
        "4.5",
        "4,5",
        "5.0",
        "-5",
        "+5",
        "~4",
        "5?",
        "5%",
        "#5",
        "5th",
        "5x",
        "order 5",
        "five 5",
        "5. 4 for the agent",
        "5 - four for speed",
        "Thanks! 5 - great",  # a comment only when the score comes first
        "½",
        ".5",
        "ok .5",
        "5\x00",
    ],
)
def test_ambiguous_replies_give_none(text: str) -> None:
    assert parse_reply(text, "csat") is None


def test_an_unknown_scale_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="scale"):
        parse_reply("5", "stars")  # type: ignore[arg-type]


# -- comments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("5 - great help, thanks Ona!", "csat", Reply(5, "great help, thanks Ona!")),
        ("4. Slow but fine", "csat", Reply(4, "Slow but fine")),
        ("⭐⭐⭐⭐ fast answer", "csat", Reply(4, "fast answer")),
        ("👍🏽 quick", "csat", Reply(5, "quick")),
        ("5️⃣ all good", "csat", Reply(5, "all good")),
        ("9: friendly agent", "nps", Reply(9, "friendly agent")),
        ("3, could be faster", "csat", Reply(3, "could be faster")),
        ("Penki! Labai greitai", "csat", Reply(5, "Labai greitai")),
        ("5\nGreat  ", "csat", Reply(5, "Great")),
        ("4/5 – nice", "csat", Reply(4, "nice")),  # noqa: RUF001
        ("5… ok", "csat", Reply(5, None)),
        ("5 stars - great service", "csat", Reply(5, "great service")),
        ("10 - the 2nd agent fixed it", "nps", Reply(10, "the 2nd agent fixed it")),
        ("5- fine", "csat", Reply(5, "fine")),
        ("5 -", "csat", Reply(5, None)),
        ("5. Thanks!", "csat", Reply(5, None)),
    ],
)
def test_a_comment_after_the_score_is_split_off(text: str, scale: Scale, expected: Reply) -> None:
    assert parse_reply(text, scale) == expected
    assert parse_score(text, scale) == expected.score


def test_a_long_comment_is_kept_whole() -> None:
    comment = "slow " * 1000
    assert parse_reply(f"3 - {comment}", "csat") == Reply(3, comment.strip())


def test_a_long_reply_without_a_separator_gives_none() -> None:
    assert parse_score("ok " * MAX_HEAD_CHARS + "5", "csat") is None
    assert parse_score("5 " + "ok " * MAX_HEAD_CHARS, "csat") is None


@pytest.mark.parametrize("text", ["5" * 10**6, " " * 10**6 + "x", "5 - " + "\u0301" * 10**6])
def test_huge_replies_are_handled(text: str) -> None:
    reply = parse_reply(text, "csat")
    assert reply is None or reply.score == 5


def test_lone_surrogates_do_not_raise() -> None:
    assert parse_reply("\ud800", "csat") is None
    assert parse_reply("5 - \udfff", "csat") == Reply(5, "\udfff")


# -- properties --------------------------------------------------------------------------------

SCALES = st.sampled_from(["csat", "nps"])
BIASED = st.lists(
    st.sampled_from(
        [
            *"0123456789 /.,-:!?\n\u20e3\ufe0f\uff15⭐★☆🌟👍👎🔟🏽",
            *("five", "penki", "pět", "десять", "of", "out", "ok", "z", "stars", "thanks"),
        ]
    ),
    max_size=20,
).map("".join)


def check(text: str, scale: Scale) -> None:
    reply = parse_reply(text, scale)
    assert reply is None or reply.score in RANGES[scale]
    if reply is not None and reply.comment is not None:
        assert reply.comment == reply.comment.strip() != ""
    assert parse_score(text, scale) == (None if reply is None else reply.score)


@given(st.text(), SCALES)
def test_any_text_gives_none_or_a_score_in_range(text: str, scale: Scale) -> None:
    check(text, scale)


@settings(max_examples=500)
@given(BIASED, SCALES)
def test_score_like_text_gives_none_or_a_score_in_range(text: str, scale: Scale) -> None:
    check(text, scale)


@given(st.data(), SCALES, st.text(BEFORE, max_size=5), st.text(AFTER, max_size=5))
def test_a_digit_among_whitespace_and_punctuation_is_recognised(
    data: st.DataObject, scale: Scale, before: str, after: str
) -> None:
    score = data.draw(st.sampled_from(RANGES[scale]))
    assert parse_score(f"{before}{score}{after}", scale) == score


@given(st.data(), SCALES, st.text(" \n:.,!;-\u2013", min_size=1, max_size=4))
def test_two_different_numbers_give_none(data: st.DataObject, scale: Scale, sep: str) -> None:
    first = data.draw(st.sampled_from(RANGES[scale]))
    second = data.draw(st.sampled_from(RANGES[scale]).filter(lambda n: n != first))
    assert parse_reply(f"{first}{sep}{second}", scale) is None
