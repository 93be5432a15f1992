"""The projection process (hub.embedded.process), ``hub serve``'s default: a child applies what
the server records, is started again when it dies (and /readyz says so meanwhile), stops
with the server, and stops by itself when the server is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.embedded.process import FollowerProcess
from hub.embedded.runtime import EmbeddedRuntime
from tests.support.api import wait_for
from tests.support.store import SettingsFactory, inbound

ADDRESS = "phone:+4915112345678"  # inbound()'s


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped has ended too)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[1:2] == ["Z"] for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return True


@pytest.fixture
def runtime(make_settings: SettingsFactory, backend: str) -> Iterator[EmbeddedRuntime]:
    rt = EmbeddedRuntime(make_settings(backend, projection_process=True))
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def record(rt: EmbeddedRuntime, *refs: str) -> int:
    rt.store.app.record_interactions([inbound(ref) for ref in refs])
    return rt.store_position()


def test_a_child_applies_what_the_server_records_and_stops_with_it(
    runtime: EmbeddedRuntime,
) -> None:
    follower = runtime.follower
    assert isinstance(follower, FollowerProcess)
    assert follower.pid not in (None, os.getpid())
    assert runtime.problems() == []
    position = record(runtime, "SM-1", "SM-2")
    assert runtime.wait_visible(position)
    with runtime.views.engine.connect() as conn:
        assert runtime.views.directory.by_address(conn, ADDRESS) is not None
    pid = follower.pid
    assert pid is not None
    runtime.stop()
    assert gone(pid)
    runtime.started = False  # stopped here, not again by the fixture


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_child_killed_is_started_again_and_readyz_says_so_meanwhile(
    runtime: EmbeddedRuntime,
) -> None:
    follower = runtime.follower
    assert isinstance(follower, FollowerProcess)
    first = follower.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    said = "projection follower failing: the projection process exited with code -9"
    wait_for(lambda: said in runtime.problems(), timeout=5)
    position = record(runtime, "SM-3")  # recorded while no child runs: applied after
    assert runtime.wait_visible(position, timeout=30)
    wait_for(lambda: runtime.problems() == [], timeout=10)
    assert follower.restarts == 1
    assert follower.pid not in (None, first)
    position = record(runtime, "SM-4")
    assert runtime.wait_visible(position)


def test_a_child_stops_by_itself_when_its_server_is_killed(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings("sqlite")
    script = (
        "import sys, time\n"
        "from hub.config import Settings\n"
        "from hub.embedded.runtime import EmbeddedRuntime\n"
        "rt = EmbeddedRuntime(Settings(data_dir=sys.argv[1], projection_process=True))\n"
        "rt.start()\n"
        "print(rt.follower.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script, str(settings.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
    )
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        assert not gone(child)
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 10
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(child)
    finally:
        server.kill()
        server.wait(10)


def test_commits_while_a_wake_up_is_pending_write_nothing_and_none_is_missed(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child polls once a minute here: only the wake-ups can make it apply in time. It
    # waits 300 ms after each wake-up for more writes, so a round spans many commits however
    # slow the machine is.
    rt = EmbeddedRuntime(
        make_settings(
            "sqlite",
            projection_process=True,
            projection_poll_interval=60.0,
            projection_coalesce_ms=300,
        )
    )
    rt.start()
    try:
        follower = rt.follower
        assert isinstance(follower, FollowerProcess)
        writes: list[int] = []
        real_write = os.write

        def counting(fd: int, data: bytes) -> int:
            if fd == follower._wake_fd:
                writes.append(fd)
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", counting)
        commits = 300
        for n in range(commits):
            position = record(rt, f"SM-burst-{n}")
        assert rt.wait_visible(position, timeout=10)
        assert 0 < len(writes) < commits / 2  # once a round of the child, not once a commit
        writes.clear()
        # A lone commit after the burst: applied at once, by a wake-up of its own or by
        # the round a wake-up still pending from the burst brings.
        position = record(rt, "SM-after")
        assert rt.wait_visible(position, timeout=5)
        assert len(writes) <= 1
    finally:
        rt.stop()
