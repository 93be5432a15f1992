"""Outbound webhooks: published events delivered to downstream services' HTTP endpoints,
signed as the Standard Webhooks specification says (docs/webhooks.md).

- ``service``: :class:`WebhookService` (``runtime.webhooks``), what the API, the console and
  the CLI call: endpoints, attempt logs, redeliver, replay; and the intake's entry point.
- ``intake``: published envelopes fanned out into the per-endpoint queue (the embedded
  runtime follows the store's log; a Kafka worker queues what it reads from ``hub.events``).
- ``deliverer``: the loop that claims, renders, sends and records outcomes, with backoff.
- ``sender``, ``guard``, ``signing``, ``retry``: one request sent safely, the address check
  against request forgery, the signatures, and when to try again.

The tables are ``hub.store.webhooks`` (endpoints, log) and ``hub.store.webhook_queue``.
"""

from hub.runtime.webhooks.deliverer import WebhookDeliverer
from hub.runtime.webhooks.intake import LogIntake, WebhookIntake
from hub.runtime.webhooks.service import (
    Attempt,
    CreatedEndpoint,
    Endpoint,
    ParkedEvent,
    Replay,
    WebhookService,
)

__all__ = [
    "Attempt",
    "CreatedEndpoint",
    "Endpoint",
    "LogIntake",
    "ParkedEvent",
    "Replay",
    "WebhookDeliverer",
    "WebhookIntake",
    "WebhookService",
]
