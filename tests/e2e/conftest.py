"""Fixtures of the end-to-end tests: ``hub serve`` processes, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.support import HubProcess


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub-data"


@pytest.fixture
def hub_server(
    tmp_path: Path, data_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., HubProcess]]:
    """``hub_server(*extra_args)``: a (not yet started) ``hub serve`` on ``data_dir``; every
    process is killed at the end of the test, and its log shown when the test failed."""
    made: list[HubProcess] = []

    def make(*extra_args: str) -> HubProcess:
        process = HubProcess(data_dir, tmp_path / f"hub-{len(made)}.log", *extra_args)
        made.append(process)
        return process

    yield make
    for process in made:
        process.cleanup()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in made:
            print(f"=== log of {process.log_path.name}\n{process.log()[-5000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
