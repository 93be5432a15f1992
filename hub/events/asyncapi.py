"""The AsyncAPI 3.0 document of the hub's Kafka contract (``hub schema asyncapi``): the topics
``hub.events`` and ``hub.inbound``, one message per event type with its payload schema (the
schemas ``hub schema export`` writes, their shared definitions in ``components``), the record
key and headers.

It describes the hub from the side of a service that uses it: such a service receives from
``hub.events`` and, as a third-party connector, sends to ``hub.inbound``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Final

from pydantic import BaseModel

from hub.events.catalogue import component_schemas, type_name
from hub.events.cloudevents import CONTENT_TYPE, KAFKA_HEADERS
from hub.events.inbound import InboundInteraction
from hub.events.published import EVENT_CLASSES

ASYNCAPI_VERSION: Final = "3.0.0"
#: The Kafka bindings' version the document uses.
KAFKA_BINDING_VERSION: Final = "0.5.0"

_SCHEMAS = "#/components/schemas/"
_HEADERS = "CloudEventsHeaders"
_INBOUND = "interaction.inbound.v1"

_DESCRIPTION = """\
The published domain events of Interaction Hub on Kafka, and its inbound contract.

- `hub.events`: every published event, keyed by customer id, in store order per customer.
  Each record is a CloudEvent in the Kafka protocol binding's binary mode: the `ce_*` headers
  carry its attributes and the value is the envelope's JSON, the same bytes `GET /v1/events`,
  the SSE stream and webhooks carry. Delivery is at-least-once: dedupe on the event `id`.
- `hub.inbound`: interactions handed over by connectors, keyed by the normalised address;
  third-party connectors may produce to it.

Topic names get `HUB_KAFKA__TOPIC_PREFIX` in front. docs/consuming.md and docs/events.md say
more."""


def _title(cls: type[BaseModel]) -> str:
    """``CustomerIdentityLinked`` -> ``Customer identity linked``."""
    words = re.findall(r"[A-Z][a-z0-9]*", cls.__name__)
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def _message(
    cls: type[BaseModel], payload: str, key: dict[str, Any], headers: bool
) -> dict[str, Any]:
    doc = inspect.cleandoc(cls.__doc__ or "")
    message: dict[str, Any] = {
        "name": type_name(cls),
        "title": _title(cls),
        "summary": doc.split("\n\n", 1)[0].replace("\n", " "),
        "description": doc,
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": _SCHEMAS + payload},
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if headers:
        message["headers"] = {"$ref": _SCHEMAS + _HEADERS}
    return message


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The record's headers: the CloudEvents Kafka binding's binary mode "
        "(ce_* and content-type) and the hub's own type and position. Values are UTF-8.",
        "properties": {
            h.name: {"type": "string", "description": h.description, **h.schema}
            for h in KAFKA_HEADERS
        },
        "required": [h.name for h in KAFKA_HEADERS],
    }


def asyncapi_document(
    version: str, events_topic: str = "hub.events", inbound_topic: str = "hub.inbound"
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document, as a JSON-ready dict; ``version`` is the hub's."""
    names, schemas = component_schemas(_SCHEMAS + "{model}")
    customer_key = {
        "type": "string",
        "format": "uuid",
        "description": "The customer id (the envelope's customer_id): one customer's events "
        "are on one partition, in order.",
    }
    address_key = {
        "type": "string",
        "description": "The normalised customer address (kind:value, e.g. phone:+4915112345678).",
    }
    messages = {
        type_name(cls): _message(cls, names[type_name(cls)], customer_key, headers=True)
        for cls in EVENT_CLASSES
    }
    messages[_INBOUND] = _message(InboundInteraction, names[_INBOUND], address_key, headers=False)
    event_types = [name for name in messages if name != _INBOUND]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Interaction Hub events",
            "version": version,
            "description": _DESCRIPTION,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap_servers}",
                "protocol": "kafka",
                "description": "The hub's Kafka cluster, as configured by "
                "HUB_KAFKA__BOOTSTRAP_SERVERS (SASL/SSL: HUB_KAFKA__SECURITY_PROTOCOL).",
                "variables": {
                    "bootstrap_servers": {
                        "default": "127.0.0.1:9092",
                        "description": "host:port[,host:port] (HUB_KAFKA__BOOTSTRAP_SERVERS).",
                    }
                },
            }
        },
        "channels": {
            "events": {
                "address": events_topic,
                "title": "Published events",
                "description": "Every published event, keyed by customer id, in store order "
                "per customer; at-least-once (dedupe on the event id).",
                "messages": {
                    name: {"$ref": f"#/components/messages/{name}"} for name in event_types
                },
            },
            "inbound": {
                "address": inbound_topic,
                "title": "Inbound interactions",
                "description": "Interactions handed over by connectors, keyed by the "
                "normalised address; a replay (same channel and provider_message_id) is "
                "recorded once.",
                "messages": {_INBOUND: {"$ref": f"#/components/messages/{_INBOUND}"}},
            },
        },
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "title": "Receive published events",
                "messages": [{"$ref": f"#/channels/events/messages/{n}"} for n in event_types],
            },
            "sendInbound": {
                "action": "send",
                "channel": {"$ref": "#/channels/inbound"},
                "title": "Hand over an interaction (a third-party connector)",
                "messages": [{"$ref": f"#/channels/inbound/messages/{_INBOUND}"}],
            },
        },
        "components": {
            "schemas": {_HEADERS: _headers_schema(), **schemas},
            "messages": messages,
        },
    }
