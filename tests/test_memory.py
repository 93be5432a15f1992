"""hub.memory: one budget shared by the caches of a process, and what each cache says an
entry costs, weighed on real entries (the bounds are only as honest as these figures)."""

from __future__ import annotations

import gc
import sqlite3
import sys
import tracemalloc
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub import memory
from hub.config import Settings
from hub.domain.application import ADDRESS_IDS, AGGREGATES
from hub.domain.crypto import KEYS
from hub.embedded.follower import LogFollower
from hub.events import InboundInteraction
from hub.events.addresses import ADDRESSES, normalise_address
from hub.events.duplicate_keys import NAMES, PHONE_KEYS, REGIONS, fold_name, phone_key, region_of
from hub.projections import business, service
from hub.projections.search_text import WORDS, fold
from hub.runtime.views import open_views
from hub.store.sqlite import PAGES, memory_pragmas
from hub.stream.topics import KEY_HASHES, _key_hash
from tests.support.store import opened

#: An entry may cost up to this much more, or less, than its part says.
TOLERANCE = 1.5
CUSTOMERS = 400


@pytest.fixture
def budget() -> Iterator[None]:
    """The default budget again after the test, for the tests that run after it here (and
    SQLite's limit, which is the process's, with it)."""
    yield
    memory.configure(memory.DEFAULT_MIB)
    with closing(sqlite3.connect(":memory:")) as conn:
        for pragma in memory_pragmas():
            conn.execute(pragma)


def test_a_part_is_its_share_of_the_budget_in_entries(budget: None) -> None:
    memory.configure(10)
    assert AGGREGATES.entries == int(10 * memory.MIB * AGGREGATES.share) // AGGREGATES.entry_bytes
    memory.configure(0)
    assert AGGREGATES.entries == 0


def test_the_shares_add_up_to_at_most_the_budget() -> None:
    assert {"aggregates", "sqlite pages", "service rows kept", "partition hashes"} <= set(
        memory.parts()
    )
    assert sum(p.share for p in memory.parts().values()) <= 1
    with pytest.raises(ValueError, match="add up to"):
        memory.Part("greedy", share=0.5, entry_bytes=10)
    assert "greedy" not in memory.parts()


def test_configure_resizes_the_lru_caches(budget: None) -> None:
    part = ADDRESSES
    memory.configure(1)
    assert normalise_address.cache_info().maxsize == part.entries > 0
    normalise_address("email:a@example.com")
    assert normalise_address.cache_info().currsize == 1
    memory.configure(0)
    assert normalise_address.cache_info().maxsize == 0
    normalise_address("email:a@example.com")
    assert normalise_address.cache_info().currsize == 0
    with pytest.raises(ValueError, match="negative"):
        memory.configure(-1)


def test_an_lru_made_directly_follows_the_budget_too(budget: None) -> None:
    """The application builds its address-id cache with ``memory.Lru`` (it binds a pepper):
    a later ``configure`` resizes it like the decorated ones."""
    cache = memory.Lru(str.upper, ADDRESS_IDS)
    memory.configure(1)
    assert cache.cache_info().maxsize == ADDRESS_IDS.entries > 0
    memory.configure(0)
    assert cache.cache_info().maxsize == 0


def test_the_settings_set_the_budget(make_settings: Any, budget: None) -> None:
    with opened(make_settings(cache_mib=2)) as store:
        assert memory.budget_bytes() == 2 * memory.MIB
        assert store.app.cache._maxsize == AGGREGATES.entries
        assert store.cipher._cache_size == KEYS.entries
        # SQLite's page caches: one limit for the process, its part of the budget in pages.
        with store.views_engine.connect() as conn:
            limit = conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar()
        assert limit == PAGES.entries * 4096 == int(2 * memory.MIB * PAGES.share) // 4096 * 4096


def test_no_budget_is_no_cache_and_sqlite_at_its_least(make_settings: Any, budget: None) -> None:
    with opened(make_settings(cache_mib=0)) as store:
        assert store.app.cache._maxsize == 0
        with store.views_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == 1  # 0: unlimited


# -- what an entry costs ---------------------------------------------------------------------


def _deep_size(roots: Iterable[object]) -> int:
    """Bytes of the objects reachable from ``roots`` (classes, modules and functions left
    out), each counted once."""
    seen: set[int] = set()
    stack = list(roots)
    size = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return size


def _assert_costs(part: memory.Part, measured: float) -> None:
    assert part.entry_bytes / TOLERANCE <= measured <= part.entry_bytes * TOLERANCE, (
        f"{part.name}: an entry costs {measured:,.0f} bytes, its part says {part.entry_bytes:,}"
    )


def _interaction(n: int) -> InboundInteraction:
    """The first contact of customer ``n``: a new address, a conversation, a message."""
    channel, address = (
        ("sms", f"phone:+3706{n:07d}") if n % 2 else ("email", f"email:klientas{n}@example.lt")
    )
    return InboundInteraction(
        channel=channel,
        direction="inbound",
        address=address,
        provider_message_id=f"m-{n}",
        occurred_at=datetime(2026, 11, 2, tzinfo=UTC) + timedelta(minutes=n),
        text="Laba diena, mano užsakymas dar neatvyko; gal galite patikrinti, kur jis dabar?",
        subject="Užsakymas" if channel == "email" else None,
        contact_name=f"Jūratė Kazlauskienė {n}",
        metadata={"source": "test", "locale": "lt"},
    )


def test_what_kept_aggregates_view_rows_and_keys_cost(make_settings: Any, budget: None) -> None:
    settings: Settings = make_settings()
    with opened(settings) as store:
        views = open_views(settings, store)
        views.create()
        store.app.record_interactions([_interaction(n) for n in range(CUSTOMERS)])
        LogFollower(store, views, batch_size=CUSTOMERS * 10).catch_up()
        aggregates = list(store.app.cache._items.values())
        assert len(aggregates) == 3 * CUSTOMERS  # a customer, an address, a conversation
        _assert_costs(AGGREGATES, _deep_size(aggregates) / len(aggregates))
        keys = store.cipher._cache
        assert len(keys) == CUSTOMERS
        _assert_costs(KEYS, _deep_size([keys]) / len(keys))
        for projection, part in (
            (views.by_name("service"), service.KEPT_ROWS),
            (views.by_name("business"), business.KEPT_ROWS),
        ):
            rows = projection.kept._rows  # type: ignore[attr-defined]
            assert len(rows) == CUSTOMERS
            _assert_costs(part, _deep_size([rows]) / len(rows))


def _traced_per_entry(fill: Callable[[int], object], entries: int = 2000) -> float:
    """Bytes a cache holds per entry once ``fill(n)`` for n < ``entries`` has filled it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        results = [fill(n) for n in range(entries)]
        del results  # only what the cache keeps counts
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / entries


@pytest.mark.parametrize(
    ("part", "function", "argument"),
    [
        (ADDRESSES, normalise_address, lambda n: f"phone:+3706{n:07d}"),
        (PHONE_KEYS, phone_key, lambda n: f"phone:+4219{n:08d}"),
        (REGIONS, region_of, lambda n: f"phone:+4206{n:08d}"),
        (NAMES, fold_name, lambda n: f"Dzintars Bērziņš-Kalniņš {n}"),
        (WORDS, fold, lambda n: f"žluťoučký{n}"),
        (KEY_HASHES, _key_hash, lambda n: f"phone:+3712{n:07d}".encode()),
    ],
    ids=lambda v: v.name if isinstance(v, memory.Part) else "",
)
def test_what_an_lru_entry_costs(
    part: memory.Part, function: Any, argument: Callable[[int], Any], budget: None
) -> None:
    memory.configure(memory.DEFAULT_MIB)
    function.resize()  # empty
    _assert_costs(part, _traced_per_entry(lambda n: function(argument(n))))


def test_what_an_address_id_costs(make_settings: Any, budget: None) -> None:
    with opened(make_settings()) as store:
        ids = store.app._address_ids
        _assert_costs(
            ADDRESS_IDS, _traced_per_entry(lambda n: ids(f"email:pirkejas{n}@example.lv"))
        )
