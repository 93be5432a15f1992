"""The demo dataset ``make run`` loads into an empty hub: invented people, clearly labelled.

One person writes by SMS and then by WhatsApp from the same phone, so their timeline shows
both; others use email (a threaded exchange), web chat and the generic API channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.events import Attachment, InboundInteraction
from hub.runtime import Runtime

DEMO_NOTE = "Demo data: invented people and messages, not real customers."


def _interactions(now: datetime) -> list[InboundInteraction]:
    def at(days: float, hours: float = 0) -> datetime:
        return now - timedelta(days=days, hours=hours)

    demo = {"demo": True}
    maria = "phone:+15550101001"
    james = "email:james.okafor@example.com"
    return [
        # Maria: SMS, then WhatsApp from the same phone -> one customer, one timeline.
        InboundInteraction(
            channel="sms",
            direction="inbound",
            address=maria,
            provider_message_id="demo-sms-1",
            occurred_at=at(3, 5),
            text="Hi, my order #1042 still hasn't arrived. Can you check?",
            contact_name="Maria Garcia (demo)",
            metadata=demo,
        ),
        InboundInteraction(
            channel="sms",
            direction="outbound",
            address=maria,
            provider_message_id="demo-sms-2",
            occurred_at=at(3, 4),
            text="Sorry about that, Maria! It left our warehouse on Monday; tracking: DEMO123.",
            metadata=demo,
        ),
        InboundInteraction(
            channel="whatsapp",
            direction="inbound",
            address=maria,
            provider_message_id="demo-wa-1",
            occurred_at=at(1, 2),
            text="It came, but the box was damaged. Photo attached.",
            attachments=(Attachment(name="parcel.jpg", content_type="image/jpeg", size=184_223),),
            metadata=demo,
        ),
        InboundInteraction(
            channel="whatsapp",
            direction="outbound",
            address=maria,
            provider_message_id="demo-wa-2",
            occurred_at=at(1, 1),
            text="Thanks for the photo. A replacement is on its way at no cost.",
            metadata=demo,
        ),
        # James: an email exchange threaded by In-Reply-To / References.
        InboundInteraction(
            channel="email",
            direction="inbound",
            address=james,
            provider_message_id="<demo-1@mail.example.com>",
            occurred_at=at(6),
            subject="Question about invoice INV-2291",
            text="Hello, the invoice lists two licences but we bought one.",
            contact_name="James Okafor (demo)",
            metadata=demo,
        ),
        InboundInteraction(
            channel="email",
            direction="outbound",
            address=james,
            provider_message_id="<demo-2@hub.example.com>",
            occurred_at=at(5, 20),
            subject="Re: Question about invoice INV-2291",
            thread_ref="<demo-1@mail.example.com>",
            text="Hi James, you're right - a corrected invoice is attached.",
            attachments=(
                Attachment(
                    name="INV-2291-corrected.pdf", content_type="application/pdf", size=48_911
                ),
            ),
            metadata=demo,
        ),
        InboundInteraction(
            channel="email",
            direction="inbound",
            address=james,
            provider_message_id="<demo-3@mail.example.com>",
            occurred_at=at(5, 18),
            subject="Re: Question about invoice INV-2291",
            thread_ref="<demo-2@hub.example.com>",
            references=("<demo-1@mail.example.com>", "<demo-2@hub.example.com>"),
            text="Perfect, thank you!\n\n> Hi James, you're right - a corrected invoice...",
            metadata=demo,
        ),
        # Chen: web chat.
        InboundInteraction(
            channel="chat",
            direction="inbound",
            address="chat:visitor-7f3a9c",
            provider_message_id="demo-chat-1",
            occurred_at=at(0, 3),
            text="Do you ship to Canada?",
            contact_name="Chen Wei (demo)",
            metadata=demo,
        ),
        InboundInteraction(
            channel="chat",
            direction="outbound",
            address="chat:visitor-7f3a9c",
            provider_message_id="demo-chat-2",
            occurred_at=at(0, 2.9),
            text="We do! Delivery takes 5-7 business days.",
            metadata=demo,
        ),
        # Priya: the generic API channel (a web form posted by another system).
        InboundInteraction(
            channel="api",
            direction="inbound",
            address="email:priya.shah@example.org",
            provider_message_id="demo-form-881",
            occurred_at=at(0, 1),
            subject="Demo request",
            text="We'd like a demo for a team of 40 agents.",
            contact_name="Priya Shah (demo)",
            metadata={"demo": True, "form": "contact-sales"},
        ),
    ]


def load_demo(runtime: Runtime) -> list[str]:
    """Record the demo dataset if the hub is empty; returns lines to show the user."""
    if runtime.store_position() > 0:
        return ["demo: the hub already holds data; demo dataset not loaded again"]
    now = datetime.now(UTC).replace(microsecond=0)
    items = _interactions(now)
    results = runtime.record(items)
    by_id = {i.provider_message_id: r for i, r in zip(items, results, strict=True)}

    maria_sms = by_id["demo-sms-2"]
    runtime.update_delivery(maria_sms.message_id, "delivered", now - timedelta(days=3, hours=4))
    maria_wa = by_id["demo-wa-2"]
    runtime.update_delivery(maria_wa.message_id, "delivered", now - timedelta(hours=25))
    runtime.update_delivery(maria_wa.message_id, "read", now - timedelta(hours=24))
    runtime.add_note(
        maria_wa.conversation_id,
        "Replacement order DEMO-R-77 created; courier pick-up Friday.",
        "agent.sam (demo)",
    )
    runtime.assign(maria_wa.conversation_id, "agent.sam (demo)", "agent.sam (demo)")
    runtime.change_status(maria_wa.conversation_id, "pending", "agent.sam (demo)")
    james = by_id["<demo-3@mail.example.com>"]
    runtime.change_status(james.conversation_id, "resolved", "agent.lee (demo)")
    customers = len({r.customer_id for r in results})
    summary: list[str] = [
        f"demo: loaded {len(items)} interactions for {customers} customers. {DEMO_NOTE}",
    ]
    extra: dict[str, Any] = {"maria": maria_wa.customer_id}
    summary.append(
        f"demo: Maria's timeline (SMS + WhatsApp): /v1/customers/{extra['maria']}/timeline"
    )
    return summary
