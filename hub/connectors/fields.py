"""Reading fields of a provider's JSON payload: each helper returns the value or raises
:class:`Unusable`, which a connector turns into a set-aside item (never a failed request)."""

from __future__ import annotations

import json
from typing import Any

from hub.events.common import scrub_json


def provider_json(body: bytes) -> Any:
    """A verified JSON body, with NUL and lone surrogates (``"\\ud800"`` escapes) replaced by
    U+FFFD: the provider sent and signed it, so the hub keeps the message rather than refusing
    it. Raises ``ValueError`` for a body that is not JSON."""
    return scrub_json(json.loads(body))


class Unusable(Exception):
    """An item of a verified payload that cannot be recorded; it is set aside."""


def text_field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Unusable(f"{key!r} is missing or not a string")
    return value


def integer_field(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unusable(f"{key!r} is missing or not an integer")
    return value


def object_field(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Unusable(f"{key!r} is missing or not an object")
    return value


def optional_text(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
