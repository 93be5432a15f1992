"""Precision of duplicate suggestions on a labelled set: pairs of customers that are one
person (a strong identifier, or a name with a mailbox name or phone suffix) and pairs that are
obviously different people with common Lithuanian, Czech, Slovak, Latvian and English names.

All of them live in one hub, so pairs across the labelled ones count too: nothing but a
labelled true pair may be high.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest

from hub.projections import Views
from hub.store import Store
from tests.projections.duplicates_support import Person, duplicates_of, pairs, record
from tests.projections.helpers import project

P = Person


@dataclass(frozen=True)
class Labelled:
    one: Person
    two: Person
    same: bool
    #: The bands the pair may get (None: not suggested at all).
    allowed: frozenset[str | None]


HIGH = frozenset({"high"})
MEDIUM = frozenset({"medium"})
LOW_AT_MOST = frozenset({"low", None})
NOT_HIGH = frozenset({"medium", "low", None})
NONE = frozenset({None})


def same(one: Person, two: Person, allowed: frozenset[str | None] = HIGH) -> Labelled:
    return Labelled(one, two, True, allowed)


def different(one: Person, two: Person, allowed: frozenset[str | None] = LOW_AT_MOST) -> Labelled:
    return Labelled(one, two, False, allowed)


LABELLED: tuple[Labelled, ...] = (
    # -- one person: a strong identifier -------------------------------------------------
    same(
        P("phone:+37061234567", "Jonas Kazlauskas"),
        P("email:jonas.kazlauskas@gmail.com", "Jonas Kazlauskas", ["Mano tel. 861234567"]),
    ),
    same(
        P("email:jurate.kazlauskiene@gmail.com", "Jūratė Kazlauskienė"),
        P("email:juratekazlauskiene+eshop@googlemail.com", "Jurate Kazlauskiene"),
    ),
    same(
        P("phone:+420601123456", "Petr Novák"),
        P("email:petr.novak@seznam.cz", "Petr Novák", ["Volejte mi na +420 601 123 456"]),
    ),
    same(
        P("phone:+421905123456", "Jana Horváthová"),
        P("chat:visitor-jh-1", "Jana", ["Moje číslo je +421 905 123 456, ďakujem"]),
    ),
    same(
        P("phone:+37120012345", "Pēteris Bērziņš"),
        P("email:peteris.berzins@inbox.lv", "Peteris Berzins", ["zvaniet +371 20012345"]),
    ),
    same(
        P("email:john.smith@outlook.com", "John Smith"),
        P("email:john.smith+orders@outlook.com", "John Smith"),
    ),
    same(
        P("phone:+447911123456", "Emily Clarke"),
        P("email:emily.c@proton.me", "Emily Clarke", ["my mobile is +44 7911 123456"]),
    ),
    same(
        P("email:tomas.dvorak@gmail.com", "Tomáš Dvořák"),
        P("email:t.o.m.a.s.dvorak@gmail.com", "Tomas Dvorak"),
    ),
    same(
        P("phone:+37062223344", "Lina Vaitkutė"),
        P("phone:+37162223344", "Lina Vaitkute"),  # the number with Latvia's code
    ),
    same(
        P("email:rasa.m@zebra.lt", "Rasa Mockutė"),
        P("chat:visitor-rm-1", "Rasa", ["Mano el. paštas rasa.m@zebra.lt"]),
    ),
    same(
        P("email:agne.petrauskaite@gmail.com", "Agnė Petrauskaitė"),
        P("phone:+37065555555", None, ["rašykite agne.petrauskaite@gmail.com"]),
    ),
    same(
        P("email:william.taylor@gmail.com", "William Taylor"),
        P("email:williamtaylor@gmail.com", "Bill Taylor"),
        MEDIUM,  # one mailbox, but the names say two people: an agent decides
    ),
    # -- one person: a name and a mailbox name or a phone suffix ---------------------------
    same(
        P("email:martin.kovac@centrum.sk", "Martin Kováč"),
        P("email:martin.kovac@gmail.com", "Martin Kovac"),
        MEDIUM,
    ),
    same(
        P("phone:+37129123456", "Ieva Ozola"),
        P("phone:+37169123456", "Ieva Ozola"),
        MEDIUM,
    ),
    same(
        P("email:kristina.jankauskiene@one.lt", "Kristina Jankauskienė"),
        P("email:kristina_jankauskiene@yahoo.com", "Kristina Jankauskiene"),
        MEDIUM,
    ),
    # -- different people with common names -----------------------------------------------
    different(P("phone:+447700900111", "John Smith"), P("phone:+447700900222", "John Smith")),
    different(
        P("phone:+37061111111", "Jonas Kazlauskas"), P("phone:+37062222222", "Jonas Kazlauskas")
    ),
    different(
        P("email:jana.novakova@seznam.cz", "Jana Nováková"),
        P("email:anna.novakova@seznam.cz", "Anna Nováková"),
        NONE,
    ),
    different(
        P("email:jan.novak@email.cz", "Jan Novák"),
        P("email:jana.novakova@email.cz", "Jana Nováková"),
        NONE,
    ),
    different(
        P("phone:+37063333333", "Tomas Petrauskas"),
        P("phone:+37064444444", "Tomas Petraitis"),
        NONE,
    ),
    different(
        P("phone:+37060000001", "Jonas Paulauskas"),
        P("email:ona.paulauskiene@pavyzdys.lt", "Ona Paulauskienė", ["vyro tel. +37060000001"]),
        NOT_HIGH,  # a family phone: the names differ
    ),
    different(
        P("email:emily.clarke@gmail.com", "Emily Clarke"),
        P("email:emily.clarke1990@yahoo.com", "Emily Clarke"),
    ),
    different(
        P("email:james.brown@gmail.com", "James Brown"),
        P("email:james.brown@yahoo.co.uk", "James Brown"),
        NOT_HIGH,  # a common name and a common mailbox name: worth a look, no more
    ),
    different(
        P("phone:+420777111222", "Lucie Svobodová"), P("phone:+420777333444", "Lucie Svobodová")
    ),
    different(
        P("email:maria.kovacova@azet.sk", "Mária Kováčová"),
        P("email:majka.k@gmail.com", "Mária Kováčová"),
    ),
    different(P("phone:+37129000001", "Jānis Liepiņš"), P("phone:+37129000002", "Jānis Liepiņš")),
    different(
        P("phone:+37128111111", "Andris Kalniņš", ["zvanīju uz +371 67 000 000"]),
        P("phone:+37128222222", "Anna Kalniņa", ["zvanīju uz +371 67 000 000"]),
        NONE,
    ),
    different(
        P("email:petra.cerna@seznam.cz", "Petra Černá", ["manžel Petr: +420 602 000 111"]),
        P("phone:+420602000111", "Petr Černý"),
        NOT_HIGH,
    ),
    different(
        P("chat:visitor-zh-1", "Zuzana Horváthová"), P("phone:+421903555666", "Zuzana Horváthová")
    ),
    different(
        P("email:oliver.jones@hotmail.com", "Oliver Jones"),
        P("email:olivia.jones@hotmail.com", "Olivia Jones"),
        NONE,
    ),
    different(P("phone:+37126000001", "Laura Bērziņa"), P("phone:+37126999999", "Laura Bērziņa")),
    different(
        P("phone:+420603111222", "Kateřina Veselá"), P("phone:+420603444555", "Katerina Vesela")
    ),
    different(
        P("email:marek.horvath@gmail.com", "Marek Horváth"),
        P("email:mhorvath@firma.sk", "Marek Horvath"),
    ),
    different(
        P("email:info@kavine.lt", "Kavinė"),
        P("phone:+37067777777", "Rūta", ["rašykite info@kavine.lt"]),
        NONE,  # info@ is on the built-in blocklist
    ),
)


@pytest.fixture
def labelled(store: Store, views: Views) -> list[tuple[Labelled, UUID, UUID]]:
    duplicates_of(views).configure(3, "LT")
    found = []
    for n, case in enumerate(LABELLED):
        one, two = record(store, case.one, case.two, at_minutes=10 * n)
        found.append((case, one, two))
    project(store, views)
    return found


def test_the_labelled_set_is_big_enough() -> None:
    assert len(LABELLED) >= 30
    assert sum(c.same for c in LABELLED) >= 12
    assert sum(not c.same for c in LABELLED) >= 15


def test_no_false_pair_is_high(views: Views, labelled: list[tuple[Labelled, UUID, UUID]]) -> None:
    truly_one = {frozenset((a, b)) for case, a, b in labelled if case.same}
    high = {ids for ids, pair in pairs(views).items() if pair.band == "high"}
    assert high <= truly_one, [pairs(views)[ids].evidence for ids in high - truly_one]


def test_each_labelled_pair_gets_its_band(
    views: Views, labelled: list[tuple[Labelled, UUID, UUID]]
) -> None:
    found = pairs(views)
    wrong = []
    for case, one, two in labelled:
        pair = found.get(frozenset((one, two)))
        band = pair.band if pair else None
        if band not in case.allowed:
            wrong.append((case.one.name, case.two.name, band, pair.evidence if pair else None))
    assert wrong == []
