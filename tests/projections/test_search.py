"""Full-text search in the views (``hub.projections.search``) on SQLite (FTS5) and PostgreSQL
(tsvector + unaccent): Lithuanian, Czech, Slovak and Latvian words match with and without
their diacritics both ways; notes, conversation subjects, names and addresses are found; the
query syntax; a merged customer's documents name the group's root; an erasure leaves no word
of the customer in the index, not even in SQLite's files; retention blanks old bodies; a
rebuild gives identical rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from hub.embedded.follower import LogFollower
from hub.projections import Views
from hub.projections.search import documents
from hub.projections.search_backends import SearchUnavailable
from hub.projections.search_queries import SearchFilter, SearchHit
from hub.projections.search_queries import find as find_page
from hub.projections.search_text import parse
from hub.store import Store, create_db_engine
from tests.projections.helpers import project
from tests.support.store import T0, all_view_rows, inbound

#: (as written, as typed without diacritics): Lithuanian, Czech, Slovak, Latvian.
WORDS = [
    ("Žąsų", "zasu"),
    ("ąžuolėlis", "azuolelis"),
    ("příliš žluťoučký kůň", "prilis zlutoucky kun"),
    ("ďakujem", "dakujem"),
    ("Ľubomír", "lubomir"),
    ("pasūtījums", "pasutijums"),
    ("ģimenē", "gimene"),
]


def find(views: Views, q: str, **wanted: Any) -> list[SearchHit]:
    with views.engine.connect() as conn:
        hits, cursor = find_page(conn, parse(q), SearchFilter(**wanted), 100)
    assert cursor is None
    return hits


def texts(hits: list[SearchHit]) -> list[str]:
    return ["".join(p.text for p in h.snippet) for h in hits]


def marked(hit: SearchHit) -> list[str]:
    return [p.text for p in (*hit.title, *hit.snippet) if p.match]


@pytest.mark.parametrize(("written", "typed"), WORDS)
def test_diacritics_match_both_ways(store: Store, views: Views, written: str, typed: str) -> None:
    record = store.app.record_interactions
    record([inbound("with", text=f"Labas, {written} vakar.", occurred_at=T0)])
    record([inbound("without", text=f"Sveiki, {typed} šiandien.", occurred_at=T0 + timedelta(1))])
    record([inbound("other", text="nothing to see", occurred_at=T0 + timedelta(2))])
    project(store, views)

    for q in (written, typed, written.upper(), typed.title()):
        hits = find(views, q)
        assert texts(hits) == [f"Sveiki, {typed} šiandien.", f"Labas, {written} vakar."], q
        # the matched words are marked as written in each message
        assert [marked(h) for h in hits] == [typed.split(), written.split()], q


def test_notes_subjects_names_and_addresses_are_found(store: Store, views: Views) -> None:
    record = store.app.record_interactions
    [mail] = record(
        [
            inbound(
                "<m1@example.lt>",
                channel="email",
                address="email:ona.grazute@pavyzdys.lt",
                contact_name="Ona Gražutė",
                subject="Reklamacija dėl siuntos",
                text="Siuntinys atkeliavo sudaužytas.",
            )
        ]
    )
    [sms] = record([inbound("SM1", address="phone:+37060012345", text="Kada grąžinsite?")])
    note = store.app.add_note(mail.conversation_id, "Klientė skambino: grąžinti pinigus", "ann")
    project(store, views)

    (found,) = find(views, "skambino")
    assert (found.kind, found.id, found.conversation_id) == ("note", note, mail.conversation_id)
    assert (found.channel, found.direction) == ("email", None)  # its conversation's channel
    assert found.customer_id == found.shown_customer_id == mail.customer_id
    assert found.display_name == "Ona Gražutė"
    subject = find(views, "reklamacija")
    assert {(h.kind, h.id) for h in subject} == {
        ("message", mail.message_id),
        ("conversation", mail.conversation_id),
    }
    assert [h.kind for h in find(views, "grazute")] == ["customer"]
    assert [h.kind for h in find(views, "ona.grazute@pavyzdys.lt")] == ["customer"]
    (by_phone,) = find(views, "37060012345")
    assert (by_phone.kind, by_phone.id) == ("customer", sms.customer_id)
    assert marked(by_phone) == ["37060012345"]
    assert {h.kind for h in find(views, "grazinti OR grazinsite")} == {"note", "message"}
    assert [h.kind for h in find(views, "grazinti OR grazinsite", kinds=("note",))] == ["note"]
    assert [h.kind for h in find(views, "grazinti OR grazinsite", channel="sms")] == ["message"]


def test_query_syntax_phrases_either_not_and_prefixes(store: Store, views: Views) -> None:
    store.app.record_interactions(
        [
            inbound("a", text="raudonas obuolys ir žalia kriaušė", occurred_at=T0),
            inbound("b", text="žalias obuolys, raudona kriaušė", occurred_at=T0 + timedelta(1)),
            inbound("c", text="tik slyvos", occurred_at=T0 + timedelta(2)),
        ]
    )
    project(store, views)

    def found(q: str) -> list[str]:
        return [t.split()[0].strip(",") for t in texts(find(views, q))]

    assert found("obuolys kriause") == ["žalias", "raudonas"]
    assert found('"raudonas obuolys"') == ["raudonas"]
    assert found('"obuolys raudonas"') == []
    assert found("kriause -zalias") == ["raudonas"]
    assert found('obuolys -"raudona kriause"') == ["raudonas"]
    assert found("slyvos OR raudonas") == ["tik", "raudonas"]
    assert found("kriau*") == ["žalias", "raudonas"]
    assert found('"zalia kri"*') == ["raudonas"]
    # punctuation and FTS operators are only separators
    assert found('(obuolys) ^kriause: +"') == ["žalias", "raudonas"]
    assert found("obuolys AND kriause") == []  # only OR is an operator: "and" is a word
    assert found("^tik: slyvos*") == ["tik"]


def test_a_merged_customers_documents_name_the_groups_root(store: Store, views: Views) -> None:
    record = store.app.record_interactions
    [first] = record([inbound("p1", contact_name="Jonas Jonaitis", text="pirmas laiškas")])
    [second] = record(
        [inbound("e1", channel="email", address="email:jj@example.lt", text="antras laiškas")]
    )
    store.app.identity.merge(first.customer_id, second.customer_id, actor="ann", reason="same")
    project(store, views)

    hits = find(views, "laiškas")
    assert [h.customer_id for h in hits] == [second.customer_id, first.customer_id]
    assert {h.shown_customer_id for h in hits} == {first.customer_id}
    assert {h.display_name for h in hits} == {"Jonas Jonaitis"}
    group = (first.customer_id, second.customer_id)
    assert len(find(views, "laiškas", customer_ids=group)) == 2
    assert len(find(views, "laiškas", customer_ids=(second.customer_id,))) == 1


def test_a_name_learnt_later_is_found_and_the_old_one_is_not(store: Store, views: Views) -> None:
    record = store.app.record_interactions
    record([inbound("c1", channel="chat", address="chat:visitor-5", text="labas")])
    [named] = record(
        [inbound("c2", channel="chat", address="chat:visitor-5", contact_name="Rūta Vėjūtė")]
    )
    project(store, views)

    (hit,) = find(views, "ruta vejute")
    assert (hit.kind, hit.id) == ("customer", named.customer_id)
    assert "".join(p.text for p in hit.title) == "Rūta Vėjūtė"
    assert "".join(p.text for p in hit.snippet) == "visitor-5"


def test_paging_is_newest_first_with_an_opaque_cursor(store: Store, views: Views) -> None:
    # recorded out of time order, two at the same moment (the later recorded shown first)
    times = {"3": 3, "1": 1, "2": 2, "6a": 6, "5": 5, "4": 4, "6b": 6}
    store.app.record_interactions(
        [
            inbound(f"m{n}", text=f"žinutė {n}", occurred_at=T0 + timedelta(minutes=minutes))
            for n, minutes in times.items()
        ]
    )
    project(store, views)
    seen: list[str] = []
    cursor = None
    with views.engine.connect() as conn:
        while True:
            hits, cursor = find_page(conn, parse("zinute"), SearchFilter(), 2, cursor)
            seen += [texts([h])[0] for h in hits]
            if cursor is None:
                break
        with pytest.raises(ValueError):
            find_page(conn, parse("zinute"), SearchFilter(), 2, "not-a-cursor")
        since = find_page(
            conn,
            parse("zinute"),
            SearchFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4)),
            10,
        )[0]
    assert seen == [f"žinutė {n}" for n in ("6b", "6a", "5", "4", "3", "2", "1")]
    assert texts(since) == ["žinutė 3", "žinutė 2"]


def _index_bytes(store: Store) -> bytes:
    """Every byte of the views' SQLite file, its write-ahead log checkpointed into it."""
    engine = store.views_engine
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert engine.url.database
    return open(engine.url.database, "rb").read()


def test_an_erased_customer_leaves_no_word_in_the_index(
    store: Store, views: Views, backend: str
) -> None:
    # A word no other document has, whose tail survives FTS5's prefix compression of terms.
    secret = "Qzxwvjk7731 tęsinys"
    record = store.app.record_interactions
    [gone] = record([inbound("s1", contact_name="Žemyna Qvortrupaitė", text=secret)])
    [kept] = record([inbound("s2", address="phone:+37060000001", text="kita žinutė")])
    store.app.add_note(gone.conversation_id, "pastaba Qzxwvjk7732", None)
    project(store, views)
    assert len(find(views, "qzxwvjk7731 OR qzxwvjk7732 OR qvortrupaite")) == 3
    if backend == "sqlite":
        assert b"xwvjk7731" in _index_bytes(store)  # the test can see what must go

    views.erase([gone.customer_id], T0)

    assert find(views, "qzxwvjk7731 OR qzxwvjk7732 OR qvortrupaite OR zinute") == [
        h for h in find(views, "zinute") if h.customer_id == kept.customer_id
    ]
    with views.engine.connect() as conn:
        left = conn.scalars(select(documents.c.customer_id).distinct()).all()
    assert left == [kept.customer_id]
    if backend == "sqlite":
        raw = _index_bytes(store)
        for tail in (b"xwvjk7731", b"xwvjk7732", b"ortrupait", b"Qvortrup"):
            assert tail not in raw


def test_retention_blanks_old_bodies_in_the_index(store: Store, views: Views, backend: str) -> None:
    record = store.app.record_interactions
    [old, _] = record(
        [
            inbound(
                "<old@x>",
                channel="email",
                address="email:ieva@example.com",
                subject="senas laiškas",
                text="senas tekstas Qzxwvjk5521",
                occurred_at=T0,
            ),
            inbound("new", text="naujas tekstas", occurred_at=T0 + timedelta(days=2)),
        ]
    )
    store.app.add_note(old.conversation_id, "sena pastaba", None)
    project(store, views)
    if backend == "sqlite":
        assert b"xwvjk5521" in _index_bytes(store)

    changed = views.expire_bodies_before(T0 + timedelta(days=1))

    assert changed["search"] == 2  # the message and its conversation's subject
    if backend == "sqlite":
        assert b"xwvjk5521" not in _index_bytes(store)  # not even in FTS5's segments
    assert [h.kind for h in find(views, "tekstas")] == ["message"]
    assert find(views, "senas") == []
    assert [h.kind for h in find(views, "pastaba")] == ["note"]  # notes are not message bodies
    assert views.expire_bodies_before(T0 + timedelta(days=1)).get("search") is None


def test_a_rebuild_gives_identical_rows_and_index(store: Store, views: Views) -> None:
    record = store.app.record_interactions
    [m] = record([inbound("r1", contact_name="Aistė", text="pirmas Žąsų")])
    store.app.add_note(m.conversation_id, "pastaba apie žąsis", "ann")
    record(
        [inbound("r2", address="phone:+37060000002", text="antras")],
    )
    LogFollower(store, views, batch_size=2).catch_up()
    before = all_view_rows(views.engine)
    hits = find(views, "zasu OR zasis OR antras OR aiste")

    views.reset("search")
    assert find(views, "zasu") == []
    LogFollower(store, views, only=["search"]).catch_up()

    assert all_view_rows(views.engine) == before
    assert find(views, "zasu OR zasis OR antras OR aiste") == hits
    assert len(hits) == 4


def test_postgresql_without_unaccent_refuses_to_start_with_a_reason(
    fresh_postgres_url: str,
) -> None:
    """A database user who may not create the unaccent extension (it is not there yet):
    the views are not created, and the error says what to do."""
    role = f"hub_plain_{uuid4().hex[:8]}"
    admin = create_db_engine(fresh_postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP EXTENSION IF EXISTS unaccent")
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
    plain = create_db_engine(
        make_url(fresh_postgres_url).set(username=role).render_as_string(False)
    )
    try:
        with pytest.raises(SearchUnavailable, match="CREATE EXTENSION unaccent"):
            Views(plain).create()
    finally:
        plain.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_applying_the_same_events_again_changes_nothing(store: Store, views: Views) -> None:
    [m] = store.app.record_interactions([inbound("i1", contact_name="Ieva", text="kartą")])
    store.app.add_note(m.conversation_id, "pastaba", None)
    project(store, views)
    before = all_view_rows(views.engine)
    envelopes, _ = store.read_envelopes(0, 1000)
    search = views.by_name("search")
    mine = [e for e in envelopes if e.type in search.handles]
    assert mine

    with views.engine.begin() as conn:
        search.apply(conn, mine)  # a replay, as a second projector would bring it

    assert all_view_rows(views.engine) == before
    assert [h.kind for h in find(views, "karta OR pastaba OR ieva")] == [
        "note",
        "message",
        "customer",
    ]
