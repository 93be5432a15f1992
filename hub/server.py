"""The HTTP application of one hub process: the API (``hub.api``) and, where the process
serves the ``api`` role, the agent console (``hub.console``) on the same server.

This is where the two web packages meet; neither imports the other. The CLI (and tests) build
a runtime, then the application around it here.
"""

from __future__ import annotations

from hub.api.app import HubAPI, create_app
from hub.runtime import Runtime


def build_app(runtime: Runtime) -> HubAPI:
    """The application around ``runtime`` (started and stopped with it)."""
    return create_app(runtime)
