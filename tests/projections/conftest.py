"""The projection tests' fixtures: the views of a store, and an embedded runtime that follows
its log quickly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.config import Settings
from hub.embedded.runtime import EmbeddedRuntime
from hub.projections import Views
from hub.store import Store


@pytest.fixture
def views(store: Store) -> Views:
    views = Views(store.views_engine)
    views.create()
    return views


@pytest.fixture
def embedded(settings: Settings) -> Iterator[EmbeddedRuntime]:
    runtime = EmbeddedRuntime(settings.model_copy(update={"projection_poll_interval": 0.05}))
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()
