"""What the API, the console and the CLI do with outbound webhooks (``runtime.webhooks``):
endpoints (create, list, change, delete, rotate the secret, ping), their attempt logs, the
events given up (redeliver), replays from a position, and the intake's entry point for a
Kafka worker (:meth:`WebhookService.queue_envelopes`).

Every method but :meth:`WebhookService.ping` blocks on the database: async callers run them
in a thread. Errors are domain errors: :class:`NotFound`, :class:`InvalidCommand`.
"""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from hub.config import WebhookSettings
from hub.domain.errors import InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.events import EVENT_TYPES, Envelope
from hub.metrics import Metrics
from hub.runtime.webhooks.deliverer import WebhookDeliverer
from hub.runtime.webhooks.guard import check_url, refusal, resolve_blocking
from hub.runtime.webhooks.intake import WebhookIntake, refs
from hub.runtime.webhooks.sender import Answer, Sender, SendFailed
from hub.runtime.webhooks.signing import delivery_headers, new_secret
from hub.store import Store
from hub.store.webhook_queue import ParkedEvent, WebhookQueue
from hub.store.webhooks import Attempt, EndpointRow, WebhookStore, matches

__all__ = [
    "OUTCOMES",
    "Attempt",
    "CreatedEndpoint",
    "Endpoint",
    "ParkedEvent",
    "Replay",
    "WebhookService",
]

#: The outcomes an attempt is logged with.
OUTCOMES = ("delivered", "retrying", "failed", "disabled", "ping")
PING_TYPE = "webhook.ping"
_MAX_PATTERNS = 50
_MAX_URL = 2048
_MAX_DESCRIPTION = 500
_MAX_PAGE = 500
_REPLAY_BATCH = 500


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as an admin sees it (never its secret)."""

    id: UUID
    url: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: str | None  # "gone" | "failing" | "admin"
    disabled_at: datetime | None
    created_at: datetime
    start_position: int
    previous_secret_expires_at: datetime | None  # a rotation's grace, while it lasts
    pending: int  # queued, not yet delivered
    failed: int  # given up, redeliverable
    last_success_at: datetime | None
    failing_since: datetime | None


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # shown once


@dataclass(frozen=True)
class Replay:
    endpoint_id: UUID
    from_position: int
    to_position: int  # the log's head when asked
    queued: int  # events queued for it


class WebhookService:
    """Outbound webhook endpoints and their deliveries, over the state database."""

    def __init__(
        self,
        store: Store,
        endpoints: WebhookStore,
        queue: WebhookQueue,
        settings: WebhookSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._queue = queue
        self._settings = settings
        self._clock = clock
        self.intake = WebhookIntake(queue)
        self._deliverer: WebhookDeliverer | None = None

    # -- endpoints ---------------------------------------------------------------------

    def create(
        self, url: str, event_types: Sequence[str], description: str = ""
    ) -> CreatedEndpoint:
        """A new endpoint, enabled, sent the matching events recorded from now on; its
        secret is in the answer, and only there."""
        patterns = self._checked_patterns(event_types)
        description = self._checked_description(description)
        url = self._checked_url(url)  # last: it may resolve the name
        secret = new_secret()
        row = self._endpoints.add_endpoint(url, patterns, description, secret, head=self._head)
        return CreatedEndpoint(self._shown(row, {}), secret)

    def list(self) -> list[Endpoint]:
        counts = self._endpoints.queue_counts()
        return [self._shown(row, counts.get(row.id, {})) for row in self._endpoints.endpoints()]

    def get(self, endpoint_id: UUID) -> Endpoint:
        row = self._row(endpoint_id)
        return self._shown(row, self._endpoints.queue_counts().get(endpoint_id, {}))

    def update(
        self,
        endpoint_id: UUID,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Endpoint:
        """Change what is given. ``enabled=False`` disables it (reason ``admin``); enabling
        a disabled one sends what is pending, with a new retry period."""
        row = self._row(endpoint_id)
        changes: dict[str, object] = {}
        if event_types is not None:
            changes["event_types"] = list(self._checked_patterns(event_types))
        if description is not None:
            changes["description"] = self._checked_description(description)
        if url is not None:
            changes["url"] = self._checked_url(url)
        if changes and not self._endpoints.change_endpoint(endpoint_id, **changes):
            raise _not_found(endpoint_id)
        if enabled is not None and enabled != row.enabled:
            self._endpoints.set_enabled(endpoint_id, enabled, "admin")
            if enabled and self._deliverer is not None:
                self._deliverer.poke()
        return self.get(endpoint_id)

    def delete(self, endpoint_id: UUID) -> None:
        """Delete an endpoint, with its queue and its attempt log."""
        if not self._endpoints.delete_endpoint(endpoint_id):
            raise _not_found(endpoint_id)

    def rotate_secret(self, endpoint_id: UUID) -> tuple[str, datetime]:
        """A new secret (returned, shown once); the previous one stays valid, and is signed
        with too, until the returned time."""
        secret = new_secret()
        until = self._clock().astimezone(UTC) + self._settings.secret_grace
        if not self._endpoints.rotate_secret(endpoint_id, secret, until):
            raise _not_found(endpoint_id)
        return secret, until

    async def ping(self, endpoint_id: UUID) -> Attempt:
        """Send a ``webhook.ping`` now (signed like every delivery, to a disabled endpoint
        too) and log it; the answer is in the attempt returned."""
        row = await asyncio.to_thread(self._row, endpoint_id)
        at = self._clock().astimezone(UTC)
        event_id = uuid7(at)
        body = json.dumps(
            {
                "id": str(event_id),
                "type": PING_TYPE,
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
                "endpoint_id": str(row.id),
            },
            separators=(",", ":"),
        ).encode()
        headers = delivery_headers(str(event_id), at, body, row.secrets(at))
        answer: Answer | None = None
        error: str | None = None
        async with Sender(self._settings) as sender:
            try:
                answer = await sender.send(row.url, body, headers)
            except SendFailed as exc:
                error = f"{type(exc).__name__}: {exc.reason}"
        if answer is not None and not answer.ok:
            error = f"HTTP {answer.status_code}"
        attempt = {
            "endpoint_id": row.id,
            "event_id": event_id,
            "at": at,
            "status_code": answer.status_code if answer else None,
            "latency_ms": answer.latency_ms if answer else None,
            "error": error,
            "response_excerpt": answer.excerpt if answer else None,
        }
        return await asyncio.to_thread(self._queue.log_ping, attempt)

    # -- deliveries --------------------------------------------------------------------

    def attempts(
        self,
        endpoint_id: UUID,
        *,
        before: int | None = None,
        limit: int = 50,
        outcome: str | None = None,
    ) -> builtins.list[Attempt]:
        """The endpoint's attempts, newest first; ``before``: the last id of the page before."""
        self._row(endpoint_id)
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidCommand(f"outcome: one of {', '.join(OUTCOMES)}", field="outcome")
        return self._endpoints.attempts(
            endpoint_id, before=before, limit=_page(limit), outcome=outcome
        )

    def parked(
        self, endpoint_id: UUID, *, after_position: int = 0, limit: int = 50
    ) -> builtins.list[ParkedEvent]:
        """The events given up for this endpoint, by position; redeliverable."""
        self._row(endpoint_id)
        return self._queue.parked(endpoint_id, after_position=after_position, limit=_page(limit))

    def redeliver(self, endpoint_id: UUID, event_id: UUID | None = None) -> int:
        """Send a given-up event again (or all of them): pending, due now, attempts and
        retry period anew. Returns how many; :class:`NotFound` for an event not given up."""
        self._row(endpoint_id)
        count = self._queue.redeliver(endpoint_id, event_id)
        if count and self._deliverer is not None:
            self._deliverer.poke()
        return count

    def replay(self, endpoint_id: UUID, from_position: int) -> Replay:
        """Queue again every published event matching the endpoint's patterns from
        ``from_position`` up to the log's head now (earlier than the endpoint's creation
        too): new ones are queued, given-up or pending ones start afresh."""
        row = self._row(endpoint_id)
        if from_position < 0:
            raise InvalidCommand("from_position: a position, 0 or more", field="from_position")
        head = self._head()
        after, queued = max(from_position - 1, 0), 0
        while after < head:
            envelopes, last = self._store.read_envelopes(after, _REPLAY_BATCH)
            wanted = [
                e for e in envelopes if e.position <= head and matches(row.event_types, e.type)
            ]
            queued += self._queue.requeue(endpoint_id, refs(wanted))
            if last == after:
                break
            after = last
        if queued and self._deliverer is not None:
            self._deliverer.poke()
        return Replay(endpoint_id, from_position, head, queued)

    # -- the delivering process ----------------------------------------------------------

    def queue_envelopes(self, envelopes: Sequence[Envelope]) -> int:
        """Queue published envelopes for the endpoints that want them, then wake this
        process's deliverer: the distributed runtime's ``webhooks`` role calls this with
        each batch it decodes from ``hub.events`` (from a thread: it blocks), and commits
        the batch's offsets once it returns. See :meth:`WebhookIntake.queue_envelopes`."""
        offered = self.intake.queue_envelopes(envelopes)
        if offered and self._deliverer is not None:
            self._deliverer.poke()
        return offered

    def deliverer(self, metrics: Metrics, *, intake: bool) -> WebhookDeliverer:
        """The deliverer of this process over the same tables (``Runtime.start_webhooks``
        runs it): with the embedded log intake, or without (events queued by
        :meth:`queue_envelopes`)."""
        self._deliverer = WebhookDeliverer(
            self._store, self._endpoints, self._queue, self._settings, metrics, intake=intake
        )
        return self._deliverer

    # -- helpers -----------------------------------------------------------------------

    def _head(self) -> int:
        return self._store.app.recorder.max_notification_id() or 0

    def _row(self, endpoint_id: UUID) -> EndpointRow:
        row = self._endpoints.endpoint(endpoint_id)
        if row is None:
            raise _not_found(endpoint_id)
        return row

    def _shown(self, row: EndpointRow, counts: dict[str, int]) -> Endpoint:
        grace = row.previous_expires_at
        now = self._clock()
        return Endpoint(
            id=row.id,
            url=row.url,
            event_types=row.event_types,
            description=row.description,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            created_at=row.created_at,
            start_position=row.start_position,
            previous_secret_expires_at=grace if grace is not None and grace > now else None,
            pending=counts.get("pending", 0),
            failed=counts.get("failed", 0),
            last_success_at=row.last_success_at,
            failing_since=row.failing_since,
        )

    def _checked_url(self, url: str) -> str:
        url = url.strip()
        if len(url) > _MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in url):
            raise InvalidCommand(f"url: at most {_MAX_URL} characters, without spaces", field="url")
        try:
            _, host, port = check_url(url)
        except ValueError as exc:
            raise InvalidCommand(f"url: {exc}", field="url") from None
        if self._settings.allow_private_networks:
            return url
        try:
            addresses = resolve_blocking(host, port)
        except OSError:
            raise InvalidCommand(f"url: {host} does not resolve", field="url") from None
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise InvalidCommand(
                    f"url: {host} is refused: {reason} (webhooks go to public addresses "
                    "only, unless HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true)",
                    field="url",
                )
        return url

    @staticmethod
    def _checked_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
        if isinstance(patterns, str):
            patterns = [patterns]
        cleaned = tuple(dict.fromkeys(p.strip() for p in patterns))
        if not cleaned or len(cleaned) > _MAX_PATTERNS:
            raise InvalidCommand(
                f"event_types: 1 to {_MAX_PATTERNS} event types or patterns "
                "(interaction.received.v1, interaction.*, * for all)",
                field="event_types",
            )
        for pattern in cleaned:
            if len(pattern) > 100 or not any(matches([pattern], t) for t in EVENT_TYPES):
                raise InvalidCommand(
                    f"event_types: {pattern[:100]!r} matches no published event type "
                    "(docs/events.md lists them)",
                    field="event_types",
                )
        return cleaned

    @staticmethod
    def _checked_description(description: str) -> str:
        description = description.strip()
        if len(description) > _MAX_DESCRIPTION:
            raise InvalidCommand(
                f"description: at most {_MAX_DESCRIPTION} characters", field="description"
            )
        return description


def _page(limit: int) -> int:
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidCommand(f"limit: 1 to {_MAX_PAGE}", field="limit")
    return limit


def _not_found(endpoint_id: UUID) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id}", id=str(endpoint_id))
