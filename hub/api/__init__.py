"""The HTTP API (FastAPI): routers per resource, the error model of ``hub.web``, the runtime
in ``lifespan``."""

from __future__ import annotations

from hub.api.app import create_app, request_shutdown

__all__ = ["create_app", "request_shutdown"]
