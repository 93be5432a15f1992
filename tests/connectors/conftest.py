"""Fixtures of the connector tests: the web chat's live hub (a real server with the chat on and
mail going to the SMTP sink) and an HTTP client for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.config import Settings
from tests.connectors.chat_widget import chat_hub
from tests.peers.email_peers import SmtpSink
from tests.support.api import LiveServer


@pytest.fixture
def hub(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveServer]:
    with chat_hub(make_settings, sink, max_text=500) as server:
        yield server


@pytest.fixture
def client(hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url) as http:
        yield http
