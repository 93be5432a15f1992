"""The directory's profile tables (hub.projections.profiles): agents' edits and the first
contact's source folded into ``directory_profiles`` and ``directory_attributes``, read back as
the record of a customer and of a merged group (root first), replayed without change, and
purged by an erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select

from hub.events import CustomerProfileUpdated
from hub.events.inbound import InboundSource
from hub.projections import Views
from hub.projections.profiles import apply_profiles, attributes, profiles
from hub.store import Store
from tests.projections.helpers import project
from tests.support.store import inbound


def _define(store: Store) -> None:
    profile = store.app.profile
    profile.define_attribute("plan", "enum", "Plan", ["free", "gold"], actor="admin")
    profile.define_attribute("seats", "number", "Seats", actor="admin")
    profile.define_attribute("vip", "boolean", "VIP", actor="admin")
    profile.define_attribute("renewal", "date", "Renewal", actor="admin")


def _rows(views: Views) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with views.engine.connect() as conn:
        found = [dict(r) for r in conn.execute(select(profiles)).mappings()]
        values = [
            dict(r)
            for r in conn.execute(
                select(attributes).order_by(attributes.c.customer_id, attributes.c.key)
            ).mappings()
        ]
    return found, values


def test_edits_and_the_source_land_in_their_tables_with_their_types(
    store: Store, views: Views
) -> None:
    _define(store)
    page = InboundSource(
        via="chat_page", source="newsletter", medium="email", referrer="https://a.example/b"
    )
    [r] = store.app.record_interactions(
        [inbound("c1", channel="chat", address="chat:v-1", source=page)]
    )
    cid = r.customer_id
    store.app.profile.update(
        cid,
        {
            "birthday": "1990-04-21",
            "time_zone": "Europe/Vilnius",
            "language": "lt",
            "company": "Acme",
            "attributes": {"plan": "gold", "seats": 12, "vip": True, "renewal": "2027-01-31"},
        },
        actor="ann",
    )
    project(store, views)
    [row], values = _rows(views)
    assert row == {
        "customer_id": cid,
        "birthday": "1990-04-21",
        "time_zone": "Europe/Vilnius",
        "language": "lt",
        "company": "Acme",
        "source": "newsletter",
        "source_medium": "email",
        "source_campaign": None,
        "source_via": "chat_page",
        "source_referrer": "https://a.example/b",
        "source_endpoint": None,
    }
    assert [
        (v["key"], v["kind"], v["text_value"], v["number_value"], v["bool_value"]) for v in values
    ] == [
        ("plan", "enum", "gold", None, None),
        ("renewal", "date", "2027-01-31", None, None),
        ("seats", "number", None, 12.0, None),
        ("vip", "boolean", None, None, True),
    ]
    with views.engine.connect() as conn:
        record = views.directory.profile(conn, cid)
    assert record is not None
    assert (record.birthday, record.time_zone, record.language, record.company) == (
        "1990-04-21",
        "Europe/Vilnius",
        "lt",
        "Acme",
    )
    assert record.attributes == {"plan": "gold", "renewal": "2027-01-31", "seats": 12, "vip": True}
    assert record.source is not None
    assert record.source["referrer"] == "https://a.example/b"

    # a field not named keeps its value; a cleared one and a removed attribute go
    store.app.profile.update(cid, {"company": None, "attributes": {"vip": None}}, actor="ann")
    project(store, views)
    [row], values = _rows(views)
    assert (row["company"], row["time_zone"], row["source"]) == (
        None,
        "Europe/Vilnius",
        "newsletter",
    )
    assert [v["key"] for v in values] == ["plan", "renewal", "seats"]


def test_a_merged_group_shows_the_roots_value_else_the_first_members(
    store: Store, views: Views
) -> None:
    _define(store)
    [a] = store.app.record_interactions([inbound("a", address="phone:+4915100000011")])
    [b] = store.app.record_interactions([inbound("b", address="phone:+4915100000012")])
    store.app.profile.update(
        b.customer_id,
        {"company": "B Co", "time_zone": "Asia/Tokyo", "attributes": {"plan": "free", "seats": 3}},
        actor="ann",
    )
    store.app.profile.update(
        a.customer_id, {"time_zone": "Europe/Riga", "attributes": {"plan": "gold"}}, actor="ann"
    )
    store.app.identity.merge(a.customer_id, b.customer_id, actor="ann", reason="same")
    project(store, views)
    with views.engine.connect() as conn:
        group = views.directory.profile(conn, b.customer_id)
    assert group is not None
    assert group.customer_id == a.customer_id
    assert (group.time_zone, group.company) == ("Europe/Riga", "B Co")
    assert group.attributes == {"plan": "gold", "seats": 3}


def test_a_replay_changes_nothing_and_an_erasure_purges(store: Store, views: Views) -> None:
    _define(store)
    [r] = store.app.record_interactions(
        [inbound("r", address="phone:+4915100000013", source=InboundSource(source="ads"))]
    )
    store.app.profile.update(
        r.customer_id, {"company": "Acme", "attributes": {"seats": 2}}, actor="a"
    )
    project(store, views)
    before = _rows(views)
    envelopes, _ = store.read_envelopes(0, 10_000)
    with views.engine.begin() as conn:
        apply_profiles(conn, envelopes)  # every event again, as a replay would
    assert _rows(views) == before
    views.erase([r.customer_id], datetime.now(UTC))
    assert _rows(views) == ([], [])


def test_events_from_before_profiles_change_only_the_name(store: Store, views: Views) -> None:
    """A ``customer.profile_updated.v1`` as older hubs wrote it: the name, nothing else."""
    [r] = store.app.record_interactions([inbound("o", address="phone:+4915100000014")])
    project(store, views)
    old = CustomerProfileUpdated.model_validate(
        {
            "id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "recorded_at": datetime.now(UTC),
            "customer_id": r.customer_id,
            "position": 10_000,
            "data": {"display_name": "Old Name"},
        }
    )
    assert old.data.changed == []
    views.apply([old], up_to=10_000)
    with views.engine.connect() as conn:
        record = views.directory.profile(conn, r.customer_id)
    assert record is not None
    assert record.display_name == "Old Name"
    assert (record.company, record.attributes) == (None, {})
    assert _rows(views) == ([], [])
