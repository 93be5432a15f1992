"""Fixtures of the integration tests: a store on each backend (``backend``: tests/conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.config import Settings
from hub.store import Store
from tests.conftest import SettingsFactory
from tests.integration.support import opened


@pytest.fixture
def settings(make_settings: SettingsFactory, backend: str) -> Settings:
    return make_settings(backend)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with opened(settings) as store:
        yield store
