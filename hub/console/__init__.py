"""The agent console: the web pages support agents work in, served by the hub at ``/``.

Server-rendered (FastAPI + Jinja2) with a little plain JavaScript; every asset is served by
the hub itself. Runs in the ``api`` role (and in ``hub serve``), beside the HTTP API.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hub.console.routes import LoginRequired, router


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files and its sign-in redirect to ``app``."""
    app.include_router(router)
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )

    @app.exception_handler(LoginRequired)
    async def _sign_in(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)
