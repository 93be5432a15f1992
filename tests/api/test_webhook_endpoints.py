"""The outbound webhooks' admin API (``/v1/webhooks``, issue 17): endpoints created, changed
and deleted, their secret shown once, rotated, a test ping and real deliveries to a loopback
receiver verified with the Standard Webhooks reference library, the attempt log, given-up
events redelivered, a replay; refusals in the API's error model; admins only.

The engine itself (ordering, retries, safety) is tested in tests/runtime/test_webhooks*.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from standardwebhooks import Webhook

from hub.api.routes import webhook_endpoints
from hub.config import Settings
from hub.events.common import check_text
from tests.peers.webhook_receiver import Received, WebhookReceiver
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, wait_for
from tests.support.console import sign_in
from tests.support.hostile import HOSTILE_TEXT
from tests.support.store import SettingsFactory

#: Loopback receivers are allowed; retries come fast and give up after a second.
WEBHOOKS: dict[str, Any] = {
    "allow_private_networks": True,
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "retry_period": timedelta(seconds=1),
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as found:
        yield found


def of_type(receiver: WebhookReceiver, event_type: str) -> list[Received]:
    return [r for r in receiver.requests if r.json["type"] == event_type]


@pytest.fixture
def hub(backend: str, make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings(backend, admin_token=ADMIN_TOKEN, webhooks=WEBHOOKS)) as api:
        yield api


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One hub for the tests that change nothing much (each example its own endpoint), its
    client also signed in to the console."""
    data = tmp_path_factory.mktemp("webhook-endpoints")
    with running_app(Settings(data_dir=data, admin_token=ADMIN_TOKEN, webhooks=WEBHOOKS)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


def create(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"} | body)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"  # it carries the secret
    created: dict[str, Any] = response.json()
    return created


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The request's body, once the reference library verified its signature."""
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    payload: dict[str, Any] = Webhook(secret).verify(request.body, headers)
    assert payload["id"] == request.headers["webhook-id"]
    return payload


# -- endpoints -------------------------------------------------------------------------------


def test_create_read_change_and_delete_an_endpoint(hub: Api) -> None:
    before = datetime.now(UTC)
    created = create(
        hub,
        url="https://hooks.example.com/hub?team=billing",
        event_types=["interaction.*", "customer.erased.v1"],
        description="Billing sync",
    )
    webhook_id = created["id"]
    assert UUID(webhook_id).version == 7
    assert created["secret"].startswith("whsec_")
    expected = {
        "id": webhook_id,
        "url": "https://hooks.example.com/hub?team=billing",
        "event_types": ["interaction.*", "customer.erased.v1"],
        "description": "Billing sync",
        "enabled": True,
        "disabled_reason": None,
        "disabled_at": None,
        "previous_secret_expires_at": None,
        "pending": 0,
        "failed": 0,
        "last_success_at": None,
        "failing_since": None,
    }
    assert {k: created[k] for k in expected} == expected
    assert datetime.fromisoformat(created["created_at"]) >= before - timedelta(seconds=1)
    assert created["start_position"] == hub.store_position()

    one = ok(hub.get(f"/v1/webhooks/{webhook_id}"))
    assert "secret" not in one
    assert one == {k: v for k, v in created.items() if k != "secret"}
    # every pattern defaults to all
    everything = create(hub, url="http://127.0.0.1:9/all")
    assert everything["event_types"] == ["*"]
    assert everything["description"] == ""
    listed = ok(hub.get("/v1/webhooks"))["items"]
    assert [e["id"] for e in listed] == [webhook_id, everything["id"]]
    assert all("secret" not in e for e in listed)

    changed = ok(
        hub.request(
            "PATCH",
            f"/v1/webhooks/{webhook_id}",
            json={"event_types": ["conversation.*"], "description": ""},
        )
    )
    assert changed["event_types"] == ["conversation.*"]
    assert changed["description"] == ""
    assert changed["url"] == "https://hooks.example.com/hub?team=billing"  # left as it was

    disabled = ok(hub.request("PATCH", f"/v1/webhooks/{webhook_id}", json={"enabled": False}))
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "admin"
    assert disabled["disabled_at"] is not None
    enabled = ok(hub.request("PATCH", f"/v1/webhooks/{webhook_id}", json={"enabled": True}))
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None

    deleted = hub.request("DELETE", f"/v1/webhooks/{webhook_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(hub.get(f"/v1/webhooks/{webhook_id}"), 404, "not_found")
    assert_error(hub.request("DELETE", f"/v1/webhooks/{webhook_id}"), 404, "not_found")
    assert [e["id"] for e in ok(hub.get("/v1/webhooks"))["items"]] == [everything["id"]]
    for method, path in (
        ("PATCH", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
        ("GET", "/failed"),
        ("POST", "/redeliver"),
        ("POST", "/replay?from_position=0"),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        missing = hub.request(method, f"/v1/webhooks/{webhook_id}{path}", **kwargs)
        assert_error(missing, 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "ftp://files.example.com/in"}, "url", None),
        ({"url": "file:///etc/passwd"}, "url", None),
        ({"url": "https://user:secret@hooks.example.com/"}, "url", None),
        ({"url": "hooks.example.com/no-scheme"}, "url", None),
        ({"event_types": ["nothing.matches.v9"]}, "event_types", None),
        (
            {"event_types": ["interaction.received.v1", "interaction.recieved.v1"]},
            "event_types",
            None,
        ),
        ({"event_types": []}, "event_types", "validation_error"),
        ({"event_types": ["*"] * 51}, "event_types", "validation_error"),
        ({"event_types": ["interaction received"]}, "event_types", "validation_error"),
        ({"description": "x" * 501}, "description", "validation_error"),
        ({"description": "nul \x00"}, "description", "validation_error"),
        ({"url": ""}, "url", "validation_error"),
        ({"url": "https://example.com/" + "x" * 2048}, "url", "validation_error"),
        ({"secret": "whsec_mine"}, "secret", "validation_error"),
    ],
)
def test_a_refused_endpoint_says_why(
    shared: Api, body: dict[str, Any], field: str, code: str | None
) -> None:
    webhook_id = create(shared, description="before")["id"]
    before = ok(shared.get("/v1/webhooks"))["items"]
    response = shared.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/"} | body)
    error = assert_error(response, 422, code or response.json()["error"]["code"])
    if code is None:  # a rule the schema cannot state: its own code, never the schema's
        assert error["code"] == "invalid_command", error
        assert error["details"] == {"field": field}, error
    else:
        assert any(field in d["loc"] for d in error["details"]), error
    # a change is checked the same way
    changed = shared.request("PATCH", f"/v1/webhooks/{webhook_id}", json=body)
    assert_error(changed, 422, code or "invalid_command")
    assert ok(shared.get("/v1/webhooks"))["items"] == before


def test_a_private_address_is_refused_unless_allowed(make_settings: SettingsFactory) -> None:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://localhost/hook",
        ):
            error = assert_error(
                api.post("/v1/webhooks", json={"url": url}), 422, "invalid_command"
            )
            assert error["message"], url
        assert ok(api.get("/v1/webhooks"))["items"] == []
        # names that cannot be resolved (or encoded for DNS at all): refused or kept, no 5xx
        for url in (
            f"http://{'a' * 64}.example/",
            "http://a..b/",
            "http://ex\u00e4mple\u202e.invalid/",
            "http://nothing-here.invalid/",
        ):
            answered = api.post("/v1/webhooks", json={"url": url})
            assert answered.status_code in (201, 422), answered.text


# -- who may ---------------------------------------------------------------------------------

_SOME = "01a23c98-f61b-7e73-a846-77e8d4a5408e"
#: Every operation of the router, with a body it would take from an admin.
OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/"}),
    ("GET", "/v1/webhooks", None),
    ("GET", "/v1/webhooks/{webhook_id}", None),
    ("PATCH", "/v1/webhooks/{webhook_id}", {"description": "mine now"}),
    ("DELETE", "/v1/webhooks/{webhook_id}", None),
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret", None),
    ("POST", "/v1/webhooks/{webhook_id}/test", None),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries", None),
    ("GET", "/v1/webhooks/{webhook_id}/failed", None),
    ("POST", "/v1/webhooks/{webhook_id}/redeliver", {}),
    ("POST", "/v1/webhooks/{webhook_id}/replay?from_position=0", None),
]


def test_the_operations_listed_are_every_operation_of_the_router() -> None:
    routes = {
        (method, getattr(route, "path", ""))
        for route in webhook_endpoints.router.routes
        for method in getattr(route, "methods", ())
    }
    assert routes == {(m, p.partition("?")[0]) for m, p, _ in OPERATIONS}


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_only_admins_manage_webhooks(
    shared: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert shared.runtime is not None
    created = create(shared, description="kept")
    url = path.format(webhook_id=created["id"])
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    for role in ("agent", "service"):
        token = shared.runtime.tokens.create(role, f"{role}-{uuid4().hex[:6]}")[1]
        error = assert_error(shared.request(method, url, token=token, **kwargs), 403, "forbidden")
        assert error["details"] == {"scope": "admin"}
    assert_error(shared.request(method, url, token=None, **kwargs), 401, "unauthorized")
    # nothing changed: no endpoint added, the secret the same, no attempt made
    after = ok(shared.get(f"/v1/webhooks/{created['id']}"))
    assert after == {k: v for k, v in created.items() if k != "secret"}
    assert ok(shared.get(f"/v1/webhooks/{created['id']}/deliveries"))["items"] == []


# -- the secret, the ping ----------------------------------------------------------------------


def test_the_secret_is_shown_once_pings_are_signed_with_it_and_rotation_keeps_a_grace(
    hub: Api, receiver: WebhookReceiver
) -> None:
    created = create(hub, url=receiver.url, event_types=["customer.created.v1"])
    webhook_id, secret = created["id"], created["secret"]
    for path in ("", "/deliveries", "/failed"):
        assert secret not in hub.get(f"/v1/webhooks/{webhook_id}{path}").text
    assert secret not in hub.get("/v1/webhooks").text
    assert secret not in hub.request("PATCH", f"/v1/webhooks/{webhook_id}", json={}).text

    # a test ping: sent now, signed, answered with how it went, logged
    answered = ok(hub.post(f"/v1/webhooks/{webhook_id}/test"))
    (request,) = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "webhook.ping"
    assert payload["endpoint_id"] == webhook_id
    assert request.headers["content-type"].startswith("application/json")
    assert answered["event_id"] == payload["id"]
    assert answered["event_type"] == "webhook.ping"
    assert answered["outcome"] == "ping"
    assert answered["status_code"] == 200
    assert answered["latency_ms"] > 0
    assert answered["position"] is None
    assert answered["error"] is None
    assert (answered["response_excerpt"] or "").startswith("answered 200")
    assert "\x00" not in answered["response_excerpt"]
    assert ok(hub.get(f"/v1/webhooks/{webhook_id}/deliveries"))["items"] == [answered]

    answer = hub.post(f"/v1/webhooks/{webhook_id}/rotate-secret")
    assert answer.headers["cache-control"] == "no-store"
    rotated = ok(answer)
    assert set(rotated) == {"secret", "previous_secret_valid_until"}
    new_secret = rotated["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert abs(until - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    shown = ok(hub.get(f"/v1/webhooks/{webhook_id}"))
    assert datetime.fromisoformat(shown["previous_secret_expires_at"]) == until
    assert new_secret not in json.dumps(shown)
    # during the grace both secrets verify what is sent
    receiver.answer(503)  # a refusal: the ping says so, and nothing is retried
    refused = ok(hub.post(f"/v1/webhooks/{webhook_id}/test"))
    assert (refused["status_code"], refused["outcome"]) == (503, "ping")
    assert refused["error"]
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for key in (new_secret, secret):
        assert verified(key, request)["id"] == refused["event_id"]

    # nobody listening: no status, an error
    gone = create(hub, url="http://127.0.0.1:9/nobody")
    unanswered = ok(hub.post(f"/v1/webhooks/{gone['id']}/test"))
    assert unanswered["status_code"] is None
    assert unanswered["error"]
    assert len(receiver.requests) == 2


# -- deliveries, redelivery, replay ------------------------------------------------------------


def test_deliveries_of_recorded_interactions_are_listed_and_replayable(
    hub: Api, receiver: WebhookReceiver
) -> None:
    earlier = hub.record(address="phone:+15550170001")  # before the endpoint: not sent
    created = create(hub, url=receiver.url, event_types=["interaction.*"])
    webhook_id, secret = created["id"], created["secret"]
    # one customer's: delivered in order
    recorded = [hub.record(address="phone:+15550170002") for _ in range(2)]
    received = wait_for(lambda: len(receiver.requests) >= 2 and receiver.requests)
    payloads = [verified(secret, r) for r in received]
    assert [p["data"]["message_id"] for p in payloads] == [r["message_id"] for r in recorded]
    assert {p["type"] for p in payloads} == {"interaction.received.v1"}
    # the body is the published envelope, as /v1/events has it
    published = {e["id"]: e for e in hub.all_events(created["start_position"])}
    for payload in payloads:
        assert payload == published[payload["id"]]

    hub.post(f"/v1/webhooks/{webhook_id}/test")
    page = ok(hub.get(f"/v1/webhooks/{webhook_id}/deliveries"))
    assert page["next_before"] is None
    assert [a["outcome"] for a in page["items"]] == ["ping", "delivered", "delivered"]
    ids = [a["id"] for a in page["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    delivered = page["items"][1:]
    assert [a["event_id"] for a in reversed(delivered)] == [p["id"] for p in payloads]
    for attempt in delivered:
        assert attempt["status_code"] == 200
        assert attempt["attempt"] == 1
        assert attempt["event_type"] == "interaction.received.v1"
        assert attempt["position"] > created["start_position"]
    only = ok(hub.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"outcome": "delivered"}))
    assert only["items"] == delivered
    first = ok(hub.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 2}))
    assert first["items"] == page["items"][:2]
    rest = ok(
        hub.get(
            f"/v1/webhooks/{webhook_id}/deliveries",
            params={"limit": 2, "before": first["next_before"]},
        )
    )
    assert rest["items"] == page["items"][2:]
    assert rest["next_before"] is None
    for params in ({"before": "abc"}, {"before": 0}, {"before": 2**63}, {"outcome": "lost"}):
        refused = hub.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
        assert_error(refused, 422, "validation_error")
    shown = ok(hub.get(f"/v1/webhooks/{webhook_id}"))
    assert shown["last_success_at"] is not None
    assert shown["pending"] == shown["failed"] == 0

    # a replay from the start sends the earlier interaction too, and the others again
    replay = ok(hub.post(f"/v1/webhooks/{webhook_id}/replay", params={"from_position": 0}), 202)
    assert replay["endpoint_id"] == webhook_id
    assert replay["from_position"] == 0
    assert replay["to_position"] == hub.store_position()
    assert replay["queued"] == 3
    wait_for(lambda: len(of_type(receiver, "interaction.received.v1")) >= 5)
    again = of_type(receiver, "interaction.received.v1")[2:]
    sent_again = [verified(secret, r)["data"]["message_id"] for r in again]
    assert sorted(sent_again) == sorted(
        [earlier["message_id"]] + [r["message_id"] for r in recorded]
    )
    assert_error(
        hub.post(f"/v1/webhooks/{webhook_id}/replay", params={"from_position": -1}),
        422,
        "validation_error",
    )
    assert_error(hub.post(f"/v1/webhooks/{webhook_id}/replay"), 422, "validation_error")


def test_given_up_events_are_listed_and_redelivered(hub: Api, receiver: WebhookReceiver) -> None:
    receiver.answer(500)
    created = create(hub, url=receiver.url, event_types=["interaction.received.v1"])
    webhook_id, secret = created["id"], created["secret"]
    recorded = hub.record(address="phone:+15550180001")

    def parked() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = ok(hub.get(f"/v1/webhooks/{webhook_id}/failed"))["items"]
        return items

    (event,) = wait_for(parked, timeout=15)
    one = ok(hub.get(f"/v1/webhooks/{webhook_id}/failed", params={"limit": 1}))
    assert one == {"items": [event], "next_after": event["position"]}
    after = ok(hub.get(f"/v1/webhooks/{webhook_id}/failed", params={"after": event["position"]}))
    assert after == {"items": [], "next_after": None}
    assert event["event_type"] == "interaction.received.v1"
    assert event["attempts"] >= 2
    assert event["first_attempt_at"] is not None
    assert event["last_error"]
    shown = ok(hub.get(f"/v1/webhooks/{webhook_id}"))
    assert shown["failed"] == 1
    assert shown["failing_since"] is not None
    if not shown["enabled"]:  # no success for the whole retry period
        assert shown["disabled_reason"] == "failing"
    logged = attempts(hub, webhook_id)
    # the last attempt gave it up: "failed", or "disabled" when it also disabled the endpoint
    assert logged[0]["outcome"] in ("failed", "disabled")
    assert {a["outcome"] for a in logged[1:]} == {"retrying"}
    last = ok(
        hub.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"outcome": logged[0]["outcome"]})
    )
    assert [a["event_id"] for a in last["items"]] == [event["event_id"]]

    # one event that is not given up for this endpoint: 404, nothing queued
    missing = hub.post(f"/v1/webhooks/{webhook_id}/redeliver", json={"event_id": _SOME})
    assert_error(missing, 404, "not_found")

    receiver.clear()
    hub.request("PATCH", f"/v1/webhooks/{webhook_id}", json={"enabled": True})
    answer = ok(
        hub.post(f"/v1/webhooks/{webhook_id}/redeliver", json={"event_id": event["event_id"]}),
        202,
    )
    assert answer == {"endpoint_id": webhook_id, "redelivered": 1}

    def delivered() -> list[Received]:
        return [r for r in receiver.requests if r.headers["webhook-id"] == event["event_id"]]

    wait_for(lambda: any(a["outcome"] == "delivered" for a in attempts(hub, webhook_id)))
    assert verified(secret, delivered()[-1])["data"]["message_id"] == recorded["message_id"]
    assert parked() == []
    assert ok(hub.get(f"/v1/webhooks/{webhook_id}"))["failed"] == 0
    # all of them, when none is left: 0
    assert ok(hub.post(f"/v1/webhooks/{webhook_id}/redeliver"), 202)["redelivered"] == 0


def attempts(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(api.get(f"/v1/webhooks/{webhook_id}/deliveries"))["items"]
    return items


# -- any text ------------------------------------------------------------------------------------

_PROPERTY = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def _readable(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return True


@_PROPERTY
@given(
    field=st.sampled_from(["url", "description"]),
    change=st.booleans(),
    value=st.one_of(HOSTILE_TEXT, HOSTILE_TEXT.map(lambda s: f"http://127.0.0.1:9/{s}")),
)
@example(field="description", change=False, value="x" * 500)
@example(field="description", change=False, value="x" * 501)
@example(field="description", change=True, value="<b>\u202eevil\u202c</b>")
@example(field="url", change=False, value="http://127.0.0.1:9/\ud800")
@example(field="url", change=True, value="https://example.com/a b")
def test_any_text_is_refused_or_stored_and_read_back_the_same(
    shared: Api, field: str, change: bool, value: str
) -> None:
    if change:
        webhook_id = create(shared)["id"]
        method, url, body = "PATCH", f"/v1/webhooks/{webhook_id}", {field: value}
    else:
        method, url, body = "POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/"} | {field: value}
    # Escaped JSON, as any client may send: "\ud800" is valid JSON and a lone surrogate.
    response = shared.request(
        method, url, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 422), response.text
        assert response.json()["error"]["code"]
        return
    assert _readable(value), "text no reader can encode was stored"
    kept = value.strip()  # surrounding spaces are dropped, as the schema says
    webhook_id = response.json()["id"]
    assert response.json()[field] == kept
    assert ok(shared.get(f"/v1/webhooks/{webhook_id}"))[field] == kept
    assert kept in [e[field] for e in ok(shared.get("/v1/webhooks"))["items"]]
    page = shared.client.get(f"/webhook-endpoints/{webhook_id}")
    assert page.status_code == 200, page.text[:500]
    if kept:
        assert str(escape(kept)) in page.text
