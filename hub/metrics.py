"""Prometheus metrics of one hub process (one registry per runtime, so tests stay apart), and
how a process that runs roles in a child adds the child's to its own (:func:`combine`)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.samples import Sample


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.interactions = Counter(
            "hub_interactions_recorded_total",
            "Interactions recorded, by channel and direction.",
            ["channel", "direction"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hub_interactions_duplicate_total",
            "Interactions received again (provider retries, replays) and not recorded twice.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "hub_interactions_rejected_total",
            "Interactions refused as invalid.",
            ["reason"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "hub_http_request_duration_seconds",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.store_position = Gauge(
            "hub_store_position", "Last position in the event store.", registry=self.registry
        )
        self.projection_position = Gauge(
            "hub_projection_position",
            "Store position each projection has applied.",
            ["projection"],
            registry=self.registry,
        )
        self.set_aside = Gauge(
            "hub_projection_set_aside_events",
            "Events a projection could not apply and set aside (view_dead_letters).",
            registry=self.registry,
        )
        self.dead_letters_kept = Gauge(
            "hub_dead_letters",
            "Dead letters kept: what was received but could not be recorded, awaiting a retry, "
            "a drop or their retention (hub dead-letters list).",
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "hub_projection_lag_positions",
            "Store positions not yet applied by the slowest projection.",
            registry=self.registry,
        )
        # -- service levels (refreshed when /metrics is read; docs/analytics.md) ----------
        self.open_conversations = Gauge(
            "hub_open_conversations",
            "Conversations open or pending, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.sla_breaching_soon = Gauge(
            "hub_sla_breaching_soon",
            "Open conversations whose next SLA target passes within the hour.",
            registry=self.registry,
        )
        self.sla_breached_open = Gauge(
            "hub_sla_breached_open",
            "Open conversations past an SLA target.",
            registry=self.registry,
        )
        self.oldest_waiting = Gauge(
            "hub_oldest_waiting_seconds",
            "How long the customer waiting longest for a response has waited (0: none waits).",
            registry=self.registry,
        )
        # -- distributed runtime ------------------------------------------------------------
        self.role_items = Counter(
            "hub_role_items_total",
            "Items each role of this process handled: ingest (records produced), process "
            "(inbound records taken), relay (events published), project (events applied).",
            ["role"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hub_inbound_dead_letters_total",
            "Inbound records sent to the dead-letter topic, as never processable.",
            registry=self.registry,
        )
        self.dispatched = Counter(
            "hub_dispatch_total",
            "Outcomes of the dispatcher's attempts: sent, retrying, failed, refused, settled...",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.scheduled = Counter(
            "hub_scheduled_messages_total",
            "Scheduled and automated messages the scheduler fired, by outcome: send (handed to "
            "the dispatcher), reopen (a reminder), skip (with the reason), none (cancelled).",
            ["outcome", "code"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "hub_webhooks_total",
            "Provider webhook requests by connector and outcome (ok, invalid_signature, "
            "malformed).",
            ["connector", "outcome"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "hub_consumer_lag",
            "Records on a topic not yet committed by a consumer group of the hub.",
            ["group", "topic"],
            registry=self.registry,
        )
        self.relay_lag = Gauge(
            "hub_relay_lag",
            "Store positions the relay has not yet published to hub.events.",
            registry=self.registry,
        )
        # -- outbound webhooks (hub.runtime.webhooks; docs/webhooks.md) ---------------------
        self.webhook_deliveries = Counter(
            "hub_webhook_deliveries_total",
            "Outbound webhook attempts by outcome: delivered, retrying, failed (given up after "
            "the retry period), disabled (the attempt disabled its endpoint: a 410, or failing "
            "for the whole period).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "hub_webhook_response_seconds",
            "Time from starting an outbound webhook attempt to its endpoint's answer.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.webhook_event_age = Histogram(
            "hub_webhook_delivery_delay_seconds",
            "Time from an event's recording to its delivery to an endpoint (a 2xx).",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
        )
        self.webhook_queue = Gauge(
            "hub_webhook_queue_events",
            "Events queued for webhook endpoints, by state: pending (not yet delivered) and "
            "failed (given up, redeliverable). Refreshed every few seconds by a delivering "
            "process.",
            ["state"],
            registry=self.registry,
        )
        self.webhook_intake_lag = Gauge(
            "hub_webhook_intake_lag_positions",
            "Store positions the embedded runtime's webhook intake has not yet queued.",
            registry=self.registry,
        )


def combine(*processes: Iterable[Metric]) -> list[Metric]:
    """The metric families of several processes as one process's: a sample (same name and
    labels) adds up across them, counters, histograms and gauges alike (each gauge is set in
    one process; the others hold its zero), except its ``_created`` time: the earliest."""
    families: dict[str, Metric] = {}
    samples: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Sample]] = {}
    for family in (family for process in processes for family in process):
        if family.name not in families:
            families[family.name] = Metric(family.name, family.documentation, family.type)
            samples[family.name] = {}
        kept = samples[family.name]
        for sample in family.samples:
            key = sample.name, tuple(sorted(sample.labels.items()))
            before = kept.get(key)
            if before is None:
                kept[key] = sample
            elif sample.name.endswith("_created"):
                kept[key] = sample._replace(value=min(before.value, sample.value))
            else:
                kept[key] = sample._replace(value=before.value + sample.value)
    for name, family in families.items():
        family.samples = list(samples[name].values())
    return list(families.values())


def exposition(families: Iterable[Metric]) -> bytes:
    """``families`` in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families)))
    return generate_latest(registry)


class _Families:
    """A collector of families collected already."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families
