"""Meta's messaging platforms: WhatsApp Cloud API, Messenger and Instagram messaging, through
one Meta app. One webhook (``X-Hub-Signature-256`` over the raw body) carries the messages and
delivery statuses of all three; outbound goes through the Graph API's ``/{sender}/messages``.

``connector`` is the connector itself; ``webhook`` verifies and collects a webhook's items,
``whatsapp`` and ``messaging`` (Messenger, Instagram) read and write each platform's payloads,
``graph`` posts to the Graph API and types its failures.
"""

from __future__ import annotations

from hub.connectors.meta.connector import MetaConnector
from hub.connectors.settings import MetaSettings

__all__ = ["MetaConnector", "MetaSettings"]
