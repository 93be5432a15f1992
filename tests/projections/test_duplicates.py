"""The duplicates projection: keys per customer, pairs scored with evidence as events arrive,
shared and blocklisted addresses never evidence, pairs within a merge group or dismissed never
suggested, the same result whatever the batches, and erasure and retention forgetting keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.embedded.follower import LogFollower
from hub.events.common import scrub_text
from hub.projections import Views
from hub.projections.duplicates import configure_duplicates, duplicate_keys
from hub.store import Store
from tests.projections.duplicates_support import (
    Person,
    duplicates_of,
    pair_of,
    pairs,
    record,
)
from tests.projections.helpers import project
from tests.support.hostile import HOSTILE_TEXT
from tests.support.store import T0, all_view_rows


def test_the_same_number_written_differently_is_high(store: Store, views: Views) -> None:
    configure_duplicates(views.projections, shared_address_limit=3, default_region="LT")
    by_sms, by_mail, other_country, _ = record(
        store,
        Person("phone:+37061234567", "Jonas Kazlauskas"),
        Person("email:jonas@pavyzdys.lt", "Jonas K.", ["Skambinkite 861234567, ačiū"]),
        Person("phone:+37161234567"),  # the number again, read with Latvia's code
        Person("phone:+37069999999", "Petras Petraitis", ["mano nr. 0037068888888"]),
    )
    project(store, views)

    mentioned = pair_of(views, by_sms, by_mail)
    assert mentioned is not None
    assert mentioned.band == "high"
    assert "mentioned_address" in mentioned.kinds
    assert any("+37061234567" in e["detail"] for e in mentioned.evidence)
    national = pair_of(views, by_sms, other_country)
    assert national is not None
    assert national.band == "high"
    assert national.kinds == {"same_phone_other_country"}


def test_a_number_mentioned_without_a_country_code_is_read_in_the_writers_country(
    store: Store, views: Views
) -> None:
    owner, writer = record(
        store,
        Person("phone:+37061234567"),
        Person("phone:+37068888888", texts=["call my other phone 8 612 34567"]),
    )
    project(store, views)
    found = pair_of(views, owner, writer)
    assert found is not None
    assert found.kinds == {"mentioned_address"}


def test_the_same_mailbox_modulo_case_dots_and_tags_is_high(store: Store, views: Views) -> None:
    gmail, googlemail, outlook, outlook_tagged, plain, plain_tagged = record(
        store,
        Person("email:jurate.kazlauskiene@gmail.com", "Jūratė Kazlauskienė"),
        Person("email:juratekazlauskiene+shop@googlemail.com", "jurate kazlauskiene"),
        Person("email:tomas@outlook.com"),
        Person("email:tomas+news@outlook.com"),
        Person("email:anna@firma.cz"),
        Person("email:anna+x@firma.cz"),  # + is taken literally on an unknown provider
    )
    project(store, views)

    both_gmail = pair_of(views, gmail, googlemail)
    assert both_gmail is not None
    assert both_gmail.band == "high"
    assert {"same_email", "same_name"} <= both_gmail.kinds
    tagged = pair_of(views, outlook, outlook_tagged)
    assert tagged is not None
    assert tagged.band == "high"
    assert pair_of(views, plain, plain_tagged) is None


def test_a_name_alone_is_low_and_with_a_mailbox_name_or_suffix_medium(
    store: Store, views: Views
) -> None:
    john, other_john, jonas_inbox, jonas_gmail, petras, petras_again = record(
        store,
        Person("phone:+447700900123", "John Smith"),
        Person("phone:+447700900456", "John Smith"),
        Person("email:jonas.kazlauskas@inbox.lt", "Jonas Kazlauskas"),
        Person("email:jonas_kazlauskas@gmail.com", "Jonas Kazlauskas"),
        Person("phone:+37061112233", "Petras Jonaitis"),
        Person("phone:+37161112233", "Petras Jonaitis"),
    )
    project(store, views)

    name_only = pair_of(views, john, other_john)
    assert name_only is not None
    assert (name_only.band, name_only.kinds) == ("low", {"same_name"})
    local = pair_of(views, jonas_inbox, jonas_gmail)
    assert local is not None
    assert local.band == "medium"
    assert local.kinds == {"same_name", "email_local_part"}
    assert pair_of(views, john, jonas_inbox) is None
    assert pair_of(views, petras, petras_again) is not None


def test_a_phone_suffix_with_the_same_name_is_medium(store: Store, views: Views) -> None:
    one, two = record(
        store,
        Person("phone:+37061234567", "Ona Petrauskienė"),
        Person("phone:+37051234567", "Ona Petrauskiene"),
    )
    project(store, views)
    found = pair_of(views, one, two)
    assert found is not None
    assert (found.band, found.kinds) == ("medium", {"same_name", "phone_suffix"})


def test_a_strong_identifier_between_different_names_is_medium(store: Store, views: Views) -> None:
    husband, wife = record(
        store,
        Person("phone:+37061234567", "Jonas Kazlauskas"),
        Person("email:ona@pavyzdys.lt", "Ona Kazlauskienė", ["vyro telefonas +370 612 34567"]),
    )
    project(store, views)
    found = pair_of(views, husband, wife)
    assert found is not None
    assert found.band == "medium"
    assert {"mentioned_address", "names_differ"} == found.kinds


def test_a_shared_address_is_no_evidence(store: Store, views: Views) -> None:
    text = "write to the office: biuras.vilnius@imone.lt"
    first = record(store, *[Person(f"phone:+3706100000{n}", texts=[text]) for n in range(3)])
    project(store, views)
    assert len([p for p in pairs(views).values() if "both_mentioned" in p.kinds]) == 3

    record(store, Person("phone:+37061000009", texts=[text]))  # a fourth: shared now
    owner = record(store, Person("email:biuras.vilnius@imone.lt", "Imonė"))[0]
    project(store, views)
    assert pairs(views) == {}
    assert pair_of(views, first[0], owner) is None


def test_the_shared_address_limit_is_a_setting(store: Store, views: Views) -> None:
    configure_duplicates(views.projections, shared_address_limit=4, default_region=None)
    text = "write to the office: biuras.vilnius@imone.lt"
    record(store, *[Person(f"phone:+3706100000{n}", texts=[text]) for n in range(4)])
    project(store, views)
    assert len([p for p in pairs(views).values() if "both_mentioned" in p.kinds]) == 6


def test_blocklisted_addresses_never_become_keys(store: Store, views: Views) -> None:
    one, two = record(
        store,
        Person("email:info@imone.lt", texts=["from noreply@imone.lt, test@example.com"]),
        Person("phone:+37061234567", texts=["info@imone.lt and noreply@imone.lt"]),
    )
    project(store, views)
    with views.engine.connect() as conn:
        keys = set(conn.scalars(select(duplicate_keys.c.key)))
    assert not [k for k in keys if "info@" in k or "noreply" in k or "test@" in k], keys
    assert pair_of(views, one, two) is None


def test_dismissed_pairs_are_not_suggested_until_restored(store: Store, views: Views) -> None:
    one, two = record(
        store,
        Person("email:jonas.kazlauskas@gmail.com", "Jonas Kazlauskas"),
        Person("email:jonas.kazlauskas+x@gmail.com", "Jonas Kazlauskas"),
    )
    project(store, views)
    assert pair_of(views, one, two) is not None

    store.app.duplicates.dismiss(one, two, actor="agent")
    project(store, views)
    assert pair_of(views, one, two) is None

    store.app.duplicates.restore(two, one, actor="agent")
    project(store, views)
    assert pair_of(views, one, two) is not None


def test_a_merge_group_is_one_side_of_its_pairs(store: Store, views: Views) -> None:
    sms, mail, chat = record(
        store,
        Person("phone:+37061234567", "Rūta Jankauskaitė"),
        Person("email:ruta.j@gmail.com", "Ruta Jankauskaite", ["mano tel. +37061234567"]),
        Person("chat:visitor-ruta", "Rūta", ["my email is ruta.j@gmail.com"]),
    )
    project(store, views)
    assert set(pairs(views)) == {frozenset((sms, mail)), frozenset((mail, chat))}

    store.app.identity.merge(sms, mail, actor="agent", reason="same person")
    project(store, views)
    only = pairs(views)
    assert list(only) == [frozenset((sms, chat))], "the group shows as its root"
    assert only[frozenset((sms, chat))].band == "high"

    store.app.identity.merge(sms, chat, actor="agent", reason="same person")
    project(store, views)
    assert pairs(views) == {}

    store.app.identity.unmerge(mail, actor="agent", reason="oops")
    project(store, views)
    assert set(pairs(views)) == {frozenset((sms, mail))}


def test_a_dismissal_between_members_holds_for_their_groups(store: Store, views: Views) -> None:
    sms, mail, other = record(
        store,
        Person("phone:+37061234567", "Rūta Jankauskaitė"),
        Person("email:ruta.j@gmail.com", "Rūta Jankauskaitė"),
        Person("email:ruta.j+old@gmail.com", "Rūta Jankauskaitė"),
    )
    store.app.duplicates.dismiss(mail, other, actor="agent")
    store.app.identity.merge(sms, mail, actor="agent", reason="same person")
    project(store, views)
    assert pair_of(views, sms, other) is None


def test_a_visitor_merged_by_verification_then_unmerged_is_high(store: Store, views: Views) -> None:
    [owner] = record(store, Person("email:ruta@pavyzdys.lt", "Rūta"))
    [visitor] = record(store, Person("chat:visitor-v1", texts=["labas"]))
    result = store.app.identity.link_address(
        "chat:visitor-v1", "email:ruta@pavyzdys.lt", verified=True, reason="verification"
    )
    assert result.outcome == "merged"
    store.app.identity.unmerge(visitor, actor="agent", reason="checking")
    project(store, views)
    found = pair_of(views, owner, visitor)
    assert found is not None
    assert (found.band, found.kinds) == ("high", {"verified_visitor"})


@pytest.mark.parametrize("batch_size", [1, 7])
def test_small_batches_give_the_pairs_one_batch_gives(
    store: Store, views: Views, batch_size: int
) -> None:
    people = [
        Person("phone:+37061234567", "Jonas Kazlauskas"),
        Person("email:jonas.kazlauskas@gmail.com", "Jonas Kazlauskas", ["tel 861234567"]),
        Person("email:jonaskazlauskas+a@gmail.com", "J. Kazlauskas"),
        Person("phone:+37161234567", "Jonas"),
        Person("email:jonas.kazlauskas@inbox.lt", "Jonas Kazlauskas"),
        Person("phone:+37069999999", "Jonas Kazlauskas"),
    ]
    duplicates_of(views).configure(3, "LT")
    record(store, *people)
    project(store, views, batch_size=batch_size)
    in_small_batches = pairs(views)
    assert len(in_small_batches) >= 5

    views.reset("duplicates")
    project(store, views, batch_size=10_000)
    assert pairs(views) == in_small_batches


def test_erasure_purges_keys_and_pairs(store: Store, views: Views) -> None:
    one, two, three = record(
        store,
        Person("email:jonas.kazlauskas@gmail.com", "Jonas Kazlauskas"),
        Person("email:jonaskazlauskas@gmail.com", "Jonas Kazlauskas"),
        Person("email:jonas.kazlauskas@inbox.lt", "Jonas Kazlauskas"),
    )
    project(store, views)
    assert len(pairs(views)) == 3
    views.erase([one], T0)
    rows = all_view_rows(views.engine)
    for table in ("duplicate_keys", "duplicate_pairs"):
        assert not [r for r in rows[table] if one in r], table
    assert set(pairs(views)) == {frozenset((two, three))}


def test_retention_forgets_what_old_messages_mentioned(store: Store, views: Views) -> None:
    owner, writer = record(
        store,
        Person("email:ona@pavyzdys.lt", "Ona"),
        Person("phone:+37061234567", texts=["my email is ona@pavyzdys.lt"]),
    )
    project(store, views)
    assert pair_of(views, owner, writer) is not None

    changed = views.expire_bodies_before(T0 + timedelta(days=1))
    assert changed.get("duplicates") == 1
    assert pair_of(views, owner, writer) is None


def test_a_rebuild_with_the_directory_gives_identical_rows(store: Store, views: Views) -> None:
    sms, mail, chat, other = record(
        store,
        Person("phone:+37061234567", "Rūta Jankauskaitė"),
        Person("email:ruta.j@gmail.com", "Ruta Jankauskaite", ["mano tel. +37061234567"]),
        Person("chat:visitor-ruta", "Rūta", ["my email is ruta.j@gmail.com"]),
        Person("email:ruta.j+old@gmail.com", "Rūta Jankauskaitė"),
    )
    store.app.identity.merge(sms, mail, actor="agent", reason="same person")
    store.app.duplicates.dismiss(chat, sms, actor="agent")
    store.app.identity.unmerge(mail, actor="agent", reason="oops")
    store.app.identity.merge(other, chat, actor="agent", reason="same person")
    project(store, views, batch_size=3)
    tables = ("duplicate_keys", "duplicate_pairs", "duplicate_dismissals")
    before = {t: rows for t, rows in all_view_rows(views.engine).items() if t in tables}
    assert before["duplicate_pairs"]

    views.reset("directory")
    views.reset("duplicates")
    LogFollower(store, views, only=["directory", "duplicates"]).catch_up()
    after = {t: rows for t, rows in all_view_rows(views.engine).items() if t in tables}
    assert after == before


@given(text=HOSTILE_TEXT, blocked=st.sampled_from(["info@kavine.lt", "noreply@shop.lt"]))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
def test_any_message_text_is_folded_without_failing_or_keeping_a_blocklisted_address(
    store: Store, views: Views, text: str, blocked: str
) -> None:
    owner = record(store, Person(f"email:{blocked}", "Kavinė"))[0]
    writer = record(
        store, Person("phone:+37061234567", texts=[f"{scrub_text(text)} rašykite {blocked}"])
    )[0]
    project(store, views)
    with views.engine.connect() as conn:
        values = set(conn.scalars(select(duplicate_keys.c.value)))
    assert not [v for v in values if blocked in v]
    assert pair_of(views, owner, writer) is None


def test_a_name_more_common_than_the_limit_finds_no_candidates_by_itself(
    store: Store, views: Views
) -> None:
    record(store, *[Person(f"phone:+4479111230{n}0", "John Smith") for n in range(5)])
    project(store, views)
    assert len(pairs(views)) == 10  # every two of the five: low
    record(store, Person("phone:+447911123060", "John Smith"))
    project(store, views)
    assert pairs(views) == {}
    # ... though the name still counts between customers that share something else
    mailbox = record(store, Person("email:john.smith@gmail.com", "John Smith"))[0]
    project(store, views)
    other = record(store, Person("email:johnsmith+x@gmail.com", "John Smith"))[0]
    project(store, views)
    found = pair_of(views, mailbox, other)
    assert found is not None
    assert found.kinds == {"same_email", "same_name"}
