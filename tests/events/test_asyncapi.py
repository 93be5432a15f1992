"""`hub schema asyncapi` writes a valid AsyncAPI 3.0.0 document of the Kafka contract: checked
against the official JSON Schema (tests/vendor/asyncapi, from `@asyncapi/specs`), with every
published event type a message whose payload is the schema `hub schema export` writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from typer.testing import CliRunner

from hub import __version__
from hub.cli import app as cli_app
from hub.events import EVENT_CLASSES, EVENT_TYPES, InboundInteraction, encode_event
from hub.events.asyncapi import asyncapi_document
from hub.events.catalogue import schema_of, type_name
from hub.events.cloudevents import kafka_headers
from tests.events.test_published import all_event_samples
from tests.support.schemas import refs

SPEC = Path(__file__).resolve().parents[1] / "vendor" / "asyncapi" / "3.0.0-without-$id.json"
SCHEMAS = "#/components/schemas/"


@pytest.fixture(scope="module")
def asyncapi() -> jsonschema_rs.Validator:
    """The official AsyncAPI 3.0.0 schema (JSON Schema draft 07)."""
    return jsonschema_rs.Draft7Validator(json.loads(SPEC.read_text()))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(__version__)


def problems(validator: jsonschema_rs.Validator, instance: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message[:200]}" for e in validator.iter_errors(instance)]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_is_valid_asyncapi_3(
    document: dict[str, Any], asyncapi: jsonschema_rs.Validator
) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert problems(asyncapi, document) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["info"].pop("version"),
        lambda d: d.update(asyncapi="3.0"),
        # AsyncAPI 2's verbs are not 3.0's actions
        lambda d: d["operations"]["receiveEvents"].update(action="subscribe"),
        lambda d: d["channels"]["events"].update(address=42),
        lambda d: d["servers"]["kafka"].pop("protocol"),
        lambda d: d["components"]["messages"]["note.added.v1"].update(payloadType="json"),
        lambda d: d["components"]["messages"]["note.added.v1"]["bindings"]["kafka"].update(
            bindingVersion="9.9.9"
        ),
    ],
    ids=["no-version", "bad-asyncapi", "v2-action", "address", "no-protocol", "field", "binding"],
)
def test_a_broken_document_fails_validation(
    document: dict[str, Any], asyncapi: jsonschema_rs.Validator, break_it: Any
) -> None:
    broken = copy.deepcopy(document)
    break_it(broken)
    assert problems(asyncapi, broken)


def test_every_reference_resolves_within_the_document(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert len(found) > 50
    for ref in found:
        resolve(document, ref)
    for operation in document["operations"].values():  # a subset of its channel's messages
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")


def test_every_published_event_type_is_a_message(document: dict[str, Any]) -> None:
    types = set(EVENT_TYPES)
    events, inbound = document["channels"]["events"], document["channels"]["inbound"]
    assert (events["address"], inbound["address"]) == ("hub.events", "hub.inbound")
    assert set(events["messages"]) == types
    received = document["operations"]["receiveEvents"]
    assert received["action"] == "receive"
    assert {m["$ref"].rpartition("/")[2] for m in received["messages"]} == types
    sent = document["operations"]["sendInbound"]
    assert sent["action"] == "send"
    assert [m["$ref"] for m in sent["messages"]] == [
        "#/channels/inbound/messages/interaction.inbound.v1"
    ]
    for name in types:
        message = resolve(document, events["messages"][name]["$ref"])
        assert message["name"] == name
        assert message["title"]
        assert message["summary"]
        assert message["contentType"] == "application/json"
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"  # the customer id
        headers = resolve(document, message["headers"]["$ref"])
        assert {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"} <= set(
            headers["required"]
        )
        assert {"content-type", "type", "position"} <= set(headers["required"])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """An exported schema as the document holds it: its $defs as components."""
    text = json.dumps(schema).replace('"#/$defs/', f'"{SCHEMAS}')
    moved: dict[str, Any] = json.loads(text)
    for key in ("$id", "$schema", "$defs"):
        moved.pop(key, None)
    return moved


def test_payloads_are_the_schemas_hub_schema_export_writes(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    messages = document["components"]["messages"]
    for cls in (*EVENT_CLASSES, InboundInteraction):
        exported = schema_of(cls)
        payload = resolve(document, messages[type_name(cls)]["payload"]["$ref"])
        assert payload == _inline(exported), type_name(cls)
        for name, definition in exported.get("$defs", {}).items():
            assert components[name] == _inline(definition), (type_name(cls), name)


def test_every_sample_event_matches_its_message(document: dict[str, Any]) -> None:
    components = {"components": document["components"]}
    messages = document["components"]["messages"]
    for event in all_event_samples():
        message = messages[event.type]
        payload = jsonschema_rs.Draft7Validator({"$ref": message["payload"]["$ref"], **components})
        assert problems(payload, json.loads(encode_event(event))) == [], event.type
        headers = jsonschema_rs.Draft7Validator(
            {"$ref": message["headers"]["$ref"], **components}, validate_formats=True
        )
        record_headers = {name: value.decode() for name, value in kafka_headers(event)}
        assert problems(headers, record_headers) == [], event.type
        assert not headers.is_valid({**record_headers, "ce_specversion": "0.3"})


def test_the_cli_prints_the_document(document: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli_app, ["schema", "asyncapi"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == document
