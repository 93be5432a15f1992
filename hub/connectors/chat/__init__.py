"""The web chat, the channel the hub provides itself: the connector the dispatcher uses
(``connector``), a visitor's session and its frames (``session``, ``frames``), proving an email
(``verification``), and the guards and state they keep (``origins``, ``limits``, ``tokens``,
``mailbox``). It reaches the rest of the hub through ``port.ChatHub``; the WebSocket is
``hub.api.routes.chat``'s."""

from hub.connectors.chat.connector import ChatConnector

__all__ = ["ChatConnector"]
