"""The demo dataset ``make run`` loads into an empty hub: invented people, clearly labelled.

One person writes by SMS and then by WhatsApp from the same phone, so their timeline shows
both, and once by email, which an agent merged into the same customer; others use email (a
threaded exchange), web chat (the visitor gave an email) and the generic API channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.events import Attachment, InboundInteraction
from hub.runtime import Runtime

DEMO_NOTE = "Demo data: invented people and messages, not real customers."


MARIA = "phone:+15550101001"
JAMES = "email:james.okafor@example.com"
CHEN = "chat:visitor-7f3a9c"
PRIYA = "email:priya.shah@example.org"
MARIA_EMAIL = "email:maria.garcia@example.net"
CHEN_EMAIL = "email:chen.wei@example.com"

# (channel, direction, address, provider message id, days and hours ago, text, other fields)
_SCRIPT: list[tuple[str, str, str, str, tuple[float, float], str, dict[str, Any]]] = [
    # Maria: SMS, then WhatsApp from the same phone -> one customer, one timeline.
    (
        "sms",
        "inbound",
        MARIA,
        "demo-sms-1",
        (3, 5),
        "Hi, my order #1042 still hasn't arrived. Can you check?",
        {"contact_name": "Maria Garcia (demo)"},
    ),
    (
        "sms",
        "outbound",
        MARIA,
        "demo-sms-2",
        (3, 4),
        "Sorry about that, Maria! It left our warehouse on Monday; tracking: DEMO123.",
        {},
    ),
    (
        "whatsapp",
        "inbound",
        MARIA,
        "demo-wa-1",
        (1, 2),
        "It came, but the box was damaged. Photo attached.",
        {"attachments": (Attachment(name="parcel.jpg", content_type="image/jpeg", size=184_223),)},
    ),
    (
        "whatsapp",
        "outbound",
        MARIA,
        "demo-wa-2",
        (1, 1),
        "Thanks for the photo. A replacement is on its way at no cost.",
        {},
    ),
    # James: an email exchange threaded by In-Reply-To / References.
    (
        "email",
        "inbound",
        JAMES,
        "<demo-1@mail.example.com>",
        (6, 0),
        "Hello, the invoice lists two licences but we bought one.",
        {"subject": "Question about invoice INV-2291", "contact_name": "James Okafor (demo)"},
    ),
    (
        "email",
        "outbound",
        JAMES,
        "<demo-2@hub.example.com>",
        (5, 20),
        "Hi James, you're right - a corrected invoice is attached.",
        {
            "subject": "Re: Question about invoice INV-2291",
            "thread_ref": "<demo-1@mail.example.com>",
            "attachments": (
                Attachment(
                    name="INV-2291-corrected.pdf", content_type="application/pdf", size=48_911
                ),
            ),
        },
    ),
    (
        "email",
        "inbound",
        JAMES,
        "<demo-3@mail.example.com>",
        (5, 18),
        "Perfect, thank you!\n\n> Hi James, you're right - a corrected invoice...",
        {
            "subject": "Re: Question about invoice INV-2291",
            "thread_ref": "<demo-2@hub.example.com>",
            "references": ("<demo-1@mail.example.com>", "<demo-2@hub.example.com>"),
        },
    ),
    # Chen: web chat.
    (
        "chat",
        "inbound",
        CHEN,
        "demo-chat-1",
        (0, 3),
        "Do you ship to Canada?",
        {"contact_name": "Chen Wei (demo)", "metadata": {"demo": True, "language": "en-CA"}},
    ),
    (
        "chat",
        "outbound",
        CHEN,
        "demo-chat-2",
        (0, 2.9),
        "We do! Delivery takes 5-7 business days.",
        {},
    ),
    # Maria again, by email: a second customer until an agent merges the two.
    (
        "email",
        "inbound",
        MARIA_EMAIL,
        "<demo-maria-1@mail.example.net>",
        (0, 20),
        "Following up by email on order #1042: the replacement is fine, thank you!",
        {
            "subject": "Order #1042",
            "contact_name": "Maria Garcia (demo)",
            "metadata": {"demo": True, "language": "es"},
        },
    ),
    # Priya: the generic API channel (a web form posted by another system).
    (
        "api",
        "inbound",
        PRIYA,
        "demo-form-881",
        (0, 1),
        "We'd like a demo for a team of 40 agents.",
        {
            "subject": "Demo request",
            "contact_name": "Priya Shah (demo)",
            "metadata": {"demo": True, "form": "contact-sales"},
        },
    ),
]


def _interactions(now: datetime) -> list[InboundInteraction]:
    return [
        InboundInteraction.model_validate(
            {
                "channel": channel,
                "direction": direction,
                "address": address,
                "provider_message_id": provider_id,
                "occurred_at": now - timedelta(days=ago[0], hours=ago[1]),
                "text": text,
                "metadata": {"demo": True},
                **extra,
            }
        )
        for channel, direction, address, provider_id, ago, text, extra in _SCRIPT
    ]


def load_demo(runtime: Runtime) -> list[str]:
    """Record the demo dataset if the hub is empty; returns lines to show the user."""
    if runtime.store_position() > 0:
        return ["demo: the hub already holds data; demo dataset not loaded again"]
    now = datetime.now(UTC).replace(microsecond=0)
    items = _interactions(now)
    results = runtime.record_now(items)
    by_id = {i.provider_message_id: r for i, r in zip(items, results, strict=True)}

    maria_sms = by_id["demo-sms-2"]
    runtime.commands.update_delivery(
        maria_sms.message_id, "delivered", now - timedelta(days=3, hours=4)
    )
    maria_wa = by_id["demo-wa-2"]
    runtime.commands.update_delivery(maria_wa.message_id, "delivered", now - timedelta(hours=25))
    runtime.commands.update_delivery(maria_wa.message_id, "read", now - timedelta(hours=24))
    runtime.commands.add_note(
        maria_wa.conversation_id,
        "Replacement order DEMO-R-77 created; courier pick-up Friday.",
        "agent.sam (demo)",
    )
    runtime.commands.assign(maria_wa.conversation_id, "agent.sam (demo)", "agent.sam (demo)")
    runtime.commands.change_status(maria_wa.conversation_id, "pending", "agent.sam (demo)")
    maria_email = by_id["<demo-maria-1@mail.example.net>"]
    runtime.commands.identity.merge(
        maria_wa.customer_id,
        maria_email.customer_id,
        actor="agent.sam (demo)",
        reason="same person: she quotes her order #1042",
    )
    runtime.commands.identity.link_address(CHEN, CHEN_EMAIL, verified=False, reason="chat_visitor")
    runtime.commands.set_tags(maria_wa.customer_id, ["vip", "replacement-sent"], "agent.sam (demo)")
    runtime.commands.set_tags(
        by_id["demo-form-881"].customer_id, ["sales-lead"], "agent.lee (demo)"
    )
    james = by_id["<demo-3@mail.example.com>"]
    runtime.commands.change_status(james.conversation_id, "resolved", "agent.lee (demo)")
    customers = len({r.customer_id for r in results}) - 1  # Maria's two are one
    return [
        f"demo: loaded {len(items)} interactions for {customers} customers. {DEMO_NOTE}",
        "demo: Maria's timeline (SMS, WhatsApp, email): "
        f"/v1/customers/{maria_wa.customer_id}/timeline",
        "demo: try the web chat at /chat/",
    ]
