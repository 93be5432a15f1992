"""`hub serve` as a real process: recording over HTTP, restarts, and a crash mid-stream."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.hub_process import HubProcess, ago, interaction, run_hub

pytestmark = pytest.mark.e2e

Server = Callable[..., HubProcess]


@pytest.fixture(params=["embedded", "kafka"])
def hub_runtime(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both runtimes: ``hub serve``, and ``hub run all`` on Kafka."""
    return str(request.param)


def _post(hub: HubProcess, expect: int = 202, **overrides: Any) -> dict[str, Any]:
    return hub.record(interaction(**overrides), expect)


def test_sms_whatsapp_and_an_email_thread_over_http(hub_server: Server) -> None:
    hub = hub_server().start()
    sms = _post(
        hub,
        channel="sms",
        address="phone:+1 (555) 012-3000",
        provider_message_id="SM100",
        occurred_at=ago(60),
        text="Where is my parcel?",
        contact_name="Dana Fox",
    )
    reply = _post(
        hub,
        channel="sms",
        direction="outbound",
        address="phone:+15550123000",
        provider_message_id="SM101",
        occurred_at=ago(50),
        text="It ships today.",
    )
    whatsapp = _post(
        hub,
        channel="whatsapp",
        address="phone:+15550123000",
        provider_message_id="wamid.200",
        occurred_at=ago(10),
        text="Got it, thanks!",
    )
    first_mail = _post(
        hub,
        channel="email",
        address="email:Erin@Example.com",
        provider_message_id="<m1@mail.example.com>",
        occurred_at=ago(40),
        subject="Invoice",
    )
    answer = _post(
        hub,
        channel="email",
        direction="outbound",
        address="email:erin@example.com",
        provider_message_id="<m2@hub.example.com>",
        thread_ref="<m1@mail.example.com>",
        occurred_at=ago(30),
        subject="Re: Invoice",
    )
    follow_up = _post(
        hub,
        channel="email",
        address="email:erin@example.com",
        provider_message_id="<m3@mail.example.com>",
        thread_ref="<m2@hub.example.com>",
        references=["<m1@mail.example.com>", "<m2@hub.example.com>"],
        occurred_at=ago(20),
        subject="Re: Invoice",
    )

    phone_customer = sms["customer_id"]
    assert reply["customer_id"] == whatsapp["customer_id"] == phone_customer
    assert reply["conversation_id"] == sms["conversation_id"] != whatsapp["conversation_id"]
    assert (
        answer["conversation_id"] == follow_up["conversation_id"] == first_mail["conversation_id"]
    )
    assert first_mail["customer_id"] != phone_customer
    hub.wait_caught_up()

    messages = [i for i in hub.timeline(phone_customer) if i["kind"] == "message"]
    assert [(m["channel"], m["direction"], m["provider_message_id"]) for m in messages] == [
        ("whatsapp", "inbound", "wamid.200"),
        ("sms", "outbound", "SM101"),
        ("sms", "inbound", "SM100"),
    ]
    profile = hub.customer(phone_customer)
    assert profile["display_name"] == "Dana Fox"
    assert {c["channel"] for c in profile["open_conversations"]} == {"sms", "whatsapp"}
    found = hub.http.get("/v1/customers", params={"address": "phone:+15550123000"}).json()
    assert [c["customer_id"] for c in found["items"]] == [phone_customer]

    thread = hub.http.get(f"/v1/conversations/{first_mail['conversation_id']}").json()
    assert (thread["channel"], thread["message_count"]) == ("email", 3)
    mail = [i for i in hub.timeline(first_mail["customer_id"]) if i["kind"] == "message"]
    assert [m["provider_message_id"] for m in mail] == [
        "<m3@mail.example.com>",
        "<m2@hub.example.com>",
        "<m1@mail.example.com>",
    ]


def _batch(count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` interactions from count/4 phone numbers over SMS and WhatsApp."""
    return [
        interaction(
            channel="sms" if n % 2 else "whatsapp",
            direction="inbound" if n % 3 else "outbound",
            address=f"phone:+1555013{n // 4:04d}",
            provider_message_id=f"{prefix}-{n}",
            occurred_at=ago(300 - n),
            text=f"message {n}",
        )
        for n in range(count)
    ]


def _snapshot(hub: HubProcess, customers: set[str]) -> dict[str, Any]:
    hub.wait_caught_up()
    return {
        "events": hub.events(),
        "timelines": {c: hub.timeline(c) for c in sorted(customers)},
        "profiles": {c: hub.customer(c) for c in sorted(customers)},
    }


def test_restart_keeps_customers_and_timelines(hub_server: Server) -> None:
    items = _batch(200, "restart")
    hub = hub_server().start()
    recorded = hub.record_batch(items)
    assert (recorded["new"], recorded["duplicates"], recorded["rejected"]) == (200, 0, 0)
    customers = {r["customer_id"] for r in recorded["results"]}
    assert len(customers) == 50
    before = _snapshot(hub, customers)
    received = [e for e in before["events"] if e["type"].startswith("interaction.")]
    assert len(received) == 200

    code, took = hub.terminate(timeout=10)
    assert code == 0, hub.log()
    assert took < 10

    hub.start()
    after = _snapshot(hub, customers)
    assert after == before
    assert (
        sum(1 for items in after["timelines"].values() for i in items if i["kind"] == "message")
        == 200
    )

    again = hub.record_batch(items)
    assert (again["new"], again["duplicates"], again["rejected"]) == (0, 200, 0)
    assert [r["message_id"] for r in again["results"]] == [
        r["message_id"] for r in recorded["results"]
    ]
    assert _snapshot(hub, customers) == before


def test_kill_9_mid_stream_loses_nothing_acknowledged_and_doubles_nothing(
    hub_server: Server,
) -> None:
    hub = hub_server().start()
    url = hub.url
    headers = dict(hub.http.headers)
    acknowledged: dict[str, list[dict[str, Any]]] = {}  # batch prefix -> its results
    sent: dict[str, list[dict[str, Any]]] = {}  # batch prefix -> its items
    enough = threading.Event()
    stopped = threading.Event()

    def post_batches() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for number in range(10_000):
                prefix = f"kill-{number}"
                items = _batch(20, prefix)
                sent[prefix] = items
                try:
                    response = client.post("/v1/interactions/batch", json={"interactions": items})
                except httpx.TransportError:
                    break
                if response.status_code // 100 == 2:
                    acknowledged[prefix] = response.json()["results"]
                if len(acknowledged) >= 10:
                    enough.set()
        stopped.set()

    poster = threading.Thread(target=post_batches, daemon=True)
    poster.start()
    assert enough.wait(30), "the client thread got no 10 batches acknowledged"
    hub.kill()
    assert stopped.wait(30), "the client thread did not notice the crash"
    poster.join(5)

    hub.start()
    hub.wait_caught_up()
    events = hub.events()
    messages = [e for e in events if e["type"].startswith("interaction.")]
    per_id = Counter(e["data"]["message_id"] for e in messages)
    assert [m for m, n in per_id.items() if n > 1] == []
    acked_ids = {r["message_id"] for results in acknowledged.values() for r in results}
    assert len(acked_ids) == 20 * len(acknowledged)
    assert acked_ids <= set(per_id)
    by_prefix = Counter(e["data"]["provider_message_id"].rsplit("-", 1)[0] for e in messages)
    assert set(by_prefix) <= set(sent)
    if hub.runtime == "embedded":
        # A batch is one transaction: the one in flight at the kill is whole or absent. (On
        # Kafka, the items of an unacknowledged batch may have reached the broker in part.)
        assert set(by_prefix.values()) == {20}, by_prefix
    else:
        assert {by_prefix[p] for p in acknowledged} == {20}, by_prefix

    # Every recorded interaction is on its customer's timeline exactly once.
    customers = {e["customer_id"] for e in messages}
    on_timelines = Counter(
        i["item_id"] for c in customers for i in hub.timeline(c) if i["kind"] == "message"
    )
    assert on_timelines == Counter(set(per_id))

    # Re-sending everything the client sent records only what was lost in flight.
    resent_recorded = 0
    for prefix, items in sent.items():
        body = hub.record_batch(items)
        assert body["rejected"] == 0
        if prefix in acknowledged:
            assert body["duplicates"] == 20
        resent_recorded += body["new"]
    assert resent_recorded == 20 * len(sent) - len(per_id)
    hub.wait_caught_up()
    final = [e for e in hub.events() if e["type"].startswith("interaction.")]
    assert len(final) == len({e["data"]["message_id"] for e in final}) == 20 * len(sent)


def test_sigterm_with_an_event_subscriber_connected_stops_promptly(hub_server: Server) -> None:
    hub = hub_server().start()
    lines: list[str] = []
    outcome: list[str] = []

    def subscribe() -> None:
        try:
            with httpx.stream(
                "GET", f"{hub.url}/v1/events/stream", headers=dict(hub.http.headers), timeout=30
            ) as response:
                for line in response.iter_lines():
                    lines.append(line)
            outcome.append("ended")
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    subscriber = threading.Thread(target=subscribe, daemon=True)
    subscriber.start()
    while ": connected" not in lines:
        assert subscriber.is_alive(), outcome
        threading.Event().wait(0.02)

    code, took = hub.terminate(timeout=10)

    assert code == 0
    assert took < 5, f"shutdown waited {took:.1f}s for the event stream"
    subscriber.join(5)
    assert outcome == ["ended"]  # the stream finished cleanly; the client may reconnect
    assert "timeout graceful shutdown exceeded" not in hub.log()


def test_second_server_on_a_taken_port_exits_3(hub_server: Server, tmp_path: Any) -> None:
    """At once: the port is taken before the runtime starts (no data directory made, no
    store opened, no broker met, no child process started and stopped again)."""
    first = hub_server().start()
    other = tmp_path / "other"
    command = ["serve", "--data-dir", str(other)]
    if first.runtime == "kafka":
        command = ["run", "all"]
    result = run_hub(*command, "--port", str(first.port), env=first.child_env(), timeout=60)
    assert result.returncode == 3
    assert "address already in use" in result.stderr.lower()
    assert not other.exists()
    assert "runtime started" not in result.stderr


def test_an_erasure_reaches_every_view_and_the_event_feed(hub_server: Server) -> None:
    """On both runtimes: in the distributed one the views learn of the erasure through
    hub.events (the projection worker), and the answer says when Kafka's copies expire."""
    hub = hub_server().start()
    name, text = "Gintarė Trinaitė QE-501", "Prašau ištrinti mano duomenis QE-502"
    gone = hub.resolve(_post(hub, address="phone:+37060071601", contact_name=name, text=text))
    kept = hub.resolve(_post(hub, address="phone:+37060071602", text="lieka QE-503"))
    hub.wait_caught_up()

    answer = hub.http.post(
        f"/v1/customers/{gone['customer_id']}/erase", json={"reason": "data_subject_request"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["customer_ids"] == [gone["customer_id"]]
    expiry = answer.json()["kafka_copies_expire_by"]
    assert (expiry is not None) == (hub.runtime == "kafka")
    hub.wait_caught_up()
    assert hub.http.get(f"/v1/customers/{gone['customer_id']}").status_code == 410
    assert hub.http.get("/v1/customers", params={"q": "Trinait"}).json()["items"] == []
    events = hub.events()
    assert [e["customer_id"] for e in events if e["type"] == "customer.erased.v1"] == [
        gone["customer_id"]
    ]
    shown = str(events)
    assert "QE-501" not in shown
    assert "QE-502" not in shown
    kept_items = hub.timeline(kept["customer_id"])
    assert [i["text"] for i in kept_items if i["kind"] == "message"] == ["lieka QE-503"]
