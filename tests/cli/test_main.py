"""The ``hub`` script's entry (``hub.cli.main``): what it sets up for every command."""

from __future__ import annotations

import gc
import sys

import pytest

from hub.cli import main
from hub.cli.shared import GC_THRESHOLDS


def test_the_hub_command_raises_the_collectors_thresholds_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults
    monkeypatch.setattr(sys, "argv", ["hub", "--help"])
    try:
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 0
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
