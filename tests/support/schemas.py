"""Walking JSON documents of schemas (OpenAPI, AsyncAPI, JSON Schema) in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` in ``node``, depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)
