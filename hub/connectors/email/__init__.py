"""Email: outbound through aiosmtplib, inbound through a built-in SMTP listener (aiosmtpd) and
IMAP polling with a durable UID cursor; MIME parsed with the standard library's ``email``."""

from __future__ import annotations

from hub.connectors.email.connector import EmailConnector
from hub.connectors.email.parse import parse_message
from hub.connectors.settings import EmailSettings

__all__ = ["EmailConnector", "EmailSettings", "parse_message"]
