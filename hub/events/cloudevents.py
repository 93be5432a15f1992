"""The CloudEvents view of a published envelope: the Kafka binary-mode headers of the records on
``hub.events``, and the attribute mapping that docs/consuming.md gives for ``/v1/events``, the
SSE stream and webhooks.

The CloudEvent's ``data`` is the whole envelope, byte for byte what ``/v1/events``, the stream
and webhooks carry: a consumer reads one format whichever way it subscribes, and the headers are
an index over it (routing and filtering without parsing the value), never a second copy to keep
in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydantic_core import to_json

from hub.events.published import Envelope

SPECVERSION: Final = "1.0"
#: The ``source`` when none is configured (``HUB_KAFKA__CLOUDEVENTS_SOURCE``): a URI reference.
DEFAULT_SOURCE: Final = "urn:interaction-hub"
CONTENT_TYPE: Final = "application/json"


@dataclass(frozen=True)
class Header:
    """A header of every record on ``hub.events``: its name, what it holds, its JSON Schema."""

    name: str
    description: str
    schema: dict[str, Any]


#: The headers :func:`kafka_headers` writes, in its order (the AsyncAPI document and the event
#: catalogue describe them from here).
KAFKA_HEADERS: Final[tuple[Header, ...]] = (
    Header(
        "ce_specversion", f"CloudEvents `specversion`: `{SPECVERSION}`.", {"const": SPECVERSION}
    ),
    Header("ce_id", "CloudEvents `id`: the envelope's `id` (dedupe on it).", {"format": "uuid"}),
    Header(
        "ce_source",
        "CloudEvents `source`: names this hub (`HUB_KAFKA__CLOUDEVENTS_SOURCE`, default "
        f"`{DEFAULT_SOURCE}`).",
        {"format": "uri-reference"},
    ),
    Header("ce_type", "CloudEvents `type`: the envelope's `type`, with its version.", {}),
    Header(
        "ce_time",
        "CloudEvents `time`: the envelope's `occurred_at` (RFC 3339, as in the envelope).",
        {"format": "date-time"},
    ),
    Header(
        "ce_subject", "CloudEvents `subject`: the envelope's `customer_id`.", {"format": "uuid"}
    ),
    Header(
        "content-type",
        f"CloudEvents `datacontenttype`: `{CONTENT_TYPE}` (the value is the envelope's JSON).",
        {"const": CONTENT_TYPE},
    ),
    Header("type", "The envelope's `type` (the hub's own header, kept beside `ce_type`).", {}),
    Header(
        "position",
        "The envelope's `position`, in decimal (the hub's own header).",
        {"pattern": "^[1-9][0-9]*$"},
    ),
)


def rfc3339(envelope: Envelope) -> str:
    """``occurred_at`` exactly as the envelope's JSON writes it (RFC 3339, ``Z`` for UTC)."""
    return to_json(envelope.occurred_at).decode()[1:-1]


def attributes(envelope: Envelope, source: str = DEFAULT_SOURCE) -> dict[str, str]:
    """The CloudEvents context attributes of ``envelope``, as strings."""
    return {
        "specversion": SPECVERSION,
        "id": str(envelope.id),
        "source": source,
        "type": envelope.type,
        "time": rfc3339(envelope),
        "subject": str(envelope.customer_id),
        "datacontenttype": CONTENT_TYPE,
    }


def kafka_headers(envelope: Envelope, source: str = DEFAULT_SOURCE) -> list[tuple[str, bytes]]:
    """The headers of ``envelope``'s record on ``hub.events``: the CloudEvents Kafka binding's
    binary mode (``ce_<attribute>``, and ``content-type`` for ``datacontenttype``), plus the
    hub's own ``type`` and ``position``, which consumers relied on before."""
    event = attributes(envelope, source)
    content_type = event.pop("datacontenttype")
    return [
        *((f"ce_{name}", value.encode()) for name, value in event.items()),
        ("content-type", content_type.encode()),
        ("type", envelope.type.encode()),
        ("position", str(envelope.position).encode()),
    ]
