"""Helpers of the end-to-end tests: ``hub serve`` as a real process, and the ``hub`` command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import read_event_feed
from tests.support.processes import free_port

ADMIN_TOKEN = "e2e-admin"


def hub_executable() -> str:
    """The ``hub`` console script of the interpreter running the tests."""
    found = shutil.which("hub", path=os.path.dirname(sys.executable))
    assert found, f"no `hub` console script next to {sys.executable}"
    return found


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: ours without HUB_ settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return env | extra


def run_hub(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``hub ARGS`` to completion; returns the CompletedProcess (text output)."""
    return subprocess.run(
        [hub_executable(), *args],
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class HubProcess:
    """A hub on a loopback port as a child process: ``hub serve`` on a data directory (the
    embedded runtime), or ``hub run all`` with ``env`` naming its PostgreSQL store and Kafka
    broker (the distributed runtime)."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *extra_args: str,
        runtime: str = "embedded",
        env: dict[str, str] | None = None,
        command: tuple[str, ...] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = extra_args
        self.runtime = runtime
        self.env = env or {}
        self.command = command or (("serve",) if runtime == "embedded" else ("run", "all"))
        self.name = " ".join(self.command)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.client: httpx.Client | None = None

    def child_env(self) -> dict[str, str]:
        defaults = {"HUB_ADMIN_TOKEN": ADMIN_TOKEN, "HUB_DATA_DIR": str(self.data_dir)}
        return child_env(**(defaults | self.env))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60.0) -> HubProcess:
        return self.launch().wait_up(timeout)

    def launch(self) -> HubProcess:
        """Start the process (on ``HUB_PORT`` from ``env``, else a free port); :meth:`wait_up`
        waits for it to serve."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.port = int(self.env.get("HUB_PORT") or free_port())
        with self.log_path.open("ab") as log:
            log.write(f"\n--- hub {self.name} on port {self.port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    hub_executable(),
                    *self.command,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ],
                env=self.child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_up(self, timeout: float = 60.0) -> HubProcess:
        """Wait until the process answers ``/healthz`` (its runtime has started). Generous:
        a Faust worker joining its group on a loaded machine can take half a minute, and
        how fast a process starts is the benchmarks' to measure, not the tests'."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hub {self.name} exited with {self.process.returncode}:\n{self.log()[-5000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"hub {self.name} not healthy after {timeout}s:\n{self.log()[-5000:]}"
                )
            time.sleep(0.05)
        self.client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        return self

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the process took to exit."""
        assert self.process is not None
        self._close_client()
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"hub ignored SIGTERM for {timeout}s:\n{self.log()}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self._close_client()

    def cleanup(self) -> None:
        self._close_client()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    # -- API helpers ---------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        assert self.client is not None, "not started"
        return self.client

    def wait_caught_up(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get("/readyz")
            ready: dict[str, Any] = response.json()
            if response.status_code == 200 and ready["lag"] == 0:
                return ready
            if time.monotonic() > deadline:
                raise AssertionError(f"projections not caught up after {timeout}s: {ready}")
            time.sleep(0.05)

    def record(self, item: dict[str, Any], expect: int = 202) -> dict[str, Any]:
        """POST one interaction; returns its outcome with the customer and conversation ids
        (waiting for them when the runtime only accepted it)."""
        response = self.http.post("/v1/interactions", json=item)
        assert response.status_code == expect, response.text
        body: dict[str, Any] = response.json()
        return self.resolve(body) if body["status"] == "accepted" else body

    def record_batch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """POST a batch; returns the body with every accepted item resolved to its ids, and
        ``new`` = recorded + accepted."""
        response = self.http.post("/v1/interactions/batch", json={"interactions": items})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        body["results"] = [
            self.resolve(r) if r["status"] == "accepted" else r for r in body["results"]
        ]
        body["new"] = body["recorded"] + body["accepted"]
        return body

    def resolve(self, outcome: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """An accepted interaction's ids, once its message is visible."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"/v1/messages/{outcome['message_id']}")
            if response.status_code == 200:
                found = response.json()
                return outcome | {
                    "customer_id": found["customer_id"],
                    "conversation_id": found["conversation_id"],
                }
            assert response.status_code == 404, response.text
            if time.monotonic() > deadline:
                raise AssertionError(f"message {outcome['message_id']} not visible")
            time.sleep(0.02)

    def events(self) -> list[dict[str, Any]]:
        return read_event_feed(self.http.get)

    def timeline(self, customer_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        before = None
        while True:
            params: dict[str, Any] = {"limit": 200} | ({"before": before} if before else {})
            response = self.http.get(f"/v1/customers/{customer_id}/timeline", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            before = page["next_cursor"]
            if before is None:
                return items

    def customer(self, customer_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/customers/{customer_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def interaction(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "sms",
        "direction": "inbound",
        "address": "phone:+15550120000",
        "provider_message_id": f"e2e-{time.monotonic_ns()}",
        "occurred_at": ago(minutes=1),
        "text": "hello",
    }
    return body | overrides


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()
