"""The connector registry: built-ins by name, third-party connectors through their entry-point
group, and which of them the settings turn on."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from hub.config import Settings
from hub.connectors import ENTRY_POINT_GROUP, Connector, available, load
from hub.connectors.registry import (
    BUILTIN,
    ConnectorSettingsSource,
    UnknownConnector,
    channel_states,
    configured,
    settings_of,
)
from hub.connectors.settings import ChatSettings, SandboxSettings, TelegramSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the settings a test gives (the developer's own HUB_ variables stay out)."""
    for name in list(os.environ):
        if name.upper().startswith("HUB_"):
            monkeypatch.delenv(name)


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution (a dist-info on sys.path) that declares a connector."""
    (tmp_path / "acme_fax.py").write_text(
        textwrap.dedent(
            """
            from hub.connectors import Connector, SendResult

            class FaxConnector(Connector):
                name = "fax"
                channels = ("api",)
                settings_model = None

                def parse_inbound(self, headers, body, url):
                    return ()

                async def send(self, message):
                    return SendResult(provider_message_id="fax-1")
            """
        )
    )
    dist = tmp_path / "acme_fax-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-fax\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nfax = acme_fax:FaxConnector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fax"
    sys.modules.pop("acme_fax", None)


def test_third_party_connector_is_found_and_loaded(third_party: str) -> None:
    assert available()[third_party] == "acme_fax:FaxConnector"
    cls = load(third_party)
    assert issubclass(cls, Connector)
    assert cls.name == "fax"


def test_unknown_connector_names_the_known_ones() -> None:
    with pytest.raises(UnknownConnector, match="no connector named 'nope'"):
        load("nope")


def test_each_builtin_reads_its_own_settings_section() -> None:
    settings = Settings(telegram=TelegramSettings(bot_token="123:abc", secret_token="s"))
    source: ConnectorSettingsSource = settings  # the registry's view of the configuration
    for name in BUILTIN.keys() - {"sandbox"}:
        assert settings_of(source, name) is getattr(settings, name)
    # The sandbox's section is built from one flag, HUB_SANDBOX.
    assert settings_of(source, "sandbox") == SandboxSettings(enabled=False)
    assert settings_of(Settings(sandbox=True), "sandbox") == SandboxSettings(enabled=True)
    assert settings.connector_section("kafka") is None  # a section, but no connector's


def test_states_and_configured_follow_the_settings(third_party: str) -> None:
    settings = Settings(
        telegram=TelegramSettings(bot_token="123:abc", secret_token="s"),
        chat=ChatSettings(enabled=False),
        connectors={third_party: {"token": "x"}},
    )
    states = channel_states(settings)
    assert (states["telegram"], states["chat"], states["twilio"]) == ("on", "off", "off")
    assert states[third_party] == "on"
    on = configured(settings)
    assert [cls.name for cls, _ in on] == ["telegram", third_party]
    assert on[0][1] is settings.telegram


def test_a_third_party_without_settings_is_off(third_party: str) -> None:
    assert channel_states(Settings())[third_party] == "off"
