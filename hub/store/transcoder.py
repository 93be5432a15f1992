"""A fast transcoder for stored events: orjson, with UUIDs and datetimes tagged inside strings.

eventsourcing's JSONTranscoder tags such values as nested objects decoded through an
``object_hook``, which dominated the cost of reading events. Here they travel as strings
``"~u<hex>"`` and ``"~d<iso>"``; a string that itself starts with ``~`` gets one more ``~``.
Event state is a flat dict with few containers, so the walk below stays shallow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import Transcoder


def _tag(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return "~" + value if value[:1] == "~" else value
    if value is None or kind is int or kind is bool or kind is float:
        return value
    if kind is UUID:
        return "~u" + value.hex
    if isinstance(value, datetime):
        return "~d" + value.isoformat()
    if isinstance(value, dict):
        return {k: _tag(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tag(v) for v in value]
    if isinstance(value, str):
        return "~" + value if value[:1] == "~" else value
    if isinstance(value, UUID):
        return "~u" + value.hex
    return value


def _uuid_from_hex(text: str) -> UUID:
    # UUID(hex) re-parses and validates the string; ours are 32 hex digits by construction.
    value = object.__new__(UUID)
    object.__setattr__(value, "int", int(text, 16))
    object.__setattr__(value, "is_safe", SafeUUID.unknown)
    return value


def _untag(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if value[:1] != "~":
            return value
        tag = value[1:2]
        if tag == "u":
            return _uuid_from_hex(value[2:])
        if tag == "d":
            return datetime.fromisoformat(value[2:])
        return value[1:]
    if kind is dict:
        return {k: _untag(v) for k, v in value.items()}
    if kind is list:
        return [_untag(v) for v in value]
    return value


class OrjsonTranscoder(Transcoder):
    """Encodes event state as compact JSON bytes (the stored format, version 1)."""

    def encode(self, obj: Any) -> bytes:
        state = {}
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                state[key] = "~" + value if value[:1] == "~" else value
            elif value is None or kind is int or kind is bool:
                state[key] = value
            else:
                state[key] = _tag(value)
        return orjson.dumps(state)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        for key, value in state.items():
            kind = type(value)
            if (kind is str and value[:1] == "~") or kind is list or kind is dict:
                state[key] = _untag(value)
        return state
