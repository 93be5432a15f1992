"""What the commands share: settings from the options given, logging, the runtime of a data
directory, common options, and serving an application over HTTP until the process is told to
stop."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hub.config import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from hub.runtime import Runtime

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $HUB_DATA_DIR or ./hub-data)."),
]
Kafka = Annotated[
    bool,
    typer.Option(
        "--kafka",
        help="The distributed runtime: include the broker (HUB_KAFKA__*) and its positions.",
    ),
]


#: The garbage collector's thresholds in the hub's processes (``gc.set_threshold``): a
#: young collection after 20,000 more allocations than deallocations, not Python's 700. The
#: hub holds a few million long-lived objects (the web stack, the store, its caches); at the
#: defaults a rebuild spent about a sixth of its time in full collections that found nothing
#: (bench ``reports``: 39 full collections in a 19.6 s rebuild of every projection; 3, and
#: 16.2 s, with these). Garbage in reference cycles is still collected, a little later.
GC_THRESHOLDS = (20_000, 10, 10)


def tune_garbage_collector() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (the ``hub`` command does, first)."""
    gc.set_threshold(*GC_THRESHOLDS)


#: glibc's malloc arenas in a hub process (``mallopt(M_ARENA_MAX)``; ``MALLOC_ARENA_MAX`` in
#: the environment wins). glibc's default, 8 a core, gives the server's threads (the API's,
#: the writer's, the dispatcher's) arenas of their own, and what one frees stays in its arena:
#: in the soak the server's free-but-kept malloc memory grew from 32 to 51 MiB in 10 minutes.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Set :data:`MALLOC_ARENAS` for this process, before it starts threads (the ``hub``
    command does, first). Nothing on a C library other than glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def settings_from(**overrides: Any) -> Settings:
    """The settings, with the options given on the command line (None: not given) on top."""
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def configure_logging(settings: Settings) -> None:
    from hub.runtime.children import configure_logging as configure

    configure(settings.log_level.upper())


def open_runtime(data_dir: Path | None) -> Runtime:
    """The runtime of the hub at ``data_dir``, started; the caller stops it."""
    from hub.runtime import Runtime  # the store and the domain: see hub.cli

    runtime = Runtime(settings_from(data_dir=data_dir))
    runtime.start()
    return runtime


def serve_http(settings: Settings, application: FastAPI) -> None:
    """Serve ``application`` until SIGTERM or SIGINT; exit 3 when the server cannot start."""
    import uvicorn  # the web stack: see hub.cli

    from hub.api import request_shutdown
    from hub.api.timeouts import slow_client_protocol

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            request_shutdown(application)  # end event streams, or shutdown waits for them
            super().handle_exit(sig, frame)

    startup = _StartupConfiguration(application)
    config = uvicorn.Config(
        startup,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        http=slow_client_protocol(settings),  # request head and body read timeouts
        ws_max_size=settings.max_body_bytes,  # a chat frame, bounded like a body (not 16 MiB)
    )
    server = Server(config)
    # The port before the runtime: a port in use fails the command at once (uvicorn logs
    # why and exits 3), not after the runtime has opened the store, met the broker and
    # started its child process, only to stop them all again.
    listener = config.bind_socket()
    signal.signal(signal.SIGTERM, _stop_cleanly)
    try:
        server.run(sockets=[listener])
    except SystemExit:
        if startup.error is not None:  # uvicorn exits 3 on any failed start-up
            raise startup.error from None  # main() prints it
        raise
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: could not start (start-up failed)


class _StartupConfiguration:
    """ASGI wrapper that takes a :class:`ConfigurationError` raised while the application
    starts (the runtime opens the store, the producers meet the broker) out of uvicorn,
    which would log it with a traceback, so that the command reports it as one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: ConfigurationError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)  # sent below, once it is known why
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except ConfigurationError as exc:
            self.error = exc
            # uvicorn logs a failure's message (Starlette puts the traceback there) and
            # then ends quietly: without one it just stops.
            await send({"type": "lifespan.startup.failed", "message": ""})
            raise
        finally:
            for message in failed if self.error is None else ():
                await send(message)


def _stop_cleanly(_signum: int, _frame: object) -> None:
    """SIGTERM outside uvicorn's own handling: before it starts, or when uvicorn re-raises
    the signal after its graceful shutdown (which would end the process as killed by
    SIGTERM). A requested stop is a success: exit 0."""
    raise SystemExit(0)
