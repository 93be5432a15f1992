"""Fixtures of the HTTP API tests: the real FastAPI app, with its lifespan, on a real store."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hub.config import Settings
from tests.api.support import ADMIN_TOKEN, Api, LiveServer, running_app


@pytest.fixture
def api(backend: str, make_settings: Callable[..., Settings]) -> Iterator[Api]:
    """The app on a fresh store of each backend (SQLite file, PostgreSQL database)."""
    with running_app(make_settings(backend, admin_token=ADMIN_TOKEN)) as client:
        yield client


@pytest.fixture
def sqlite_api(make_settings: Callable[..., Settings]) -> Iterator[Api]:
    """The app on a fresh SQLite store (edge cases that do not depend on the backend)."""
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as client:
        yield client


@pytest.fixture
def postgres_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings("postgres", admin_token=ADMIN_TOKEN)


@pytest.fixture
def live_server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    server = LiveServer(make_settings("sqlite", admin_token=ADMIN_TOKEN))
    server.start()
    try:
        yield server
    finally:
        server.stop()
