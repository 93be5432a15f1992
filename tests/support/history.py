"""A customer's story with everything the timeline as of a moment must get right
(docs/history.md): messages on several channels (one recorded long after it happened), a name
learnt from a message, an outbound message whose delivery reports come later, a note, a
status change, an assignment, a merge that is undone and one that stays; and the views the
history tests fold it into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy import Engine

from hub.projections import Views
from hub.projections.conversations import ConversationsProjection
from hub.projections.directory import DirectoryProjection
from hub.projections.history import HistoryProjection
from hub.projections.timeline import TimelineProjection
from hub.store import Store
from tests.support.store import T0, inbound

PHONE = "phone:+4915112340001"
EMAIL = "email:jonas@example.org"
OTHER_PHONE = "phone:+4915112340002"


@dataclass(frozen=True)
class Story:
    customer: UUID  # the phone customer: the group's root in the end
    email_customer: UUID  # merged in, then out again
    other_customer: UUID  # merged in for good
    sms_conversation: UUID
    outbound_message: UUID


def record_story(store: Store) -> Story:
    app = store.app
    record = app.record_interactions
    batch = [
        inbound(
            f"story-{n}",
            channel=("sms", "whatsapp")[n % 2],
            address=PHONE,
            occurred_at=T0 + timedelta(minutes=10 * n),
            # the hub learns a name from a message (an event, but no item on the timeline)
            contact_name="Jonas Petraitis" if n == 4 else None,
        )
        for n in range(6)
    ]
    results = record(batch[:3])
    record(batch[3:])
    customer, sms = results[0].customer_id, results[0].conversation_id
    [out] = record(
        [
            inbound(
                "story-out",
                address=PHONE,
                direction="outbound",
                occurred_at=T0 + timedelta(hours=2),
            )
        ]
    )
    app.update_delivery(out.message_id, "delivered", T0 + timedelta(hours=2, minutes=1))
    [mail] = record([inbound("<story-1@example.org>", channel="email", address=EMAIL)])
    app.add_note(sms, "promised a call back", "ann")
    app.identity.merge(customer, mail.customer_id, actor="ann", reason="same person")
    record(
        [
            inbound(
                "<story-2@example.org>",
                channel="email",
                address=EMAIL,
                occurred_at=T0 + timedelta(hours=3),
            )
        ]
    )
    app.change_status(sms, "resolved", "ann")
    app.update_delivery(out.message_id, "read", T0 + timedelta(hours=4))
    [other] = record([inbound("story-other", address=OTHER_PHONE)])
    app.identity.merge(customer, other.customer_id, actor="ann", reason="same person")
    app.identity.unmerge(mail.customer_id, actor="ann", reason="two people")
    app.assign(sms, "bob", "ann")
    # An old message imported late: it happened first, but the hub learnt of it last.
    record([inbound("story-late", address=PHONE, occurred_at=T0 - timedelta(days=30))])
    return Story(
        customer=customer,
        email_customer=mail.customer_id,
        other_customer=other.customer_id,
        sms_conversation=sms,
        outbound_message=out.message_id,
    )


def history_views(engine: Engine) -> Views:
    """The views the history needs (the timeline, the directory, the conversations and the
    history index) on ``engine``, created: the other projections play no part in it."""
    views = Views(
        engine,
        [
            TimelineProjection(),
            DirectoryProjection(),
            ConversationsProjection(),
            HistoryProjection(),
        ],
    )
    views.create()
    return views
