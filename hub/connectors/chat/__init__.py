"""The web chat: an embeddable widget, visitor tokens, and the connector the dispatcher uses."""

from hub.connectors.chat.connector import ChatConnector

__all__ = ["ChatConnector"]
