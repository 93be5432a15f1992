"""Finding connectors: built-ins by name, third parties through an entry-point group."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from hub.connectors.base import Connector

ENTRY_POINT_GROUP = "interaction_hub.connectors"

#: Built-in connectors, name -> "module:Class" (loaded lazily, only when configured).
BUILTIN: dict[str, str] = {}


class UnknownConnector(LookupError):
    pass


def available() -> dict[str, str]:
    """Every connector name the hub can load, with where it comes from."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def load(name: str) -> type[Connector]:
    """The connector class registered as ``name``."""
    target = available().get(name)
    if target is None:
        raise UnknownConnector(f"no connector named {name!r}; known: {sorted(available())}")
    module_name, _, attribute = target.partition(":")
    cls = getattr(import_module(module_name), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"{target} is not a Connector")
    return cls
