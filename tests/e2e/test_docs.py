"""docs/events.md is the catalogue generated from the event models."""

from __future__ import annotations

from pathlib import Path

from hub.events.catalogue import render_catalogue

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_event_catalogue_is_current() -> None:
    assert DOCS.read_text() == render_catalogue(), (
        "docs/events.md is stale: run `make docs` and commit the result"
    )
