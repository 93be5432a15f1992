"""The OpenAPI document says what the API answers: every error response is the one error
model, documented on every operation that can produce it (hub/api/openapi.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import jsonschema_rs
import pytest

from tests.support.api import Api, assert_error, interaction

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture
def document(sqlite_api: Api) -> dict[str, Any]:
    response = sqlite_api.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def statuses(document: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(s) for s in document["paths"][path][method.lower()]["responses"]}


def validator(document: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    """A validator of component ``name`` of the document, its references resolved there."""
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    )


def test_every_error_response_is_the_error_model(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            assert response["content"] == {"application/json": {"schema": ERROR_REF}}, (
                f"{method} {path} {status}"
            )
            assert response["description"], f"{method} {path} {status}"
    # FastAPI's own 422 body, which the hub never answers, is gone with its item.
    assert "HTTPValidationError" not in json.dumps(document)
    assert {"HTTPValidationError", "ValidationError"}.isdisjoint(document["components"]["schemas"])


def test_errors_are_documented_by_what_the_route_does(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        documented = statuses(document, method, path)
        authenticated = "security" in operation
        assert {401, 403} <= documented if authenticated else not {401, 403} & documented, (
            method,
            path,
        )
        if "requestBody" in operation:
            assert {400, 413, 422} <= documented, (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            assert 422 in documented, (method, path)
        if "{" in path:
            assert 404 in documented, (method, path)
        if path != "/healthz":  # every other operation reads the store or the runtime
            assert 503 in documented, (method, path)
    assert statuses(document, "GET", "/healthz") == {200}
    assert statuses(document, "POST", "/v1/interactions") == {
        200,
        202,
        400,
        401,
        403,
        413,
        422,
        503,
    }


def test_domain_errors_are_declared_where_they_occur(document: dict[str, Any]) -> None:
    def described(method: str, path: str, status: int) -> str:
        response = document["paths"][path][method.lower()]["responses"][str(status)]
        description: str = response["description"]
        return description

    merge = ("POST", "/v1/customers/{customer_id}/merge")
    reply = ("POST", "/v1/conversations/{conversation_id}/messages")
    assert {409, 410} <= statuses(document, *merge)
    assert "already_merged" in described(*merge, 409)
    assert "invalid_command" in described(*merge, 422)
    # A route's own codes and the generic ones in one description.
    assert "validation_error" in described(*merge, 422)
    assert {409, 410} <= statuses(document, *reply)
    for code in ("consent_revoked", "outside_service_window", "channel_unavailable"):
        assert code in described(*reply, 409)
    assert "customer_erased" in described("PUT", "/v1/customers/{customer_id}/tags", 410)
    assert "batch_too_large" in described("POST", "/v1/interactions/batch", 413)
    assert "payload_too_large" in described("POST", "/v1/interactions/batch", 413)
    for path in ("/v1/customers", "/v1/customers/{customer_id}/timeline", "/v1/events/stream"):
        assert "invalid_cursor" in described("GET", path, 400)
    assert "not_ready" in described("GET", "/readyz", 503)
    # 409 only where a domain rule can refuse the state: never guessed for every command.
    assert 409 not in statuses(document, "PUT", "/v1/conversations/{conversation_id}/status")


def test_error_headers_are_documented(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/customers"]["get"]["responses"]
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "Retry-After" in responses["503"]["headers"]


def test_the_error_model_is_what_errors_are(sqlite_api: Api, document: dict[str, Any]) -> None:
    """Real error responses of each kind are documented there, and validate against the
    documented model."""
    error = validator(document, "ErrorResponse")
    runtime = sqlite_api.runtime
    assert runtime is not None
    _, agent = runtime.tokens.create("agent", "openapi-test")
    customer = sqlite_api.record()["customer_id"]
    record, timeline = "/v1/interactions", "/v1/customers/{customer_id}/timeline"
    too_large = b"x" * (runtime.settings.max_body_bytes + 1)
    json_type = {"Content-Type": "application/json"}
    answers: list[tuple[int, str, httpx.Response]] = [
        (401, "/v1/customers", sqlite_api.get("/v1/customers", token=None, params={"q": "ab"})),
        (403, record, sqlite_api.post(record, token=agent, json=interaction())),
        (
            404,
            "/v1/conversations/{conversation_id}",
            sqlite_api.get(f"/v1/conversations/{customer}"),
        ),
        (400, record, sqlite_api.post(record, content=b"{", headers=json_type)),
        (400, timeline, sqlite_api.get(f"/v1/customers/{customer}/timeline?before=nonsense")),
        (413, record, sqlite_api.post(record, content=too_large, headers=json_type)),
        (422, record, sqlite_api.post(record, json=interaction(direction="sideways"))),
        (422, record, sqlite_api.post(record, json=interaction(address="x"))),
    ]
    for status, path, response in answers:
        assert response.status_code == status, (path, response.text)
        assert status in statuses(document, response.request.method, path), (status, path)
        assert error.is_valid(response.json()), (status, path, response.text)
    assert answers[0][2].headers["WWW-Authenticate"] == "Bearer"
    assert answers[-2][2].json()["error"]["details"][0]["loc"] == ["body", "direction"]


def test_a_rejected_batch_item_has_the_same_error_model(
    sqlite_api: Api, document: dict[str, Any]
) -> None:
    detail = validator(document, "ErrorDetail")
    response = sqlite_api.post(
        "/v1/interactions/batch",
        json={"interactions": [interaction(), interaction(direction="sideways")]},
    )
    assert response.status_code == 200, response.text
    rejected = response.json()["results"][1]
    assert rejected["status"] == "rejected"
    assert detail.is_valid(rejected["error"]), rejected
    item_error = document["components"]["schemas"]["BatchItemOut"]["properties"]["error"]
    assert {"$ref": "#/components/schemas/ErrorDetail"} in item_error["anyOf"]


def test_text_fields_state_what_the_server_refuses(document: dict[str, Any]) -> None:
    """NUL is refused by a pattern every JSON Schema dialect reads; lone surrogates cannot be
    written in one (a Rust or JavaScript regex refuses \\uD800), so the description says so."""
    schemas = document["components"]["schemas"]
    text = schemas["NoteIn"]["properties"]["text"]
    assert text["pattern"] == "^[^\\u0000]*$"
    refused = jsonschema_rs.validator_for(text)
    assert not refused.is_valid("a\x00b")
    assert refused.is_valid("naïve 😀 \u200f")
    note = schemas["AssigneeIn"]["properties"]["assignee"]["anyOf"][0]
    assert "surrogate" in note["description"]


def test_the_server_is_no_laxer_than_its_schema(sqlite_api: Api) -> None:
    """What the schema calls a date-time or a boolean is one: pydantic alone would read a
    number (or a string of digits) as a Unix time, and 1 or "yes" as true."""
    some_id = "01a23c98-f61b-7e73-a846-77e8d4a5408e"  # body validation answers before a 404
    delivery, consent = f"/v1/messages/{some_id}/delivery", f"/v1/customers/{some_id}/consent"
    refused = [
        (delivery, "POST", {"status": "sent", "occurred_at": 0}, "occurred_at"),
        (delivery, "POST", {"status": "sent", "occurred_at": "17"}, "occurred_at"),
        (consent, "PUT", {"channel": "sms", "granted": "yes"}, "granted"),
        (f"/v1/conversations/{some_id}/messages", "POST", {"text": "hi", "urgent": 1}, "urgent"),
    ]
    for url, method, body, field in refused:
        error = assert_error(sqlite_api.request(method, url, json=body), 422, "validation_error")
        assert [d["loc"] for d in error["details"]] == [["body", field]], error
    accepted = sqlite_api.post(
        f"/v1/messages/{some_id}/delivery",
        json={"status": "sent", "occurred_at": "2026-01-02T03:04:05+01:00"},
    )
    assert_error(accepted, 404, "not_found")


def test_an_empty_batch_is_documented_and_keeps_its_code(
    sqlite_api: Api, document: dict[str, Any]
) -> None:
    batch = document["components"]["schemas"]["BatchIn"]["properties"]["interactions"]
    assert batch["minItems"] == 1
    assert_error(
        sqlite_api.post("/v1/interactions/batch", json={"interactions": []}), 422, "empty_batch"
    )


def test_405_names_every_method_of_the_path(sqlite_api: Api, document: dict[str, Any]) -> None:
    """Starlette names only the methods of the first route of a path; one route per method
    (GET and DELETE of a dead letter) must all be in Allow, as documented."""
    path = "/v1/dead-letters/{letter_id}"
    documented = {m.upper() for m in document["paths"][path]}
    assert len(documented) > 1
    response = sqlite_api.request("PATCH", path.format(letter_id=uuid4()))
    assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == documented
    # The provider webhooks, outside FastAPI's routes, keep theirs.
    webhook = sqlite_api.request("PUT", "/webhooks/chat/x")
    assert webhook.status_code == 405
    assert "POST" in webhook.headers["Allow"]


def test_links_lead_to_operations_of_the_document(document: dict[str, Any]) -> None:
    """The links of a recorded interaction (clients and the stateful tests follow them) name
    operations that exist, with parameters they take, from fields the answer has."""
    linked = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                pointer = link["operationRef"].removeprefix("#/paths/")
                target_path, _, target_method = pointer.rpartition("/")
                target_path = target_path.replace("~1", "/").replace("~0", "~")
                target = document["paths"][target_path][target_method]
                taken = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= taken, (method, path, status, name)
                answer = operation["responses"][status]["content"]["application/json"]["schema"]
                fields = document["components"]["schemas"][answer["$ref"].rpartition("/")[2]]
                for expression in link["parameters"].values():
                    assert expression.removeprefix("$response.body#/") in fields["properties"]
                linked += 1
    assert linked >= 20
