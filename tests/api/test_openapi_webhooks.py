"""/openapi.json documents the webhooks the hub sends (OpenAPI 3.1 ``webhooks``): one per
published event type, the envelope as the body, the Standard Webhooks headers
(hub/api/openapi.py)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from hub.config import Settings
from hub.events import EVENT_TYPES, encode_event
from hub.events.catalogue import component_schemas
from tests.api.test_openapi import operations
from tests.events.test_published import all_event_samples
from tests.support.api import running_app
from tests.support.schemas import refs

HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"))
    with running_app(settings) as api:
        response = api.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_published_event_type_is_a_webhook(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    webhooks = document["webhooks"]
    assert set(webhooks) == {*EVENT_TYPES, "webhook.ping"}
    for name, item in webhooks.items():
        operation = item["post"]
        headers = [(p["name"], p["in"], p["required"]) for p in operation["parameters"]]
        assert headers == [(h, "header", True) for h in HEADERS], name
        assert operation["requestBody"]["content"]["application/json"]["schema"], name
        assert {"2XX", "410", "default"} <= set(operation["responses"]), name


def test_each_body_schema_is_the_envelope_of_its_type(document: dict[str, Any]) -> None:
    components = {"components": document["components"]}
    for event in all_event_samples():
        body = document["webhooks"][event.type]["post"]["requestBody"]["content"]
        schema = {**body["application/json"]["schema"], **components}
        validator = jsonschema_rs.Draft202012Validator(schema)
        assert validator.is_valid(json.loads(encode_event(event))), event.type
        assert not validator.is_valid({**json.loads(encode_event(event)), "type": "other.v1"})


def test_the_document_stays_valid_and_whole(document: dict[str, Any]) -> None:
    # The official OpenAPI 3.1 schema (as Schemathesis ships it) takes the webhooks section.
    # (Only it: the paths hold FastAPI's `itemSchema` for the event stream, from OpenAPI 3.2.)
    meta = jsonschema_rs.Draft202012Validator(OPENAPI_31)
    part = {key: document[key] for key in ("openapi", "info", "webhooks", "components")}
    assert [e.message[:200] for e in meta.iter_errors(part)] == []
    assert not meta.is_valid({**part, "webhooks": {"x": {"post": {"responses": 1}}}})
    for ref in refs(document):  # no reference dangles
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    # An event schema whose name an API model has is added under another name, the API's kept.
    schemas = document["components"]["schemas"]
    _, events = component_schemas("#/components/schemas/{model}", inbound=False)
    assert schemas["Attachment"] != events["Attachment"]
    assert schemas["PublishedAttachment"] == events["Attachment"]
    ids = [op["operationId"] for _, _, op in operations(document)]
    ids += [item["post"]["operationId"] for item in document["webhooks"].values()]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
