"""The child side of :class:`hub.stream.roles_process.RolesProcess`: ``python -m
hub.stream.roles_child REPORT_FD CHANNEL_FD``, its settings and roles pickled on standard
input (only ``RolesProcess`` starts it).

It runs its roles in a :class:`~hub.stream.runtime.DistributedRuntime` of their own, says
``ready`` once they have started, then answers the server's questions until the pipe ends; then
it stops its roles gracefully (each worker finishes its batch and commits) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from hub.config import Settings
from hub.runtime.children import child_report, configure_logging
from hub.stream.runtime import DistributedRuntime


async def serve(
    settings: Settings, roles: tuple[str, ...], send: Callable[[str, Any], None], conn: Connection
) -> None:
    """Start ``roles``, say so, answer the server until the pipe ends, stop them."""
    runtime = DistributedRuntime(settings, roles)
    await asyncio.to_thread(runtime.start)
    try:
        await runtime.start_async()
        try:
            loop, ended = asyncio.get_running_loop(), asyncio.Event()
            send("ready", None)
            threading.Thread(
                target=_answer,
                args=(runtime, conn, lambda: loop.call_soon_threadsafe(ended.set)),
                name="answers",
                daemon=True,
            ).start()
            await ended.wait()
        finally:
            await runtime.stop_async()
    finally:
        await asyncio.to_thread(runtime.stop)


def _answer(runtime: DistributedRuntime, conn: Connection, ended: Callable[[], None]) -> None:
    """Answer the server's questions until the pipe ends, then call ``ended``. In a thread
    of its own, so that an answer does not wait for the event loop's turn: what it reads
    (the workers' health, the metrics' values) is safe to read from any thread."""
    while True:
        try:
            question, number = conn.recv()
        except (EOFError, OSError):
            break  # the server closed it, or is gone
        if question == "problems":
            answer: Any = runtime.role_problems()
        elif question == "metrics":
            answer = list(runtime.metrics.registry.collect())
        else:
            answer = None
        with contextlib.suppress(OSError):
            conn.send((number, answer))
    ended()


def _main() -> None:
    report, channel = (int(arg) for arg in sys.argv[1:3])
    settings, roles, log_level = pickle.load(sys.stdin.buffer)  # noqa: S301 (our parent)
    configure_logging(log_level)
    # A stop signal to the whole process group (Ctrl-C in a terminal, a service manager)
    # is the server's to act on: it closes the pipe, and the roles stop after their batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import uvloop  # as uvicorn runs the server's loop when it is installed
    except ImportError:  # pragma: no cover (a dependency of the hub's web stack)
        run: Callable[..., Any] = asyncio.run
    else:
        run = uvloop.run
    run(serve(settings, roles, child_report(report), Connection(channel)))


if __name__ == "__main__":
    _main()
