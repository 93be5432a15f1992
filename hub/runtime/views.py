"""The views of a store, as every runtime opens them: ``Runtime.start``, and the projection
process of ``hub serve`` (``hub.embedded.process``), which imports this module alone."""

from __future__ import annotations

from hub.config import Settings
from hub.projections import Views, default_projections
from hub.store import Store


def open_views(settings: Settings, store: Store) -> Views:
    """The views of ``store``: every projection, configured by ``settings``."""
    return Views(
        store.views_engine,
        default_projections(
            shared_address_limit=settings.identity.shared_address_limit,
            default_region=settings.default_region,
            service_levels=store.app.service_levels.definitions,
        ),
    )
