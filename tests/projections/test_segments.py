"""Segment membership in SQL (``hub.projections.segment_filter``), on SQLite and PostgreSQL:
every leaf and the combinations, over a small directory with a merged group; paging with a
cursor and the total; unmerging; the tag and consent tables replayed and purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hub.events.segments import parse_filter
from hub.projections import Views
from hub.projections.segment_filter import FilterContext, count, page
from hub.projections.segments import consent_state, tag_index
from hub.store import Store
from tests.projections.helpers import project
from tests.projections.segments_support import set_attribute, set_profile
from tests.support.store import inbound

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CTX = FilterContext(now=NOW)


def _days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _record(store: Store, pid: str, **fields: Any) -> Any:
    [result] = store.app.record_interactions([inbound(pid, **fields)])
    return result


def build_world(store: Store, views: Views) -> dict[str, UUID]:
    """Six people; Eve is merged into Fay (the group shows as Fay)."""
    app = store.app
    consent = app.outbound.change_consent
    ana = _record(store, "ana-1", address="phone:+37060000001", occurred_at=_days_ago(100))
    _record(store, "ana-2", address="phone:+37060000001", occurred_at=_days_ago(5))
    ben = _record(
        store,
        "<ben-1@x>",
        channel="email",
        address="email:ben@example.com",
        occurred_at=_days_ago(200),
    )
    _record(
        store,
        "<ben-2@x>",
        channel="email",
        address="email:ben@example.com",
        occurred_at=_days_ago(150),
        thread_ref="<ben-1@x>",  # the same conversation
    )
    app.change_status(ben.conversation_id, "resolved", "agent")
    cat = _record(
        store,
        "tg-1",
        channel="telegram",
        address="telegram:5001",
        occurred_at=_days_ago(10),
        metadata={"language_code": "lt-LT"},
    )
    dan = _record(
        store,
        "chat-1",
        channel="chat",
        address="chat:visitor-9",
        occurred_at=_days_ago(40),
        metadata={"language": "pt-BR"},
    )
    app.change_status(dan.conversation_id, "resolved", "agent")
    eve = _record(
        store,
        "<eve-1@x>",
        channel="email",
        address="email:eve@example.com",
        occurred_at=_days_ago(400),
    )
    app.change_status(eve.conversation_id, "resolved", "agent")
    fay = _record(store, "fay-1", address="phone:+37060000006", occurred_at=_days_ago(20))
    ids = {
        "ana": ana.customer_id,
        "ben": ben.customer_id,
        "cat": cat.customer_id,
        "dan": dan.customer_id,
        "eve": eve.customer_id,
        "fay": fay.customer_id,
    }
    app.set_tags(ids["ana"], ["vip"], "agent")
    app.set_tags(ids["ben"], ["vip", "wholesale"], "agent")
    app.set_tags(ids["eve"], ["late"], "agent")

    def line(who: str, channel: str, granted: bool, purpose: str = "marketing") -> None:
        consent(ids[who], channel, granted, purposes=(purpose,), source="import")

    line("ana", "sms", True)
    line("ben", "email", True)
    line("ben", "email", False)  # the latest line decides
    line("eve", "email", True)
    line("fay", "email", False)  # the root's later line wins over the member's
    line("fay", "sms", True)
    line("eve", "sms", False)  # a member's later line wins over the root's
    line("eve", "telegram", True)  # a member's line alone decides for the group
    line("eve", "whatsapp", False)
    line("fay", "whatsapp", True)
    app.identity.merge(ids["fay"], ids["eve"], actor="agent", reason="same person")
    project(store, views)

    engine = views.engine
    set_profile(
        engine,
        ids["ana"],
        time_zone="Europe/Vilnius",
        language="lt",
        source="radio-spring",
        source_medium="radio",
        source_campaign="spring",
        source_via="endpoint",
    )
    set_profile(engine, ids["ben"], language="en-GB", source="Radio-Spring", source_via="api")
    set_attribute(engine, ids["ana"], "tier", "enum", "gold")
    set_attribute(engine, ids["ana"], "score", "number", 42)
    set_attribute(engine, ids["ana"], "newsletter", "boolean", True)
    set_attribute(engine, ids["ana"], "since", "date", "2023-04-01")
    set_attribute(engine, ids["ben"], "tier", "enum", "silver")
    set_attribute(engine, ids["ben"], "score", "number", 7.5)
    set_attribute(engine, ids["ben"], "newsletter", "boolean", False)
    set_attribute(engine, ids["eve"], "tier", "enum", "bronze")
    return ids


ROOTS = {"ana", "ben", "cat", "dan", "fay"}
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"tag": "vip"}, {"ana", "ben"}),
    ({"tag": "late"}, {"fay"}),  # Eve's tag: her group shows as Fay
    ({"tag": "VIP"}, set()),
    ({"not": {"tag": "vip"}}, {"cat", "dan", "fay"}),
    ({"channel": "sms"}, {"ana", "fay"}),
    ({"channel": "whatsapp"}, {"ana", "fay"}),
    ({"channel": "email"}, {"ben", "fay"}),
    ({"channel": "chat"}, {"ben", "dan", "fay"}),  # chat also reaches an email address
    ({"channel": "telegram"}, {"cat"}),
    ({"channel": "api"}, ROOTS),
    ({"consent": {"channel": "sms", "purpose": "marketing"}}, {"ana"}),
    ({"consent": {"channel": "email", "purpose": "marketing"}}, set()),
    ({"consent": {"channel": "telegram", "purpose": "marketing"}}, {"fay"}),
    ({"consent": {"channel": "whatsapp", "purpose": "marketing"}}, {"fay"}),
    ({"consent": {"channel": "sms", "purpose": "service"}}, {"ana", "fay"}),
    ({"consent": {"channel": "email", "purpose": "service"}}, {"ben", "fay"}),
    ({"consent": {"channel": "telegram", "purpose": "service"}}, {"cat"}),
    ({"not": {"consent": {"channel": "sms", "purpose": "marketing"}}}, ROOTS - {"ana"}),
    ({"language": "lt"}, {"ana", "cat"}),
    ({"language": "LT-lt"}, {"cat"}),
    ({"language": "en"}, {"ben"}),
    ({"language": "pt"}, {"dan"}),
    ({"language": "ptx"}, set()),
    ({"time_zone": "Europe/Vilnius"}, {"ana"}),
    ({"time_zone": "Europe/Riga"}, set()),
    ({"source": "radio-spring"}, {"ana", "ben"}),
    ({"source": {"medium": "RADIO"}}, {"ana"}),
    ({"source": {"source": "radio-spring", "via": "api"}}, {"ben"}),
    ({"source": {"campaign": "autumn"}}, set()),
    ({"first_contact": {"within_days": 30}}, {"cat"}),
    ({"first_contact": {"before": (_days_ago(300)).isoformat()}}, {"fay"}),  # Eve's
    ({"last_contact": {"within_days": 30}}, {"ana", "cat", "fay"}),
    ({"last_contact": {"before": (_days_ago(100)).isoformat()}}, {"ben"}),
    (
        {"last_contact": {"after": _days_ago(45).isoformat(), "before": _days_ago(15).isoformat()}},
        {"dan", "fay"},
    ),
    ({"last_contact": {"after": _days_ago(5).isoformat()}}, {"ana"}),  # after is inclusive
    ({"last_contact": {"before": _days_ago(5).isoformat()}}, ROOTS - {"ana"}),  # before is not
    ({"open_conversations": True}, {"ana", "cat", "fay"}),
    ({"open_conversations": False}, {"ben", "dan"}),
    ({"attribute": "tier", "value": "gold"}, {"ana"}),
    ({"attribute": "tier", "value": "bronze"}, {"fay"}),  # Eve's
    ({"attribute": "tier", "op": "ne", "value": "gold"}, {"ben", "fay"}),
    ({"attribute": "tier", "op": "in", "value": ["gold", "silver"]}, {"ana", "ben"}),
    ({"attribute": "score", "op": "gt", "value": 10}, {"ana"}),
    ({"attribute": "score", "op": "ge", "value": 42}, {"ana"}),
    ({"attribute": "score", "op": "le", "value": 7.5}, {"ben"}),
    ({"attribute": "score", "op": "lt", "value": 7.5}, set()),
    ({"attribute": "score", "value": "42"}, set()),  # a string is no number
    ({"attribute": "newsletter", "value": True}, {"ana"}),
    ({"attribute": "newsletter", "value": False}, {"ben"}),
    ({"attribute": "since", "op": "lt", "value": "2024-01-01"}, {"ana"}),
    ({"attribute": "since", "op": "gt", "value": "2024-01-01"}, set()),
    ({"attribute": "score", "op": "exists"}, {"ana", "ben"}),
    ({"not": {"attribute": "score", "op": "exists"}}, {"cat", "dan", "fay"}),
    ({"attribute": "unknown", "op": "exists"}, set()),
    (
        {"all": [{"tag": "vip"}, {"channel": "sms"}, {"last_contact": {"within_days": 90}}]},
        {"ana"},
    ),
    ({"any": [{"tag": "late"}, {"language": "pt"}]}, {"dan", "fay"}),
    ({"all": []}, ROOTS),
    ({"not": {"any": [{"tag": "vip"}, {"channel": "sms"}]}}, {"cat", "dan"}),
    ({"all": [{"not": {"tag": "vip"}}, {"not": {"channel": "telegram"}}]}, {"dan", "fay"}),
    (
        {"any": [{"all": [{"tag": "vip"}, {"not": {"tag": "wholesale"}}]}, {"tag": "late"}]},
        {"ana", "fay"},
    ),
]


def _matching(views: Views, tree: dict[str, Any], ids: dict[str, UUID]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    parsed = parse_filter(tree)
    with views.engine.connect() as conn:
        found, cursor = page(conn, parsed, CTX, 100)
        total = count(conn, parsed, CTX)
    assert cursor is None
    assert total == len(found), tree
    return {names[i] for i in found}


def test_every_condition_and_combination_selects_the_right_groups(
    store: Store, views: Views
) -> None:
    ids = build_world(store, views)
    wrong = []
    for tree, expected in CASES:
        found = _matching(views, tree, ids)
        if found != expected:
            wrong.append(f"{tree}: {sorted(found)} != {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


def test_pages_newest_first_with_a_cursor_and_the_total(store: Store, views: Views) -> None:
    ids = build_world(store, views)
    everyone = parse_filter({"all": []})
    seen: list[UUID] = []
    sizes = []
    after = None
    with views.engine.connect() as conn:
        assert count(conn, everyone, CTX) == 5
        while True:
            found, after = page(conn, everyone, CTX, 2, after)
            sizes.append(len(found))
            seen += found
            if after is None:
                break
    assert sizes == [2, 2, 1]
    assert seen == sorted((ids[n] for n in ROOTS), reverse=True)


def test_an_unmerged_customer_stands_alone_again(store: Store, views: Views) -> None:
    ids = build_world(store, views)
    store.app.identity.unmerge(ids["eve"], actor="agent", reason="not the same")
    project(store, views)
    assert _matching(views, {"tag": "late"}, ids) == {"eve"}
    assert _matching(views, {"channel": "email"}, ids) == {"ben", "eve"}
    assert _matching(views, {"first_contact": {"before": _days_ago(300).isoformat()}}, ids) == {
        "eve"
    }
    # Each on its own ledger now: Eve's telegram grant is hers, Fay's later email line hers.
    telegram = {"consent": {"channel": "telegram", "purpose": "marketing"}}
    assert _matching(views, telegram, ids) == {"eve"}
    email = {"consent": {"channel": "email", "purpose": "marketing"}}
    assert _matching(views, email, ids) == {"eve"}


def test_tags_and_consent_follow_changes_and_are_purged(store: Store, views: Views) -> None:
    ids = build_world(store, views)
    store.app.set_tags(ids["ana"], ["gold-card"], "agent")
    store.app.outbound.change_consent(
        ids["ana"], "sms", False, purposes=("marketing",), source="import"
    )
    project(store, views)
    assert _matching(views, {"tag": "vip"}, ids) == {"ben"}
    assert _matching(views, {"tag": "gold-card"}, ids) == {"ana"}
    assert _matching(views, {"consent": {"channel": "sms", "purpose": "marketing"}}, ids) == set()

    views.erase([ids["ana"], ids["ben"]], NOW)
    with views.engine.connect() as conn:
        for table in (tag_index, consent_state):
            left = set(conn.scalars(table.select().with_only_columns(table.c.customer_id)))
            assert left.isdisjoint({ids["ana"], ids["ben"]}), table.name
            assert left, table.name  # the others' rows stay


def test_purposes_granted_by_contact_are_configurable(store: Store, views: Views) -> None:
    ids = build_world(store, views)
    news = parse_filter({"consent": {"channel": "telegram", "purpose": "news"}})
    by_contact = FilterContext(now=NOW, granted_by_contact=frozenset({"service", "news"}))
    names = {v: k for k, v in ids.items()}
    with views.engine.connect() as conn:
        assert page(conn, news, CTX, 10)[0] == []
        assert {names[i] for i in page(conn, news, by_contact, 10)[0]} == {"cat"}
