"""The views' side of retention by age (``Views.expire_bodies_before``) on both backends: bodies
of messages before the cutoff are blanked to the second, the facts stay, a second run finds
nothing to do, and a later delivery update does not bring a body back."""

from __future__ import annotations

from datetime import timedelta

from hub.events import Attachment
from hub.projections import Views
from hub.store import Store
from tests.projections.helpers import PHONE, project, timeline
from tests.support.store import T0, inbound

EMAIL = "email:ieva@example.com"


def test_bodies_before_the_cutoff_are_blanked_and_the_facts_stay(
    store: Store, views: Views
) -> None:
    record = store.app.record_interactions
    [early_mail] = record(
        [
            inbound(
                "<early@example.com>",
                channel="email",
                address=EMAIL,
                contact_name="Ieva",
                subject="early subject",
                text="early body",
                attachments=(Attachment(name="early.pdf", content_type="application/pdf", size=3),),
                metadata={"language": "lt"},
                occurred_at=T0,
            )
        ]
    )
    [sent] = record(
        [
            inbound(
                "SM-out",
                direction="outbound",
                text="early reply",
                occurred_at=T0.replace(minute=30),
            )
        ]
    )
    [late_mail] = record(
        [
            inbound(
                "<late@example.com>",
                channel="email",
                address=EMAIL,
                subject="late subject",
                text="late body, same day",
                occurred_at=T0 + timedelta(hours=2),
            )
        ]
    )
    project(store, views)

    changed = views.expire_bodies_before(T0 + timedelta(hours=1))

    # The SMS thread has no subject; search blanks both early messages and the mail thread.
    assert changed == {"timeline": 2, "conversations": 1, "search": 3}
    items = {i.item_id: i for i in timeline(views, early_mail.customer_id)}
    early = items[early_mail.message_id]
    assert (early.text, early.subject) == (None, None)
    assert early.data["attachments"] == []
    assert early.data["metadata"] == {}
    assert early.data["body_expired"] is True
    assert (early.channel, early.direction, early.occurred_at) == ("email", "inbound", T0)
    assert early.data["address"] == EMAIL  # who it was with is not the body
    assert early.data["contact_name"] == "Ieva"
    late = items[late_mail.message_id]
    assert (late.text, late.subject) == ("late body, same day", "late subject")
    assert "body_expired" not in late.data
    with views.engine.connect() as conn:
        assert views.conversations.get(conn, early_mail.conversation_id).subject is None  # type: ignore[union-attr]
        assert views.conversations.get(conn, late_mail.conversation_id).subject == "late subject"  # type: ignore[union-attr]
        found = views.directory.search(conn, "ieva", 10, None)[0]
    assert [c.customer_id for c in found] == [early_mail.customer_id]  # search is untouched

    assert views.expire_bodies_before(T0 + timedelta(hours=1)) == {}

    store.app.update_delivery(sent.message_id, "delivered", T0 + timedelta(hours=3))
    project(store, views)
    reply = {i.item_id: i for i in timeline(views, sent.customer_id)}[sent.message_id]
    assert reply.delivery_status == "delivered"
    assert reply.text is None
    assert reply.data["body_expired"] is True
    assert PHONE in str(reply.data)
