"""What the projection tests share: histories recorded in a store (one customer over three
channels, a small directory of people), driving the log follower, and short reads of the views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.embedded.follower import LogFollower
from hub.embedded.runtime import EmbeddedRuntime
from hub.projections import Views, default_projections
from hub.projections.timeline import TimelineItem
from hub.store import Store
from tests.support.store import T0, inbound

PROJECTIONS = tuple(p.name for p in default_projections())
PHONE = "phone:+4915112345678"
CHANNELS = ("sms", "whatsapp", "voice")


def project(store: Store, views: Views, batch_size: int = 1000) -> int:
    """Bring the views up to the store's log; how many (projection, event) pairs applied."""
    return LogFollower(store, views, batch_size=batch_size).catch_up()


def published_top(store: Store) -> int:
    """The position of the last published event in the store."""
    envelopes, _ = store.read_envelopes(0, 1_000_000)
    return envelopes[-1].position if envelopes else 0


def timeline(views: Views, customer_id: Any, limit: int = 1000) -> list[TimelineItem]:
    with views.engine.connect() as conn:
        items, cursor = views.timeline.page(conn, customer_id, limit, None)
    assert cursor is None
    return items


def wait_projected(runtime: EmbeddedRuntime) -> None:
    assert runtime.wait_visible(published_top(runtime.store), timeout=10)


def record_mixed_history(store: Store, count: int = 120) -> tuple[Any, dict[str, Any], list[str]]:
    """``count`` messages of one customer over three channels, and another customer's in
    between; returns the customer id, its conversation per channel and the message order."""
    order: list[str] = []
    conversations: dict[str, Any] = {}
    customer_id = None
    for start in range(0, count, 20):
        batch = []
        for n in range(start, min(start + 20, count)):
            channel = CHANNELS[n % 3]
            batch.append(
                inbound(
                    f"{channel}-{n}",
                    channel=channel,
                    occurred_at=T0 + timedelta(minutes=7 * n),
                    direction="outbound" if n % 5 == 4 else "inbound",
                )
            )
            order.append(f"{channel}-{n}")
            batch.append(
                inbound(
                    f"other-{n}",
                    address="phone:+4915199999999",
                    occurred_at=T0 + timedelta(minutes=7 * n, seconds=30),
                )
            )
        for item, result in zip(batch, store.app.record_interactions(batch), strict=True):
            if item.address == PHONE:
                customer_id = result.customer_id
                conversations[item.channel] = result.conversation_id
    return customer_id, conversations, order


def record_directory(store: Store) -> dict[str, Any]:
    """Alice (email), Bob (phone), a chat visitor who gives a name later, and seven Telegram
    test people; returns their customer ids ("people": the seven)."""
    record = store.app.record_interactions
    ids: dict[str, Any] = {}
    [r] = record(
        [
            inbound(
                "<a1@example.com>",
                channel="email",
                address="email:alice@example.com",
                contact_name="Alice Example",
            )
        ]
    )
    ids["alice"] = r.customer_id
    [r] = record([inbound("SM-bob", address="phone:+14155550101", contact_name="Bob Builder")])
    ids["bob"] = r.customer_id
    [r] = record([inbound("chat-1", channel="chat", address="chat:visitor-77")])
    ids["visitor"] = r.customer_id
    [r] = record(
        [
            inbound(
                "chat-2",
                channel="chat",
                address="chat:visitor-77",
                contact_name="Dave Later",
                occurred_at=T0 + timedelta(hours=5),
            )
        ]
    )
    results = record(
        [
            inbound(
                f"tg-{n}",
                channel="telegram",
                address=f"telegram:{9000 + n}",
                contact_name=f"Test Person {n}",
            )
            for n in range(7)
        ]
    )
    ids["people"] = [r.customer_id for r in results]
    return ids


def search_ids(views: Views, q: str, limit: int = 100) -> list[Any]:
    """The ids of the first page the directory finds for ``q``."""
    with views.engine.connect() as conn:
        found, _ = views.directory.search(conn, q, limit, None)
    return [c.customer_id for c in found]
