"""The HTTP application of one hub process: the API (``hub.api``) and, where the process
serves the ``api`` role, the agent console (``hub.console``) on the same server.

This is where the two web packages meet; neither imports the other. The CLI (and tests) build
a runtime, then the application around it here.
"""

from __future__ import annotations

from hub import console
from hub.api.app import HubAPI, create_app, roles_of
from hub.runtime import Runtime


def build_app(runtime: Runtime) -> HubAPI:
    """The application around ``runtime`` (started and stopped with it): the routes of the
    process's roles, and the console beside the API's ``api`` routes."""
    app = create_app(runtime)
    if "api" in roles_of(runtime):
        # The console's security headers wrap the API's body limit and request metrics; they
        # go by the endpoint the router matched, so what they mark is the same either way.
        console.install(app)
    return app
