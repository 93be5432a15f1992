"""The customer directory: lookup by exact address, search over name and address fragments
(phone digits too), and search paged by cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.projections import Views
from hub.store import Store
from tests.projections.helpers import project, record_directory, search_ids
from tests.support.store import T0


def test_directory_lookup_by_exact_address(store: Store, views: Views) -> None:
    ids = record_directory(store)
    project(store, views)
    with views.engine.connect() as conn:
        alice = views.directory.by_address(conn, "email:alice@example.com")
        bob = views.directory.by_address(conn, "phone:+14155550101")
        visitor = views.directory.by_address(conn, "chat:visitor-77")
        assert views.directory.by_address(conn, "email:ALICE@example.com") is None
        assert views.directory.by_address(conn, "email:alice@example") is None
        assert views.directory.by_address(conn, "phone:+14155550102") is None
    assert alice is not None
    assert bob is not None
    assert visitor is not None
    assert alice.customer_id == ids["alice"]
    assert alice.display_name == "Alice Example"
    assert alice.created_at == T0
    assert alice.last_activity_at == T0
    assert [(i.address, i.kind, i.verified) for i in alice.identities] == [
        ("email:alice@example.com", "email", False)
    ]
    assert bob.customer_id == ids["bob"]
    assert visitor.display_name == "Dave Later"  # learnt from the second message
    assert visitor.last_activity_at == T0 + timedelta(hours=5)


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("alice", "alice"),
        ("ALI", "alice"),
        ("example.com", "alice"),
        ("alice@exa", "alice"),
        ("builder", "bob"),
        ("bob b", "bob"),
        ("0101", "bob"),
        ("555-0101", "bob"),
        ("(415) 555", "bob"),
        ("+1415555", "bob"),
        ("dave", "visitor"),
        ("visitor-77", "visitor"),
    ],
)
def test_directory_search_finds_name_and_address_fragments(
    store: Store, views: Views, query: str, who: str
) -> None:
    ids = record_directory(store)
    project(store, views)
    assert search_ids(views, query) == [ids[who]]


def test_directory_search_escapes_wildcards_and_misses_cleanly(store: Store, views: Views) -> None:
    record_directory(store)
    project(store, views)
    assert search_ids(views, "zzz") == []
    assert search_ids(views, "%") == []
    assert search_ids(views, "_") == []


def test_directory_search_paginates_with_a_cursor(store: Store, views: Views) -> None:
    ids = record_directory(store)
    project(store, views)
    seen: list[Any] = []
    sizes = []
    after = None
    with views.engine.connect() as conn:
        while True:
            found, after = views.directory.search(conn, "test person", 3, after)
            sizes.append(len(found))
            seen += [c.customer_id for c in found]
            if after is None:
                break
    assert sizes == [3, 3, 1]
    assert len(set(seen)) == 7
    assert set(seen) == set(ids["people"])
    assert seen == sorted(seen)
