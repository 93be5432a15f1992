"""Readiness of a distributed worker follows its broker: ready while it answers, not ready
(503 with the reason) soon after it is gone. The test has a broker of its own to stop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any

import httpx

from hub.config import KafkaSettings
from hub.stream.topics import ensure_topics
from tests.support.stream import TEST_KAFKA_TUNING, hub_command, hub_env, tansu_broker


def _ready(port: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    return response.status_code, response.json()


def _wait(port: str, status: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: tuple[int, dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        try:
            seen = _ready(port)
        except httpx.TransportError:
            seen = None
        if seen is not None and seen[0] == status:
            return seen[1]
        time.sleep(0.2)
    raise AssertionError(f"/readyz not {status} within {timeout}s; last: {seen}")


def test_a_worker_that_loses_its_broker_is_not_ready(make_settings, tmp_path) -> None:
    settings = make_settings("sqlite")
    with tansu_broker() as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap,
            partitions=2,
            replication_factor=1,
            **TEST_KAFKA_TUNING,
        )
        asyncio.run(ensure_topics(kafka))
        env = hub_env(kafka, HUB_DATA_DIR=str(settings.data_dir), HUB_LOG_LEVEL="WARNING")
        port = env["HUB_PORT"]
        log = (tmp_path / "worker.log").open("wb")  # a pipe nobody reads would fill up
        worker = subprocess.Popen(
            [hub_command(), "run", "process"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            ready = _wait(port, 200, 45)
            assert ready["roles"] == ["process"]
            assert ready["lag"] == 0

            broker.process.kill()
            broker.process.wait(10)
            refused = _wait(port, 503, 30)

            assert refused["error"]["code"] == "not_ready"
            problems = refused["error"]["details"]["problems"]
            assert any("broker" in p for p in problems), refused
            assert worker.poll() is None  # not ready, not dead: it waits for the broker

            # A stop without the broker is bounded: nothing to commit to, nothing to wait for.
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(25) == 0
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.close()
