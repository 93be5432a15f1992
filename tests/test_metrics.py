"""Two processes' metrics as one (hub.metrics.combine): what ``hub run all`` serves on /metrics
with its stream roles in a child process."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hub.metrics import Metrics, combine, exposition


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_counters_and_histograms_add_up_and_each_process_keeps_its_own_series() -> None:
    server, child = Metrics(), Metrics()
    server.role_items.labels("ingest").inc(5)
    child.role_items.labels("process").inc(7)
    server.interactions.labels("sms", "inbound").inc(1)
    child.interactions.labels("sms", "inbound").inc(2)
    child.webhook_latency.observe(0.2)
    server.webhook_latency.observe(0.4)
    child.relay_lag.set(12)  # a gauge only the child sets: the server holds its zero

    text = exposition(combine(server.registry.collect(), child.registry.collect()))
    found = _samples(text)

    assert found["hub_role_items_total", (("role", "ingest"),)] == 5
    assert found["hub_role_items_total", (("role", "process"),)] == 7
    assert (
        found["hub_interactions_recorded_total", (("channel", "sms"), ("direction", "inbound"))]
        == 3
    )
    assert found["hub_webhook_response_seconds_count", ()] == 2
    assert found["hub_webhook_response_seconds_sum", ()] == 0.2 + 0.4
    assert found["hub_relay_lag", ()] == 12
    # One family per name, as a scraper requires (the parser would take a second as new).
    families = [f.name for f in text_string_to_metric_families(text.decode())]
    assert len(families) == len(set(families))


def test_a_counters_created_time_is_the_earliest_of_the_processes() -> None:
    first, second = Metrics(), Metrics()
    first.role_items.labels("relay").inc()
    second.role_items.labels("relay").inc()
    created = [
        sample.value
        for metrics in (first, second)
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "hub_role_items_created"
    ]
    found = _samples(exposition(combine(first.registry.collect(), second.registry.collect())))
    assert found["hub_role_items_created", (("role", "relay"),)] == min(created)
    assert found["hub_role_items_total", (("role", "relay"),)] == 2


def test_one_process_alone_is_served_as_it_is() -> None:
    metrics = Metrics()
    metrics.dead_letters.inc(2)
    assert _samples(exposition(combine(metrics.registry.collect()))) == _samples(
        exposition(metrics.registry.collect())
    )
