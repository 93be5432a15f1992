"""How duplicate suggestions compare addresses and names (hub.events.duplicate_keys): mailboxes
by provider rules, numbers by national significant number, names folded, the addresses a text
mentions, the blocklist; and, over any text, extraction that never fails and gives normalised
addresses (tests/projections/test_duplicates.py proves no blocklisted one becomes a key)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.events import normalise_address
from hub.events.duplicate_keys import (
    BUILTIN,
    Blocklist,
    canonical_email,
    check_blocklist_entry,
    fold_name,
    local_part_key,
    mentioned_addresses,
    phone_key,
)
from tests.support.hostile import HOSTILE_TEXT


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("email:jonas.kazlauskas@gmail.com", "email:jonaskazlauskas+shop@googlemail.com"),
        ("email:tomas@outlook.com", "email:tomas+news@outlook.com"),
        ("email:ana@proton.me", "email:ana+x@proton.me"),
    ],
)
def test_providers_that_ignore_dots_or_tags_reach_one_mailbox(one: str, two: str) -> None:
    assert canonical_email(one) == canonical_email(two)


def test_other_providers_keep_dots_and_tags() -> None:
    assert canonical_email("email:j.k@firma.lt") != canonical_email("email:jk@firma.lt")
    assert canonical_email("email:anna+x@firma.cz") != canonical_email("email:anna@firma.cz")
    assert canonical_email("email:t.o.m@outlook.com") != canonical_email("email:tom@outlook.com")


def test_mailbox_names_compare_across_providers_unless_generic_or_short() -> None:
    assert local_part_key("email:jonas.kazlauskas@inbox.lt") == "jonaskazlauskas"
    assert local_part_key("email:jonas_kazlauskas+x@gmail.com") == "jonaskazlauskas"
    assert local_part_key("email:info@firma.lt") is None
    assert local_part_key("email:sales@firma.lt") is None
    assert local_part_key("email:ana@firma.lt") is None
    assert local_part_key("email:12345678@firma.lt") is None


def test_numbers_meet_by_their_national_significant_number() -> None:
    written = ["+370 612 34567", "0037061234567"]
    lithuanian = [mentioned_addresses(f"call {w}", ["LT"]) for w in [*written, "861234567"]]
    assert lithuanian == [["phone:+37061234567"]] * 3
    assert mentioned_addresses("call 0037061234567") == ["phone:+37061234567"]
    assert mentioned_addresses("call 861234567") == [], "no region: only international numbers"
    lt, lv = phone_key("phone:+37061234567"), phone_key("phone:+37161234567")
    assert lt is not None
    assert lv is not None
    assert (lt.national, lt.tail, lt.country_code) == ("61234567", "1234567", 370)
    assert lt.national == lv.national
    assert phone_key("phone:nonsense") is None


def test_names_fold_accents_case_and_word_order() -> None:
    assert (
        fold_name("Jūratė Kazlauskienė")
        == fold_name("kazlauskiene  JURATE")
        == ("jurate kazlauskiene")
    )
    assert fold_name("Pēteris Bērziņš") == "berzins peteris"
    assert fold_name("Tomáš Dvořák") == "dvorak tomas"
    assert fold_name("Łukasz Øberg") == "lukasz oberg"
    assert fold_name("jonas@gmail.com") is None
    assert fold_name("+370 612 34567") is None
    assert fold_name("") is None


def test_a_text_mentions_emails_and_numbers_each_once() -> None:
    text = "Mano el. paštas Ruta.J@Gmail.com, tel. +370 612 34567; dar kartą ruta.j@gmail.com."
    assert mentioned_addresses(text) == ["email:ruta.j@gmail.com", "phone:+37061234567"]
    assert mentioned_addresses("užsakymas 2024-11-20, suma 123456.78 EUR", ["LT"]) == []
    assert mentioned_addresses(None) == []


def test_the_blocklist_matches_addresses_patterns_and_mailboxes() -> None:
    blocklist = Blocklist(["email:*@spam.example", "phone:+37060000000", "email:desk@gmail.com"])
    assert blocklist.blocks("email:anyone@spam.example")
    assert blocklist.blocks("phone:+37060000000")
    assert blocklist.blocks("email:d.e.s.k+x@gmail.com"), "the same mailbox"
    assert not blocklist.blocks("email:desk@firma.lt")
    assert BUILTIN.blocks("email:info@anything.lt")
    assert BUILTIN.blocks("email:no-reply@shop.lt")
    assert BUILTIN.blocks("email:test@example.com")
    assert not BUILTIN.blocks("email:maria.garcia@example.net")
    assert not Blocklist([]).blocks("email:x@y.lt")


def test_blocklist_entries_are_normalised_or_refused() -> None:
    assert check_blocklist_entry(" phone:+370 600 00000 ") == "phone:+37060000000"
    assert check_blocklist_entry("phone:860000000", "LT") == "phone:+37060000000"
    assert check_blocklist_entry("EMAIL:Desk@Firma.LT") == "email:desk@firma.lt"
    assert check_blocklist_entry("email:*@Spam.Example") == "email:*@spam.example"
    for bad in ("", "desk@firma.lt", "chat:visitor", "email:*", "phone:+*", "email:a b@c.lt"):
        with pytest.raises(ValueError):
            check_blocklist_entry(bad)


_BLOCKED = ["info@kavine.lt", "noreply@shop.lt", "test@example.com", "no-reply@x.lv"]


@given(
    before=HOSTILE_TEXT,
    after=HOSTILE_TEXT,
    blocked=st.sampled_from(_BLOCKED),
    region=st.sampled_from([None, "LT", "CZ", "GB", "ZZ", "XX"]),
)
@settings(max_examples=300, deadline=None, derandomize=True)
@example(before="\x00", after="\ud800", blocked=_BLOCKED[0], region=None)
@example(before="+" * 50, after="0" * 200, blocked=_BLOCKED[1], region="LT")
def test_any_text_never_fails_and_gives_normalised_addresses(
    before: str, after: str, blocked: str, region: str | None
) -> None:
    text = f"{before} my email is {blocked} {after}"
    found = mentioned_addresses(text, [region])
    for address in found:
        assert str(normalise_address(address)) == address  # normalised, readable everywhere
    assert f"email:{blocked}" in found
    assert BUILTIN.blocks(f"email:{blocked}")
    fold_name(text)
    canonical_email(text)
    local_part_key(text)
