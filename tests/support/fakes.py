"""Fakes for the ports of the runtime core, for tests of the dispatcher and the gateway without
a provider: a connector that records what it is asked to send and fails as it is told to, a
clock that moves only when the test moves it, and the submit function the gateway hands
channel traffic to; ``eventually`` waits for what they see."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from hub.connectors.base import (
    Connector,
    ConnectorContext,
    DeliveryReport,
    InboundSink,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    RetryableError,
    SendResult,
    SetAside,
    WebhookOutcome,
    WebhookRequest,
)
from hub.domain.inbound import Recorded
from hub.events import InboundInteraction
from hub.runtime.dispatcher import Clock
from hub.runtime.group_commit import Unrecorded

T = TypeVar("T")


async def eventually(check: Callable[[], T], timeout: float = 2.0) -> T:
    """``check()`` once it is truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {found!r} after {timeout} s")
        await asyncio.sleep(0.005)
    return found


# -- time ------------------------------------------------------------------------------------


class FakeClock(Clock):
    """Time that stands still until the test moves it (:meth:`advance`), or the code under
    test sleeps on it (a rate limit's pause passes at once, and is kept in ``slept``). It
    starts at the real time, so that it agrees with the times the store records itself."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = (start or datetime.now(UTC)).timestamp()
        self._monotonic = 1000.0
        self.slept: list[float] = []
        self._moved: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall, UTC)

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward, and tell whoever asked (:meth:`on_advance`)."""
        self._wall += seconds
        self._monotonic += seconds
        for moved in self._moved:
            moved()

    def on_advance(self, moved: Callable[[], None]) -> None:
        """Call ``moved()`` whenever time moves (a dispatcher's ``wake``)."""
        self._moved.append(moved)


# -- the connector port ------------------------------------------------------------------------


class FakeSettings(BaseModel):
    """The fake connector's settings: the key its webhooks are signed with, and a send rate
    (None: the class's)."""

    secret: str = "fake-secret"
    rate_per_second: float | None = None


class Stall:
    """A send that reaches the provider and then waits for its answer until :meth:`release`
    (or for ever: a hub that crashes meanwhile never learns the outcome)."""

    def __init__(self) -> None:
        self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()


class TimedOut(RetryableError):
    """The provider got the message, but its answer never came (as a real connector reports
    a read timeout: retryable)."""


class FakeConnector(Connector):
    """A provider on the ``sms`` channel kept in memory.

    ``attempts`` is every message the hub asked it to send; ``sent`` what reached the provider
    (a message that failed is not in it, one whose answer timed out or is still stalled is).
    Told to, the next sends fail (:meth:`fail_next`), time out after reaching the provider
    (:meth:`time_out_next`) or stall until released (:meth:`stall_next`). Webhooks
    (``/webhooks/fake/inbound``) carry JSON, signed with HMAC-SHA256 of the body; its listener
    hands on what a test puts in ``inbox``."""

    name: ClassVar[str] = "fake"
    channels: ClassVar[tuple[Any, ...]] = ("sms",)
    settings_model: ClassVar[type[BaseModel] | None] = FakeSettings
    webhooks: ClassVar[tuple[str, ...]] = ("inbound",)
    status_hook: ClassVar[str | None] = "status"

    def __init__(
        self,
        settings: FakeSettings | None = None,
        context: ConnectorContext | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings or FakeSettings(), context)
        self.clock = clock or Clock()
        self.attempts: list[OutboundMessage] = []
        self.attempted_at: list[float] = []  # the clock's monotonic time of each attempt
        self.sent: list[OutboundMessage] = []
        self.inbox: asyncio.Queue[WebhookOutcome] = asyncio.Queue()
        self.handed_on: list[WebhookOutcome] = []
        self.started = self.stopped = False
        self._script: deque[Exception | Stall] = deque()
        self._ids = itertools.count(1)

    # -- telling it what to do -----------------------------------------------------------------

    def fail_next(self, error: Exception, times: int = 1) -> None:
        """The next ``times`` sends raise ``error`` (a RetryableError, a PermanentError...)."""
        self._script.extend([error] * times)

    def time_out_next(self, times: int = 1) -> None:
        """The next ``times`` sends reach the provider, and then time out."""
        self._script.extend([TimedOut("read timeout: the provider may have it")] * times)

    def stall_next(self) -> Stall:
        """The next send reaches the provider and waits for its answer until released."""
        stall = Stall()
        self._script.append(stall)
        return stall

    # -- the port ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, message: OutboundMessage) -> SendResult:
        self.attempts.append(message)
        self.attempted_at.append(self.clock.monotonic())
        planned = self._script.popleft() if self._script else None
        if isinstance(planned, Exception) and not isinstance(planned, TimedOut):
            raise planned
        if not (self.idempotent_sends and message.message_id in {m.message_id for m in self.sent}):
            self.sent.append(message)  # a provider with idempotency keys keeps one
        if isinstance(planned, TimedOut):
            raise planned
        if isinstance(planned, Stall):
            await planned.released.wait()
        return SendResult(provider_message_id=self.provider_id(message))

    @staticmethod
    def provider_id(message: OutboundMessage) -> str:
        """The provider's id of a message it accepted."""
        return f"FK{message.message_id.hex}"

    def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.hook not in self.webhooks:
            raise MalformedPayload(f"fake has no webhook {request.hook!r}")
        expected = self.sign(request.body, self.settings.secret)
        if not hmac.compare_digest(request.headers.get("x-fake-signature", ""), expected):
            raise InvalidSignature("x-fake-signature does not match")
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise MalformedPayload("the body is not JSON") from None
        return WebhookOutcome(
            interactions=tuple(
                InboundInteraction.model_validate(i) for i in payload.get("interactions", ())
            ),
            reports=tuple(DeliveryReport.model_validate(r) for r in payload.get("reports", ())),
            set_aside=tuple(
                SetAside(s["reason"], s.get("payload")) for s in payload.get("set_aside", ())
            ),
        )

    async def run(self, sink: InboundSink) -> None:
        while True:
            outcome = await self.inbox.get()
            await sink(outcome)  # durable: only now is the peer told
            self.handed_on.append(outcome)

    # -- for tests -----------------------------------------------------------------------------

    @staticmethod
    def sign(body: bytes, secret: str = "fake-secret") -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    @classmethod
    def request(
        cls,
        *,
        interactions: Sequence[InboundInteraction] = (),
        reports: Sequence[DeliveryReport] = (),
        set_aside: Sequence[tuple[str, Any]] = (),
        secret: str = "fake-secret",
        hook: str = "inbound",
    ) -> WebhookRequest:
        """A webhook request as the provider would send it, signed with ``secret``."""
        body = json.dumps(
            {
                "interactions": [i.model_dump(mode="json") for i in interactions],
                "reports": [r.model_dump(mode="json") for r in reports],
                "set_aside": [{"reason": r, "payload": p} for r, p in set_aside],
            }
        ).encode()
        return WebhookRequest(
            method="POST",
            hook=hook,
            url=f"https://hub.example.test/webhooks/fake/{hook}",
            headers={
                "content-type": "application/json",
                "x-fake-signature": cls.sign(body, secret),
            },
            query={},
            body=body,
        )


class IdempotentFakeConnector(FakeConnector):
    """The fake on a provider that dedupes sends by their idempotency key (the message id)."""

    idempotent_sends: ClassVar[bool] = True


# -- the gateway's submit ----------------------------------------------------------------------

RecordNow = Callable[[Sequence[InboundInteraction]], list[Recorded]]


class FakeSubmit:
    """``Runtime.submit_traffic`` as the gateway sees it. Keeps every batch it is handed;
    records them with ``record`` (None: hands them on and answers None, as the distributed
    ingest does once the broker has them), except the items whose provider message id is in
    ``refuse``, which come back :class:`Unrecorded` with that error."""

    def __init__(self, record: RecordNow | None = None) -> None:
        self._record = record
        self.batches: list[list[InboundInteraction]] = []
        self.refuse: dict[str, Exception] = {}

    async def __call__(
        self, items: Sequence[InboundInteraction]
    ) -> Sequence[Recorded | Unrecorded] | None:
        self.batches.append(list(items))
        if self._record is None:
            return None
        good = [i for i in items if i.provider_message_id not in self.refuse]
        recorded = iter(await asyncio.to_thread(self._record, good) if good else [])
        return [
            Unrecorded(self.refuse[i.provider_message_id])
            if i.provider_message_id in self.refuse
            else next(recorded)
            for i in items
        ]
