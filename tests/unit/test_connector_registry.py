"""The connector registry finds third-party connectors through their entry-point group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from hub.connectors import ENTRY_POINT_GROUP, Connector, available, load
from hub.connectors.registry import UnknownConnector


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
