"""Read models built from the published events: timeline, customer directory, conversations."""

from __future__ import annotations

from hub.projections.base import Projection
from hub.projections.views import UnknownProjection, Views, default_projections

__all__ = ["Projection", "UnknownProjection", "Views", "default_projections"]
