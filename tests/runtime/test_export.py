"""The export document (hub.runtime.export) in bounded memory: written page by page, so ten times
the messages make a document ten times larger but not a peak ten times higher; and paging
(conversations, their events, scheduled messages) changes nothing of what is written."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.domain.automation import Plan
from hub.events import InboundInteraction
from hub.events.export import ExportDocument
from hub.runtime import Runtime
from hub.runtime import export as export_module
from hub.runtime.export import prepare_export
from hub.runtime.scheduling import schedule_message
from tests.support.api import Api, unique

#: About what a customer's message holds, so the document's size is mostly messages.
TEXT = "Hello, I have a question about my last order and the invoice that came with it. " * 2


def _record(runtime: Runtime, phone: str, count: int, channel: str = "sms") -> UUID:
    """``count`` messages from ``phone`` in one conversation (a minute apart, in the last
    days), recorded in batches like concurrent requests; the customer's id."""
    start = datetime.now(UTC) - timedelta(minutes=count + 5)
    customer_id = None
    for first in range(0, count, 500):
        batch = [
            InboundInteraction(
                channel=channel,
                direction="inbound",
                address=phone,
                provider_message_id=unique("mem"),
                occurred_at=start + timedelta(minutes=i),
                text=f"{i}: {TEXT}",
                contact_name="Grace Hopper",
            )
            for i in range(first, min(first + 500, count))
        ]
        customer_id = runtime.record_now(batch)[0].customer_id
    assert customer_id is not None
    return customer_id


def _peak_and_size(runtime: Runtime, customer_id: UUID) -> tuple[int, int]:
    """The peak of memory allocated while the export is written (its chunks consumed and
    dropped, as the HTTP response does), and the document's size."""
    export = prepare_export(runtime, customer_id)
    size = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for chunk in export.chunks():
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, size


def test_ten_times_the_messages_do_not_take_ten_times_the_memory(sqlite_api: Api) -> None:
    runtime = sqlite_api.runtime
    assert runtime is not None
    warm = _record(runtime, "phone:+15550188000", 5)
    small = _record(runtime, "phone:+15550188001", 300)
    large = _record(runtime, "phone:+15550188002", 3000)
    sqlite_api.wait_caught_up(30)
    _peak_and_size(runtime, warm)  # first use: statement caches, keys, imports

    small_peak, small_size = _peak_and_size(runtime, small)
    large_peak, large_size = _peak_and_size(runtime, large)

    assert large_size > 9 * small_size  # the document does grow with the messages...
    # ...the memory to write it does not: one page of events at a time (figures in the report).
    print(
        f"\nexport peak: 300 messages {small_peak} B ({small_size} B written), "
        f"3000 messages {large_peak} B ({large_size} B written), "
        f"ratio {large_peak / small_peak:.2f}"
    )
    assert large_peak < 2 * small_peak, (small_peak, large_peak)


def _document(runtime: Runtime, customer_id: UUID) -> dict[str, Any]:
    export = prepare_export(runtime, customer_id)
    document: dict[str, Any] = json.loads(b"".join(export.chunks()))
    ExportDocument.model_validate(document)
    return document


def test_small_pages_write_the_same_document(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = sqlite_api.runtime
    assert runtime is not None
    phone = "phone:+15550188003"
    customer = _record(runtime, phone, 7)
    # Conversations on other channels of the same phone, and a note and status change
    # between the messages of the first.
    _record(runtime, phone, 2, channel="whatsapp")
    _record(runtime, phone, 1, channel="voice")
    sqlite_api.wait_caught_up()
    with runtime.read() as conn:
        (conversation,) = [
            c.conversation_id
            for c in runtime.views.conversations.for_customer(conn, customer)
            if c.channel == "sms"
        ]
    runtime.commands.add_note(conversation, "call back on Monday", "alice")
    runtime.commands.change_status(conversation, "pending", "alice")
    _record(runtime, phone, 3)
    due = datetime.now(UTC) + timedelta(days=1)
    for n in range(3):
        plan = Plan(channels=("sms",), text=f"reminder {n}")
        schedule_message(runtime, customer, plan, send_at=due + timedelta(hours=n), actor="alice")
    sqlite_api.wait_caught_up()

    whole = _document(runtime, customer)
    monkeypatch.setattr(export_module, "EVENT_PAGE", 2)
    monkeypatch.setattr(export_module, "CONVERSATION_PAGE", 1)
    monkeypatch.setattr(export_module, "SCHEDULED_PAGE", 1)
    paged = _document(runtime, customer)

    assert len(whole["conversations"]) == 3
    texts = [(m["text"], m["scheduled_by"]) for m in whole["scheduled_messages"]]
    assert texts == [("reminder 0", "alice"), ("reminder 1", "alice"), ("reminder 2", "alice")]
    counts = sorted(len(c["items"]) for c in whole["conversations"])
    assert counts == [1, 2, 7 + 2 + 3 + 1]  # the later SMS reopened the pending conversation
    assert sum(c["message_count"] for c in whole["conversations"]) == 13
    del whole["generated_at"], paged["generated_at"]
    assert paged == whole
