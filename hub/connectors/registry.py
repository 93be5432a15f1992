"""Finding connectors: built-ins by name, third parties through an entry-point group.

The registry reads the hub's configuration through :class:`ConnectorSettingsSource` (which
``hub.config.Settings`` is), so the arrow points one way: the configuration knows the
connectors' settings models, the connectors never import the configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from hub.connectors.base import Connector, is_configured

ENTRY_POINT_GROUP = "interaction_hub.connectors"

#: Built-in connectors, name -> "module:Class" (loaded lazily, only when configured). The
#: name is also the settings section (``HUB_TWILIO__...`` -> ``Settings.twilio``).
BUILTIN: dict[str, str] = {
    # First: while it is on (HUB_SANDBOX, the demo), it serves its channels before any real
    # connector does, so nothing the hub sends leaves the machine.
    "sandbox": "hub.connectors.sandbox:SandboxConnector",
    "twilio": "hub.connectors.twilio:TwilioConnector",
    "email": "hub.connectors.email:EmailConnector",
    "meta": "hub.connectors.meta:MetaConnector",
    "telegram": "hub.connectors.telegram:TelegramConnector",
    "chat": "hub.connectors.chat:ChatConnector",
}


class ConnectorSettingsSource(Protocol):
    """What the registry reads of the hub's configuration (``hub.config.Settings`` is one)."""

    def connector_section(self, name: str) -> BaseModel | None:
        """The typed settings of built-in connector ``name`` (``HUB_TWILIO__...``)."""
        ...

    @property
    def connectors(self) -> Mapping[str, Mapping[str, Any]]:
        """Third-party connectors' settings by name, as given (``HUB_CONNECTORS__FAX__...``)."""
        ...


class UnknownConnector(LookupError):
    pass


class NoSettings(BaseModel):
    """The settings of a third-party connector that declares no ``settings_model``."""


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


def settings_of(settings: ConnectorSettingsSource, name: str) -> BaseModel | None:
    """The typed settings of connector ``name`` (``None`` for a third party without any)."""
    if name in BUILTIN:
        return settings.connector_section(name)
    raw = settings.connectors.get(name)
    if raw is None:
        return None
    model = load(name).settings_model
    return model.model_validate(raw) if model is not None else NoSettings()


def channel_states(settings: ConnectorSettingsSource) -> dict[str, str]:
    """``on`` or ``off`` for every connector the hub knows, by name (``hub config show``,
    ``/readyz``); nothing is imported for a connector that is off."""
    states = {}
    for name in available():
        try:
            states[name] = "on" if is_configured(settings_of(settings, name)) else "off"
        except Exception as exc:  # a third party's settings that do not validate
            states[name] = f"misconfigured: {type(exc).__name__}"
    return states


def configured(settings: ConnectorSettingsSource) -> list[tuple[type[Connector], Any]]:
    """The connector classes that are on, with their settings, built-ins first."""
    found = []
    for name, state in channel_states(settings).items():
        if state == "on":
            found.append((load(name), settings_of(settings, name)))
    return found


T = TypeVar("T")


def by_channel(items: Iterable[tuple[type[Connector], T]]) -> dict[str, T]:
    """Map each channel to the first item whose connector class serves it."""
    found: dict[str, T] = {}
    for cls, item in items:
        for channel in cls.channels:
            found.setdefault(channel, item)
    return found
