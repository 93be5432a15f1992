"""The outbound dispatcher: follows the store's log for agents' replies and sends them through
the connectors, in both runtimes (embedded: a task of ``hub serve``; distributed: ``hub run
dispatch``, one active at a time by a lease).

Every decision is the domain's (``HubApplication.dispatch``) and is recorded before anything is
sent; this module only schedules: a heap of messages by due time, per-channel rate limits,
back-off for retryable failures. Its position in the log moves only past messages that are
settled, so a restart finds every reply still waiting (held ones included) again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from hub.config import Settings
from hub.connectors.base import (
    Connector,
    ConnectorError,
    OutboundMessage,
    SendResult,
    WhatsAppTemplate,
)
from hub.connectors.registry import by_channel, configured
from hub.domain.consent import ConsentRules
from hub.domain.links import LinkSigner
from hub.domain.model import Message
from hub.domain.policy import Done, Hold, QuietHours, Send
from hub.metrics import Metrics
from hub.runtime.due_queue import Clock, DueQueue
from hub.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Channels whose messages carry a one-click unsubscribe link (RFC 8058 ``List-Unsubscribe``).
UNSUBSCRIBE_CHANNELS = frozenset({"email"})
#: The kind of the signed unsubscribe tokens (``hub.domain.links``; opened by
#: ``hub.api.routes.unsubscribe``).
UNSUBSCRIBE_LINK = "unsubscribe"

#: Stored with every reply (and only with replies): the dispatcher reads nothing else.
_REQUESTED_TOPIC = f"{Message.__module__}:{Message.__name__}.DispatchRequested"


@dataclass
class ConfiguredChannels:
    """The channels this hub has configured: which are on, the connector serving each, their
    windows. What the domain asks of them is its ``ChannelPolicy`` protocol, which this
    implements."""

    #: The connectors that are on, with their settings, in registry order.
    configured: Sequence[tuple[type[Connector], Any]]
    public_url: str | None = None
    #: Signs unsubscribe links (``Store.links_key``); None: messages carry none.
    links: LinkSigner | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfiguredChannels:
        return cls(configured(settings), settings.public_url)

    @functools.cached_property
    def connectors(self) -> Mapping[str, type[Connector]]:
        """Channel -> the connector class that serves it (the first one that does)."""
        return by_channel((cls, cls) for cls, _ in self.configured)

    def unavailable(self, channel: str) -> str | None:
        if channel in self.connectors:
            return None
        return f"no connector sends on {channel!r} here (its settings are not configured)"

    def service_window(self, channel: str) -> timedelta | None:
        found = self.connectors.get(channel)
        return found.service_windows.get(channel) if found is not None else None

    def status_callback_url(self, channel: str, message_id: UUID) -> str | None:
        found = self.connectors.get(channel)
        if found is None or found.status_hook is None or not self.public_url:
            return None
        base = self.public_url.rstrip("/")
        return f"{base}/webhooks/{found.name}/{found.status_hook}?message_id={message_id}"

    def idempotent(self, channel: str) -> bool:
        found = self.connectors.get(channel)
        return found is not None and found.idempotent_sends

    def unsubscribe_url(
        self, channel: str, customer_id: UUID, purpose: str, message_id: UUID
    ) -> str | None:
        """``{public_url}/unsubscribe/{token}`` for an email, the token signed for this
        recipient, channel and purpose (and the message, the evidence of an unsubscribe).
        None without a public URL (the link could not be opened) or a signer. The token does
        not expire: mail is read, and its link followed, long after it was sent."""
        if channel not in UNSUBSCRIBE_CHANNELS or not self.public_url or self.links is None:
            return None
        token = self.links.sign(
            UNSUBSCRIBE_LINK,
            {"c": str(customer_id), "ch": channel, "p": purpose, "m": str(message_id)},
        )
        return f"{self.public_url.rstrip('/')}/unsubscribe/{token}"


@dataclass
class _Bucket:
    """A token bucket: ``rate`` sends a second, bursts of up to ``rate`` (at least 1)."""

    rate: float
    clock: Clock
    tokens: float = 1.0
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.at = self.clock.monotonic()

    def delay(self) -> float:
        """Seconds to wait before the next send (0: now), taking the token."""
        now = self.clock.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Dispatcher(DueQueue):
    """Sends queued replies; ``run`` until ``stopping`` is set. Time comes from ``clock``
    (tests pass one they move)."""

    name = "dispatch"
    label = "dispatcher"
    topics = (_REQUESTED_TOPIC,)

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        policy: ConfiguredChannels,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(store, clock)
        self._app = store.app
        self._connectors = connectors  # by channel
        # The same channels, signing unsubscribe links with this store's key.
        self._policy = dataclasses.replace(policy, links=LinkSigner(store.links_key))
        self._rules = ConsentRules.configured(settings.consent)
        d = settings.dispatch
        self._quiet = QuietHours(
            d.quiet_hours_start, d.quiet_hours_end, d.default_time_zone, d.awake_window
        )
        self._max_attempts = d.max_attempts
        self._retry_base = d.retry_base_seconds
        self._in_doubt = timedelta(seconds=d.in_doubt_seconds)
        self._metrics = metrics
        self._buckets = {
            channel: _Bucket(c.send_rate, self._clock) for channel, c in connectors.items()
        }
        self._max_in_flight = d.max_in_flight

    async def handle_many(self, items: list[tuple[UUID, int]], stopping: asyncio.Event) -> None:
        """Due messages, ``max_in_flight`` at a time: no more are started than can be under
        way together, so a crash leaves at most that many sends in doubt (one, as a lone
        send would, with ``HUB_DISPATCH__MAX_IN_FLIGHT=1``)."""
        for start in range(0, len(items), self._max_in_flight):
            if stopping.is_set():
                return  # the rest are read again from the log at the next start
            await self._round(items[start : start + self._max_in_flight])

    async def _round(self, items: list[tuple[UUID, int]]) -> None:
        """Decided in one transaction, sent together (one recipient's in order), and what
        the providers accepted recorded while the other sends go on. An error deciding or
        recording a message is raised once the rest of the round is done (the loop then
        reads the log again)."""
        decisions = await asyncio.to_thread(
            self._app.dispatch.prepare_dispatches,
            [mid for mid, _ in items],
            self._policy,
            self._quiet,
            self._clock.now(),
            self._in_doubt,
            self._rules,
        )
        errors: list[Exception] = []
        sends: list[tuple[Send, int]] = []
        for (mid, position), decision in zip(items, decisions, strict=True):
            if isinstance(decision, Exception):
                errors.append(decision)
            elif isinstance(decision, Done):
                self.settle(mid)
                self._metrics.dispatched.labels("-", decision.outcome).inc()
            elif isinstance(decision, Hold):
                self.schedule(mid, position, decision.until.timestamp())
            else:
                sends.append((decision, position))
        errors += await self._send_all(sends)
        if errors:
            raise errors[0]

    async def _send_all(self, sends: list[tuple[Send, int]]) -> list[Exception]:
        """Send, a lane per recipient; the errors met. What the providers accept is recorded
        while the other sends go on, in as few transactions as keep up."""
        lanes: dict[tuple[str, str], list[tuple[Send, int]]] = {}
        for send, position in sends:
            lanes.setdefault((send.channel, send.address), []).append((send, position))
        accepted: list[tuple[Send, SendResult]] = []
        errors: list[Exception] = []
        recording: asyncio.Task[None] | None = None

        async def record() -> None:
            while accepted:
                batch = accepted[:]
                accepted.clear()
                recorded = await asyncio.to_thread(
                    self._app.dispatch.record_dispatches,
                    [(s.message_id, r.provider_message_id, r.status) for s, r in batch],
                )
                for (send, _), error in zip(batch, recorded, strict=True):
                    if error is not None:
                        errors.append(error)  # left in flight: decided again after a re-read
                        continue
                    self.settle(send.message_id)
                    self._metrics.dispatched.labels(send.channel, "sent").inc()

        async def lane(queue: list[tuple[Send, int]]) -> None:
            nonlocal recording
            for send, position in queue:
                result = await self._send(send, position)
                if result is not None:
                    accepted.append((send, result))
                    if recording is None or recording.done():
                        recording = asyncio.create_task(record())

        outcomes = await asyncio.gather(*(lane(q) for q in lanes.values()), return_exceptions=True)
        errors += [e for e in outcomes if isinstance(e, Exception)]
        if recording is not None:  # the last one: no send is left to start another
            try:
                await recording
            except Exception as exc:  # the store failed: the rest stay in flight
                errors.append(exc)
        return errors

    async def _send(self, send: Send, position: int) -> SendResult | None:
        """One attempt; the provider's answer, or None when it failed (recorded here)."""
        # The policy refused channels without a connector: the same configuration built both.
        connector = self._connectors[send.channel]
        bucket = self._buckets[send.channel]
        await self._clock.sleep(bucket.delay())
        message = OutboundMessage(
            message_id=send.message_id,
            channel=send.channel,
            address=send.address,
            text=send.text,
            subject=send.subject,
            in_reply_to=send.in_reply_to,
            references=send.references,
            template=WhatsAppTemplate(**send.template) if send.template else None,
            status_callback_url=send.status_callback_url,
            unsubscribe_url=send.unsubscribe_url,
            html=send.html,
        )
        try:
            return await connector.send(message)
        except ConnectorError as exc:
            outcome = await self._failed(send, exc, position)
            self._metrics.dispatched.labels(send.channel, outcome).inc()
            return None

    async def _failed(self, send: Send, exc: ConnectorError, position: int) -> str:
        app = self._app.dispatch
        code = exc.provider_code
        if exc.retryable and send.attempt < self._max_attempts:
            delay = self._retry_base * 2 ** (send.attempt - 1)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                delay = max(delay, retry_after)
            until = self._clock.now() + timedelta(seconds=delay)
            await asyncio.to_thread(
                app.retry_dispatch_later, send.message_id, until, code, exc.reason
            )
            self.schedule(send.message_id, position, until.timestamp())
            log.info(
                "send of %s failed (%s); retry %d in %.1fs",
                send.message_id,
                exc.reason,
                send.attempt,
                delay,
            )
            return "retrying"
        reason = (
            exc.reason if not exc.retryable else f"gave up after {send.attempt} tries: {exc.reason}"
        )
        await asyncio.to_thread(app.fail_dispatch, send.message_id, code, reason)
        self.settle(send.message_id)
        return "failed"
