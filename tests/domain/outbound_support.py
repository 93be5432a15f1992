"""What the outbound tests share (``test_outbound``: the agents' replies; ``test_dispatching``:
the dispatcher's decisions and records): an SMS customer in Berlin, channels that take
anything, quiet hours, a reply queued and decided."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from hub.domain.inbound import Recorded
from hub.domain.model import Message
from hub.domain.policy import QuietHours
from hub.store import Store
from tests.domain.fakes import FakeChannels
from tests.support.store import inbound

PHONE = "phone:+4915112345678"  # Europe/Berlin
OPEN = FakeChannels()
NEVER_QUIET = QuietHours(None, time(8), None, timedelta(minutes=30))
NIGHTS = QuietHours(time(21), time(8), None, timedelta(minutes=30))
IN_DOUBT = timedelta(minutes=10)


def record_sms(store: Store) -> Recorded:
    """An SMS from the customer at T0 (09:00 UTC, 11:00 in Berlin)."""
    [recorded] = store.app.record_interactions([inbound("SM1", address=PHONE)])
    return recorded


def message(store: Store, mid: UUID) -> Message:
    return store.app.read(lambda uow: uow.require(Message, mid, "message"))


def queued(store: Store, sms: Recorded, **options: Any) -> UUID:
    reply = store.app.outbound.reply(
        sms.conversation_id, "On its way", author="ann", policy=OPEN, **options
    )
    return reply.message_id


def decide(store: Store, mid: UUID, now: datetime, quiet: QuietHours = NEVER_QUIET) -> object:
    return store.app.dispatch.prepare_dispatch(mid, OPEN, quiet, now, IN_DOUBT)
