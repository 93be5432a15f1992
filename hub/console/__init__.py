"""The agent console: the web pages support agents work in, served by the hub at ``/``.

Server-rendered (FastAPI + Jinja2) with a little plain JavaScript; every asset is served by
the hub itself, which lets the console's responses carry a strict Content-Security-Policy
(no inline script or style, no framing). Runs in the ``api`` role (and in ``hub serve``),
beside the HTTP API; ``hub.server`` installs it.

- ``signin``: sign-in and sign-out, sessions, the sign-in form's CSRF token;
- ``pages``: the queue, a customer, older timeline pages;
- ``search``: one box over customers and message text (``/search``);
- ``segments``: the customer list with filters and saved segments (``/customers``);
- ``profile``: editing a customer's profile, the attribute definitions (admins);
- ``duplicates``: the review queue of likely duplicates, the merge preview;
- ``customer_actions``: merge, unmerge and linking an address from a customer's page;
- ``history``: a customer's timeline as it was at a moment ("view as of");
- ``sandbox``: the customer simulator of the sandbox (``/sandbox/``, admins, sandbox on);
- ``webhooks``: the outbound webhook endpoints, their deliveries and actions (admins);
- ``templates_pages``: message templates, their versions and previews (admins);
- ``automations``: rules and campaigns with their counts, their forms, the dry run (admins);
- ``surveys``: the CSAT and NPS survey policies (admins);
- ``reports``: the service reports' dashboard, its charts and CSV downloads (``/reports``);
- ``live``: the live updates of the queue and of a customer's page (server-sent events);
- ``commands``: the agent's commands from the forms (reply, note, status, assign, tags);
- ``scheduled``: scheduling a message, cancelling it, snoozing and following up a conversation;
- ``shared``: what they share (the signed-in agent, the templates, :class:`LoginRequired`);
- ``present``: how things are shown (Jinja2 filters).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.console import (
    automations,
    commands,
    customer_actions,
    duplicates,
    history,
    live,
    pages,
    profile,
    reports,
    sandbox,
    scheduled,
    search,
    segments,
    signin,
    surveys,
    templates_pages,
    webhooks,
)
from hub.console.shared import LoginRequired

#: What every console response carries. Scripts, styles, images and connections (fetch,
#: EventSource) come from the hub itself only; nothing inline runs, nothing frames the
#: console (clickjacking), forms post only to it, and no <base> can re-point relative URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to the responses of the console's own routes and static
    files, error answers included (the router records the matched endpoint in the scope). The
    API and the chat widget's page, served by the same app, are left as they are."""

    def __init__(self, app: ASGIApp, endpoints: frozenset[int]) -> None:
        self.app = app
        self.endpoints = endpoints  # ids: an ASGI app object need not be hashable

    def _is_console(self, scope: Scope) -> bool:
        return id(scope.get("endpoint")) in self.endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and self._is_console(scope):
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: The console's route modules, each with its ``router``.
_ROUTES = (
    signin,
    pages,
    live,
    commands,
    scheduled,
    profile,
    duplicates,
    customer_actions,
    segments,
    history,
    search,
    webhooks,
    automations,
    surveys,
    templates_pages,
    reports,
    sandbox,
)


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files, its sign-in redirect and its security
    headers to ``app``."""
    for module in _ROUTES:
        app.include_router(module.router)
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )
    static = app.router.routes[-1]
    assert isinstance(static, Mount)
    endpoints = [
        getattr(route, "endpoint", None) for module in _ROUTES for route in module.router.routes
    ] + [static.app]
    app.add_middleware(_SecurityHeaders, endpoints=frozenset(map(id, endpoints)))

    @app.exception_handler(LoginRequired)
    async def _sign_in(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)
