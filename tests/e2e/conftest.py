"""Fixtures of the end-to-end tests: ``hub serve`` processes, stopped after each test."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.config import KafkaSettings
from hub.stream.topics import ensure_topics
from tests.support.hub_process import HubProcess
from tests.support.stream import kafka_env


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub-data"


@pytest.fixture
def hub_runtime() -> str:
    """The runtime ``hub_server`` starts; a module parametrizes it to run on both."""
    return "embedded"


@pytest.fixture
def hub_server(
    tmp_path: Path, data_dir: Path, request: pytest.FixtureRequest, hub_runtime: str
) -> Iterator[Callable[..., HubProcess]]:
    """``hub_server(*extra_args)``: a (not yet started) hub of ``hub_runtime`` — ``hub serve``
    on ``data_dir``, or ``hub run all`` on a fresh PostgreSQL database and this test's Kafka
    topics; every process is killed at the end of the test, its log shown when it failed."""
    made: list[HubProcess] = []
    env = _distributed_env(request) if hub_runtime == "kafka" else {}

    def make(*extra_args: str) -> HubProcess:
        process = HubProcess(
            data_dir,
            tmp_path / f"hub-{len(made)}.log",
            *extra_args,
            runtime=hub_runtime,
            env=env,
        )
        made.append(process)
        return process

    yield make
    for process in made:
        process.cleanup()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in made:
            print(f"=== log of {process.log_path.name}\n{process.log()[-5000:]}")


def _distributed_env(request: pytest.FixtureRequest) -> dict[str, str]:
    kafka: KafkaSettings = request.getfixturevalue("kafka_settings")
    store_url: str = request.getfixturevalue("fresh_postgres_url")
    asyncio.run(ensure_topics(kafka))
    return kafka_env(kafka) | {
        "HUB_STORE_URL": store_url,
        "HUB_VIEWS_URL": store_url,
        "HUB_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "HUB_ADDRESS_PEPPER": base64.b64encode(os.urandom(32)).decode(),
    }


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
